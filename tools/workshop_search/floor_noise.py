import torch
torch.set_num_threads(1)
from ddpm_nb.data import load_mnist
from ddpm_nb.metrics import classifier_for, classifier_frechet
data = load_mnist('/work/shared/data/mnist', allow_test_as_train=True)
clf = classifier_for('mnist', '/work/shared/data/mnist', image_size=28, progress=False)
print('class counts', torch.bincount(data.labels).tolist())
for seed in range(3):
    g = torch.Generator().manual_seed(100 + seed)
    idx = torch.cat([torch.nonzero(data.labels == c).flatten()[torch.randperm(int((data.labels == c).sum()), generator=g)[:100]] for c in range(10)])
    bal = data.images[idx]
    r = classifier_frechet(clf, bal, data.images, seed=seed)
    # a random (natural-proportion) real subset as the 'fake'
    rnd = data.images[torch.randperm(len(data.images), generator=g)[:1000]]
    r2 = classifier_frechet(clf, rnd, data.images, seed=seed)
    print(f"seed {seed}: balanced real vs ref FD={r['fd']:.3f}  random real vs ref FD={r2['fd']:.3f}  floor={r['floor']:.3f}")
