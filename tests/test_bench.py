"The benchmark's own contenders (bench/common.py): our two networks at every size have matched parameters."
import sys
from pathlib import Path
import pytest, torch

sys.path.insert(0, str(Path(__file__).parents[1] / 'bench'))
import common  # noqa: E402


@pytest.mark.parametrize('size', list(common.SIZES))
def test_patched_contender_matches_parameters_and_costs_fewer_flops(size):
    s = common.SIZES[size]
    (a, call_a), (b, call_b) = common.build('ddpm_nb', s), common.build('ddpm_nb-p2', s)
    assert b.patch_size == 2 and abs(common.param_count(b) / common.param_count(a) - 1) <= 0.10   # the issue's +-10%
    fa, fb = common.flops_per_image(call_a, s), common.flops_per_image(call_b, s)
    assert fa > 2 * fb > 0
    x = torch.randn(2, s.channels, s.image_size, s.image_size)
    assert call_b(x, torch.tensor([0, 999])).shape == x.shape


def test_unknown_contender():
    with pytest.raises(ValueError, match='expected one of ddpm_nb, ddpm_nb-p2'): common.build('ddpm', common.SIZES['28x28x1'])


def test_gpu_script_runs_end_to_end_in_tiny_mode(tmp_path):
    "bench/gpu.py --tiny: the GPU script's every line on the CPU at toy size (~30 s), so it cannot fail on a typo."
    import json, os, subprocess
    bench = Path(__file__).parents[1] / 'bench'
    r = subprocess.run([sys.executable, 'gpu.py', '--tiny', '--out', str(tmp_path)], cwd=bench, capture_output=True,
                       text=True, timeout=900, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    paper, run = (json.loads((tmp_path / f).read_text()) for f in ('gpu-paper.json', 'gpu-run.json'))
    assert paper['tiny'] and paper['machine']['device'] == 'cpu' and paper['train_flops_per_image'] > 0
    assert set(paper['train_img_s']) == {'fp32 eager', 'bf16+cl+compile'} and min(paper['train_img_s'].values()) > 0
    assert set(paper['eval_img_s']) == {'eager bf16+cl', 'compile+cudagraphs'} and paper['mfu'] is None
    assert run['training']['status'] == 'done' and run['training']['step'] > 0 and run['sampling']['n'] == 20
    card = json.loads((tmp_path / 'gpu-run' / 'card.json').read_text())
    assert card['preset']['name'] == 'cifar10' and card['precision']['chosen'] == 'bf16'
    from PIL import Image
    w, h = Image.open(tmp_path / 'gpu-run' / 'samples.png').size
    assert h > w > 0                                             # 10 labelled rows of 2, a caption below


def test_gpu_script_refuses_without_a_gpu_unless_tiny(tmp_path):
    import subprocess, torch
    if torch.cuda.is_available(): pytest.skip('a GPU is here')
    r = subprocess.run([sys.executable, 'gpu.py', '--out', str(tmp_path)], cwd=Path(__file__).parents[1] / 'bench',
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and 'needs a CUDA GPU (or --tiny' in r.stderr and not list(tmp_path.iterdir())


def test_gpu_script_packs_and_loads_cifar10_images(tmp_path, monkeypatch):
    "The data path of the GPU run (--pack-data here, load_data there) on a fake CIFAR-10 folder of 3 images a class."
    import gpu
    from PIL import Image
    classes = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
    g = torch.Generator().manual_seed(0)
    for c in classes:
        (tmp_path / 'train' / c).mkdir(parents=True)
        for i in range(3):
            px = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(px).save(tmp_path / 'train' / c / f'{i}.png')
    monkeypatch.setattr(gpu, 'DATA', tmp_path / 'packed' / 'cifar10-train.pt')
    gpu.main(['--pack-data', str(tmp_path)])
    ds = gpu.load_data(tiny=False)
    assert len(ds) == 30 and tuple(ds.images.shape[1:]) == (3, 32, 32) and list(ds.classes) == classes and ds.hflip
    first = torch.tensor(list(Image.open(tmp_path / 'train' / 'airplane' / '0.png').getdata()), dtype=torch.uint8).view(32, 32, 3)
    assert torch.equal(((ds.images[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0), first)   # lossless
