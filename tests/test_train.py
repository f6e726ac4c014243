"Training system in fresh processes: bit-identical resume, NaN stop, torchrun/gloo data parallelism, the CLI path."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from ddpm_nb.presets import load_preset
from ddpm_nb.data import load_digits
from ddpm_nb.train import Trainer, TrainingError
from ddpm_nb.checkpoint import load_checkpoint, load_model

BIN = Path(sys.executable).parent
TINY = dict(image_size=8, base_channels=8, channel_mults=(1, 2), T=20, batch_size=16, warmup=2, lr=2e-3,
            precision='fp32')   # an explicit precision: 'auto' would measure, and two runs must agree bit for bit
TINY_ARGS = ['image_size=8', 'base_channels=8', 'T=20', 'batch_size=16', 'warmup=2', 'lr=0.002', 'precision=fp32']

def _tiny(**kw): return load_preset('digits', **{**TINY, **kw})

def _weights(path):
    s = load_checkpoint(path)
    return {**{'model.' + k: v for k, v in s['model'].items()}, **{'ema.' + k: v for k, v in s['ema'].items()}}

def test_resume_is_bit_identical(tmp_path):
    "Dropout 0.1: the global RNG (dropout's) must be restored too, not only the trainer's generator."
    data = load_digits(8)
    Trainer(_tiny(dropout=0.1), data, tmp_path / 'a', progress=False, ckpt_every=0).fit(12)
    Trainer(_tiny(dropout=0.1), data, tmp_path / 'b', progress=False, ckpt_every=0).fit(5)
    t = Trainer(_tiny(dropout=0.1), data, tmp_path / 'b', progress=False, ckpt_every=0)
    assert t.resume() and t.step == 5
    t.fit(12)
    a, b = _weights(tmp_path / 'a' / 'ckpt.pt'), _weights(tmp_path / 'b' / 'ckpt.pt')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    t = Trainer(_tiny(), load_digits(8), tmp_path, progress=False, ckpt_every=1)
    t.fit(2)
    before = (tmp_path / 'ckpt.pt').read_bytes()
    with torch.no_grad(): next(t.model.parameters()).view(-1)[0] = float('inf')
    with pytest.raises(TrainingError, match='at step 3'): t.fit(5)
    assert (tmp_path / 'ckpt.pt').read_bytes() == before

DDP_SCRIPT = '''
import sys, torch
torch.set_num_threads(1)
from ddpm_nb.cli import main
sys.exit(main(['train', '--preset', 'digits', '--steps', '4', '--out', sys.argv[1], '--no-progress', '--ckpt-every', '0', *sys.argv[2:]]))
'''

def test_torchrun_gloo_two_processes_match_one_process(tmp_path):
    """Two gloo processes on half batches each end at exactly the weights of one process that takes the same two
    halves as micro-batches.

    Exact by construction, on any CPU: both runs draw the same global batch (indices, t, eps, dropout) from the same
    generator and split it into the same two halves (NoiseDraw.part), so each half's forward and backward is the same
    computation on the same shapes, single-threaded, in both runs. Rank r gets g_r, the gradient of its half's mean
    loss; DDP averages them, (g_0 + g_1) / 2, and the one process accumulates g_0 / 2 + g_1 / 2 (each micro-batch's
    loss divided by 2 before backward, which scales every gradient by exactly 1/2). Halving is exact in binary
    floating point (barring subnormals) and fl(a/2 + b/2) = fl(a + b)/2, so the two gradients are equal bit for bit,
    and so are the clipping, Adam and EMA steps that follow. (A comparison with ONE process on the WHOLE batch could
    only agree to round-off: its convolutions sum over 16 images in an order oneDNN picks per CPU, and Adam turns a
    round-off difference in a near-zero gradient into a visible one — the 1e-5 tolerance this test used to have failed
    on an AMD EPYC for that reason.)"""
    script = tmp_path / 'run.py'; script.write_text(DDP_SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / 'one'), '--micro-batches', '2', *TINY_ARGS],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([str(BIN / 'torchrun'), '--standalone', '--nproc_per_node', '2', str(script), str(tmp_path / 'two'), *TINY_ARGS],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = _weights(tmp_path / 'one' / 'ckpt.pt'), _weights(tmp_path / 'two' / 'ckpt.pt')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert json.loads((tmp_path / 'two' / 'card.json').read_text())['world_size'] == 2

def test_cli_train_resume_sample_gif(tmp_path):
    "The whole user path through the installed console script, in fresh processes."
    cli = lambda *a: subprocess.run([str(BIN / 'ddpm-nb'), *a], capture_output=True, text=True, timeout=300,
                                    env={**os.environ, 'OMP_NUM_THREADS': '1'})
    r = cli('train', '--preset', 'digits', '--steps', '3', '--out', str(tmp_path / 'run'), '--no-progress', *TINY_ARGS)
    assert r.returncode == 0, r.stderr
    r = cli('train', '--preset', 'digits', '--steps', '6', '--out', str(tmp_path / 'run'), '--no-progress', '--resume', *TINY_ARGS)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / 'run' / 'card.json').read_text())['training']['step'] == 6
    r = cli('sample', '--ckpt', str(tmp_path / 'run' / 'ckpt.pt'), '--n', '10', '--steps', '4', '--guidance', '1', '--out', str(tmp_path / 's.png'))
    assert r.returncode == 0, r.stderr
    assert load_file(tmp_path / 's.safetensors')['images'].shape == (10, 1, 8, 8) and (tmp_path / 's.png').stat().st_size > 0
    r = cli('sample', '--ckpt', str(tmp_path / 'run' / 'ckpt.pt'), '--n', '10', '--steps', '4', '--precision', 'bf16', '--out', str(tmp_path / 'b.png'))
    assert r.returncode == 0, r.stderr
    x16 = load_file(tmp_path / 'b.safetensors')['images']
    assert x16.shape == (10, 1, 8, 8) and torch.isfinite(x16).all()
    r = cli('sample', '--ckpt', str(tmp_path / 'run' / 'ckpt.pt'), '--precision', 'fp16', '--out', str(tmp_path / 'c.png'))
    assert r.returncode == 2 and "invalid choice: 'fp16'" in r.stderr and 'Traceback' not in r.stderr
    r = cli('gif', '--ckpt', str(tmp_path / 'run' / 'ckpt.pt'), '--classes', '1,2', '--frames', '5', '--sampler', 'ancestral',
            '--out', str(tmp_path / 'a.gif'))
    assert r.returncode == 0, r.stderr
    from PIL import Image
    assert Image.open(tmp_path / 'a.gif').n_frames == 5
    r = cli('train', '--preset', 'digits', '--out', str(tmp_path / 'run'), *TINY_ARGS)
    assert r.returncode == 2 and 'already holds a checkpoint' in r.stderr and 'Traceback' not in r.stderr

def test_load_model_uses_ema(tmp_path):
    t = Trainer(_tiny(), load_digits(8), tmp_path, progress=False)
    t.fit(3)
    m, d, p = load_model(tmp_path / 'ckpt.pt')
    assert p == _tiny() and d.T == 20 and not m.training
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), t.ema.model.state_dict().values()))

def test_patched_model_trains_checkpoints_and_reloads(tmp_path):
    "patch_size travels in the checkpoint's preset: load_model rebuilds the patched network."
    p = _tiny(patch_size=2, channel_mults=(1, 2))
    Trainer(p, load_digits(8), tmp_path, progress=False, ckpt_every=0).fit(3)
    model, diffusion, q = load_model(tmp_path / 'ckpt.pt')
    assert q.patch_size == 2 and model.patch_size == 2
    x = diffusion.sample(model, (2, 1, 8, 8), torch.tensor([1, 2]), sampler='ddim', steps=3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 8, 8) and torch.isfinite(x).all()


def test_progress_bar_and_final_line_report_the_same_loss(tmp_path, capsys):
    "The bar once showed one batch's loss (0.5583) while the final line said 0.8527: both are now the window's mean."
    p = load_preset('digits', image_size=8, base_channels=8, T=20, batch_size=16, warmup=2, precision='fp32', steps=8)
    s = Trainer(p, load_digits(8), tmp_path / 'run', progress=True, log_every=3).fit()     # last window: steps 7, 8
    last = capsys.readouterr().err.replace('\r', '\n').strip().splitlines()[-1]
    assert f"loss={s['final_loss']:.4f}" in last, (last, s['final_loss'])
