"""`make demo` until the training system lands: chapter 2's forward-process figure, rendered by the library."""
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch, torch.nn.functional as F
from sklearn.datasets import load_digits
from ddpm_nb.schedules import Schedule
from ddpm_nb.forward import noise_sequence

def main(out=Path('outputs/forward_process.png')):
    digits = load_digits()
    ts = [0, 50, 100, 200, 300, 400, 500, 600, 800, 999]
    fig, axs = plt.subplots(3, len(ts), figsize=(len(ts), 3.4))
    for row, name in zip(axs, ['linear', 'cosine', 'sigmoid']):
        sched = Schedule.from_name(name, 1000)
        x0 = F.interpolate(torch.tensor(digits.images[3], dtype=torch.float32)[None, None] / 8 - 1, size=16)[0]
        for ax, t, img in zip(row, ts, noise_sequence(sched, x0, ts, generator=torch.Generator().manual_seed(0))):
            ax.imshow(img[0], cmap='gray', vmin=-2, vmax=2); ax.set_title(f'{name[:3]} t={t}', fontsize=7); ax.axis('off')
    fig.suptitle('the forward process q(x_t | x_0) under three schedules', fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches='tight')
    print(f'wrote {out}')

if __name__ == '__main__': main()
