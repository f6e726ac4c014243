"""The reliability catalogue (RELIABILITY.md), one test per row: every bad input a clear error, nothing lost, nothing run.

A row a user meets on the command line is checked the way they meet it: `ddpm-nb ...` exits with code 2 and prints one
line on stderr naming the problem and the fix, with no stack trace. Most rows call `ddpm_nb.cli.main` in this process
(an exception escaping `main` is what prints a traceback, so `cli` below records it as one); the signal rows and
`test_console_script_rows` run the installed `ddpm-nb` console script in a real subprocess. Library-level rows check
the exception and its message. Every row also checks that nothing was lost: an earlier checkpoint is byte-identical,
no output folder appears for a run that never started, no temporary file is left behind.

"""
import contextlib, errno, gzip, io, json, os, pickle, random, re, shutil, signal, socket, struct, subprocess, sys, tempfile
import time, traceback, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from ddpm_nb.cli import main
from ddpm_nb.presets import load_preset, PresetError
from ddpm_nb.data import load_digits, load_mnist, load_cifar10, load_splits, ImageDataset, DataError
from ddpm_nb.unet import UNet
from ddpm_nb import testing
from ddpm_nb.testing import write_idx
from ddpm_nb.diffusion import Diffusion
from ddpm_nb.train import Trainer, TrainingError
from ddpm_nb.checkpoint import (CheckpointError, save_checkpoint, load_checkpoint, load_model,
                           CKPT_FORMAT)

ROOT = Path(__file__).resolve().parent.parent
TINY_ARGS = ['image_size=8', 'base_channels=8', 'T=20', 'batch_size=16', 'warmup=2', 'precision=fp32']
TINY = dict(image_size=8, base_channels=8, T=20, batch_size=16, warmup=2, precision='fp32')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


# ---------------------------------------------------------------------------------------------------- helpers
def cli(*argv):
    "Run `ddpm-nb argv` in this process as the console script would: (exit code, stdout, stderr); 'traceback' if it raised."
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('default')                                 # warnings reach stderr, as in a fresh process
        try: code = main([str(a) for a in argv])
        except SystemExit as ex: code = ex.code
        except BaseException: code = 'traceback'; traceback.print_exc()   # what the user would see
    shown = ''.join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return code, o.getvalue(), shown + e.getvalue()

def user_error(argv, *fragments, code=2):
    "Assert `ddpm-nb argv` fails as a user error should: `code`, one stderr line holding every fragment, no traceback."
    if argv[0] == 'train' and '--steps' not in argv: argv = [*argv, '--steps', '1']   # should a row ever start a run: a short one
    got, out, err = cli(*argv)
    assert 'Traceback' not in err, err
    assert got == code, (got, err)
    assert len(err.strip().splitlines()) == 1, err
    for f in fragments: assert f in err, (f, err)
    return err.strip()

def console():
    "The installed console script (pip -e puts it next to the interpreter)."
    exe = Path(sys.executable).parent / 'ddpm-nb'
    return [str(exe)] if exe.exists() else [sys.executable, '-c', 'from ddpm_nb.cli import _entry; _entry()']

def fake_mnist(folder, n=20, labels=None, images=None):
    "An MNIST training split of `n` blank 28x28 digits in `folder` (the book's fixture, blank by default)."
    return testing.fake_mnist(folder, n, 'train', labels, np.zeros((n, 28, 28)) if images is None else images)

def weights(path):
    "Model and EMA tensors of a checkpoint, by name."
    s = load_checkpoint(path)
    return {**{'model.' + k: v for k, v in s['model'].items()}, **{'ema.' + k: v for k, v in s['ema'].items()}}

def same_weights(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

class Evil:
    "A pickle payload: unpickling it would run a shell command that creates `marker`."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def digits8(): return load_digits(8)

@pytest.fixture(scope='module')
def run_dir(digits8, tmp_path_factory):
    "A tiny conditional run (2 steps) made exactly as `ddpm-nb train --preset digits <TINY_ARGS>` would make it."
    out = tmp_path_factory.mktemp('cond') / 'run'
    Trainer(load_preset('digits', ROOT / 'settings.ini', **TINY), digits8, out, progress=False).fit(2)
    return out

@pytest.fixture(scope='module')
def unc_ckpt(digits8, tmp_path_factory):
    "A tiny unconditional checkpoint (num_classes = 0)."
    out = tmp_path_factory.mktemp('unc') / 'run'
    p = load_preset('digits', **TINY, num_classes=0, conditioning='none', p_uncond=0.0)
    Trainer(p, digits8, out, progress=False).fit(1)
    return out / 'ckpt.pt'

@pytest.fixture
def run_copy(run_dir, tmp_path):
    "A private copy of the tiny run, for rows that try to change it."
    return Path(shutil.copytree(run_dir, tmp_path / 'run'))

@pytest.fixture(scope='module')
def tiny_models():
    "(conditional UNet, unconditional UNet, Diffusion) of the tiny preset, untrained."
    p = load_preset('digits', **TINY)
    return (UNet.from_preset(p).eval(), UNet.from_preset(p.replace(num_classes=0, conditioning='none', p_uncond=0.0)).eval(),
            Diffusion.from_preset(p))


# ==================================================================================================== presets
def test_preset_unknown_name(tmp_path):
    user_error(['train', '--preset', 'digitz', '--out', tmp_path / 'o'], "unknown preset 'digitz'", 'choose one of digits, mnist, cifar10')
    assert not (tmp_path / 'o').exists()                             # nothing started, nothing written

@pytest.mark.parametrize('args, msg', [
    (['lerning_rate=3'], "[digits] unknown override 'lerning_rate'; known keys: dataset,"),
    (['lr'], "override 'lr' must look like key=value"),
])
def test_preset_unknown_key_on_the_command_line(tmp_path, args, msg):
    user_error(['train', '--preset', 'digits', '--out', tmp_path / 'o', *args], msg)
    assert not (tmp_path / 'o').exists()

def _digits_section(): return (ROOT / 'settings.ini').read_text().split('[mnist]')[0]

@pytest.mark.parametrize('edit, msg', [
    (lambda s: s + 'lerning_rate = 3\n', '[digits] unknown key(s) lerning_rate'),
    (lambda s: re.sub(r'^lr *=.*\n', '', s, flags=re.M), '[digits] missing key(s): lr'),
    (lambda s: re.sub(r'^T *=.*$', 'T = many', s, flags=re.M), "[digits] T = 'many' is not a number (int)"),
])
def test_preset_unknown_missing_or_mistyped_key_in_the_file(tmp_path, edit, msg):
    ini = tmp_path / 'p.ini'; ini.write_text(edited := edit(_digits_section()))
    assert edited != _digits_section()
    user_error(['train', '--preset', 'digits', '--presets', ini, '--out', tmp_path / 'o'], msg)
    assert not (tmp_path / 'o').exists()

@pytest.mark.parametrize('args, msg', [
    (['lr=fast'], "[digits] lr = 'fast' is not a number (float)"),
    (['T=2.5'], "[digits] T = '2.5' is not a number (int)"),
    (['channel_mults=1,two'], "[digits] channel_mults = '1,two' is not comma-separated integers"),
    (['schedule=quadratic'], "[digits] schedule = 'quadratic' is not allowed: expected one of linear, cosine, sigmoid"),
])
def test_preset_wrong_type(tmp_path, args, msg):
    user_error(['train', '--preset', 'digits', '--out', tmp_path / 'o', *args], msg)

def test_preset_wrong_type_from_python():
    "Values passed from Python are type-checked too (the command line only ever passes text)."
    for kw, msg in [(dict(T=2.5), '[digits] T = 2.5 is not allowed: expected an integer'),
                    (dict(lr=float('inf')), '[digits] lr = inf is not allowed: expected a finite number'),
                    (dict(channel_mults=[1, 2]), 'expected integers'), (dict(steps=True), 'expected an integer')]:
        with pytest.raises(PresetError) as e: load_preset('digits', **kw)
        assert msg in str(e.value), (kw, str(e.value))

@pytest.mark.parametrize('args, msg', [
    (['lr=-1'], '[digits] lr = -1.0 is not allowed: expected > 0'),
    (['lr=inf'], '[digits] lr = inf is not allowed: expected a finite number'),
    (['lr=nan'], '[digits] lr = nan is not allowed'),
    (['T=0'], '[digits] T = 0 is not allowed: expected >= 1'),
    (['batch_size=0'], '[digits] batch_size = 0 is not allowed: expected >= 1'),
    (['p_uncond=1'], '[digits] p_uncond = 1.0 is not allowed: expected in [0, 1)'),
    (['image_size=12', 'channel_mults=1,2,2,2'], 'channel_mults = (1, 2, 2, 2) is not allowed: expected a ladder that divides '
                                                 'image_size 12: 12 must divide by 2**3'),
    (['patch_size=3'], '[digits] patch_size = 3 is not allowed: expected a divisor of image_size 8'),
    (['patch_size=2', 'channel_mults=1,2,2,2'], 'expected a ladder that divides image_size 8 / patch_size 2: 4 must divide by 2**3'),
])
def test_preset_out_of_range(tmp_path, args, msg):
    user_error(['train', '--preset', 'digits', '--out', tmp_path / 'o', *args], msg)
    assert not (tmp_path / 'o').exists()

def test_preset_missing_section_or_file(tmp_path):
    ini = tmp_path / 'p.ini'; ini.write_text('[other]\nT = 5\n')
    user_error(['train', '--preset', 'digits', '--presets', ini], "unknown preset 'digits': choose one of other", str(ini))
    user_error(['train', '--preset', 'digits', '--presets', tmp_path / 'no.ini'], 'presets file not found', 'or none for the packaged presets')


# ==================================================================================================== data
@pytest.fixture
def offline(monkeypatch):
    "Any attempt to open a network connection fails the test: data rows must not reach for the network."
    def refuse(*a, **k): raise AssertionError('the network was used')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)

def test_data_missing_dataset_offline(tmp_path, offline):
    user_error(['train', '--preset', 'mnist', '--out', tmp_path / 'o'], "dataset 'mnist' is read from files: pass root=")
    (tmp_path / 'empty').mkdir()
    user_error(['train', '--preset', 'mnist', '--data-root', tmp_path / 'empty', '--out', tmp_path / 'o'],
               f"no MNIST training files in {tmp_path / 'empty'} (it is empty)", 'put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz')
    assert not (tmp_path / 'o').exists()

def test_data_only_the_test_split(tmp_path, offline):
    d = tmp_path / 'm'; d.mkdir()
    write_idx(d / 't10k-images-idx3-ubyte', np.zeros((20, 28, 28))); write_idx(d / 't10k-labels-idx1-ubyte', np.arange(20) % 10)
    user_error(['train', '--preset', 'mnist', '--data-root', d], 'holds only the MNIST test split', 'allow_test_as_train')

def test_data_wrong_folder(tmp_path, offline):
    fake_mnist(tmp_path / 'data' / 'digits_here')                    # the files are one folder further down
    user_error(['train', '--preset', 'mnist', '--data-root', tmp_path / 'data'], '(it holds digits_here/)')
    (tmp_path / 'c' / 'train' / 'cat').mkdir(parents=True)             # a CIFAR split folder given instead of its parent
    Image.new('RGB', (32, 32)).save(tmp_path / 'c' / 'train' / 'cat' / '0.png')
    user_error(['train', '--preset', 'cifar10', '--data-root', tmp_path / 'c' / 'train'], 'looks like a split folder itself, pass its parent')

@pytest.mark.parametrize('damage, msg', [
    (lambda raw: raw[:-5], 'the file is truncated or corrupt, fetch it again'),
    (lambda raw: gzip.compress(raw)[:15], 'is a damaged gzip file'),
    (lambda raw: b'<html>404 not found</html>', 'is not an IDX file'),
])
def test_data_corrupt_idx(tmp_path, offline, damage, msg):
    d = fake_mnist(tmp_path / 'm')
    f = d / 'train-labels-idx1-ubyte'; f.write_bytes(damage(f.read_bytes()))
    user_error(['train', '--preset', 'mnist', '--data-root', d, '--out', tmp_path / 'o'], msg, str(f))
    assert not (tmp_path / 'o').exists()

def test_data_empty(tmp_path, offline):
    user_error(['train', '--preset', 'mnist', '--data-root', fake_mnist(tmp_path / 'm', n=0)], 'is empty (0 images)')
    (tmp_path / 'c' / 'train' / 'cat').mkdir(parents=True)
    user_error(['train', '--preset', 'cifar10', '--data-root', tmp_path / 'c'], 'has class folders but no images in them', 'the dataset is empty')

@pytest.mark.parametrize('args, msg', [
    (['image_size=32'], "has 28x28 images but preset 'mnist' expects 32x32: set image_size = 28, or resize explicitly"),
    (['channels=3'], "has 1-channel images but preset 'mnist' expects 3: set channels = 1"),
])
def test_data_wrong_size_or_channels_for_the_model(tmp_path, offline, args, msg):
    user_error(['train', '--preset', 'mnist', '--data-root', fake_mnist(tmp_path / 'm'), *args], msg)

def test_data_labels_outside_the_classes(tmp_path, offline):
    user_error(['train', '--preset', 'mnist', '--data-root', fake_mnist(tmp_path / 'm', labels=np.arange(20))],
               '10 labels outside 0..9 (e.g. 10)')
    user_error(['train', '--preset', 'mnist', '--data-root', fake_mnist(tmp_path / 'm2'), 'num_classes=5'],
               "has labels up to 9 but preset 'mnist' has num_classes = 5: set num_classes = 10")

def test_data_nan_pixels_and_batch_larger_than_data(tmp_path):
    x = torch.zeros(4, 1, 8, 8); x[1, 0, 2, 2] = float('nan')
    with pytest.raises(DataError, match=r'expected \[-1, 1\]'): ImageDataset(x, torch.zeros(4).long(), 10)
    user_error(['train', '--preset', 'digits', '--out', tmp_path / 'o', *TINY_ARGS, 'batch_size=5000'],
               'batch_size 5000 is larger than the dataset (1437 images)')


# ==================================================================================================== model and sampling
def test_sampling_labels_missing_or_extra(tiny_models, unc_ckpt, tmp_path):
    cond, unc, diff = tiny_models
    with pytest.raises(ValueError, match=r'the model is conditional \(10 classes\): pass labels y'): diff.sample(cond, (2, 1, 8, 8), steps=2)
    with pytest.raises(ValueError, match='the model is unconditional.*drop y'): diff.sample(unc, (2, 1, 8, 8), torch.tensor([1, 2]), steps=2)
    with pytest.raises(ValueError, match=r'labels y must be an integer tensor of shape \(2,\)'): diff.sample(cond, (2, 1, 8, 8), torch.tensor([1]), steps=2)
    user_error(['sample', '--ckpt', unc_ckpt, '--classes', '1', '--out', tmp_path / 'x.png'],
               "--classes given but the checkpoint's model is unconditional")
    assert not (tmp_path / 'x.png').exists()

def test_sampling_labels_out_of_range(tiny_models, run_dir, tmp_path):
    cond, _, diff = tiny_models
    with pytest.raises(ValueError, match=r'labels must lie in 0\.\.10'): diff.sample(cond, (2, 1, 8, 8), torch.tensor([3, 11]), steps=2)
    for c in ('12', '-1'):
        user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', '--classes', c, '--out', tmp_path / 'x.png'], 'out of range: this model has classes 0..9')
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', '--classes', 'a,b', '--out', tmp_path / 'x.png'], 'expected comma-separated integers')

def test_sampling_guidance_on_an_unconditional_model(tiny_models, unc_ckpt, tmp_path):
    _, unc, diff = tiny_models
    with pytest.raises(ValueError, match='needs a conditional model'): diff.sample(unc, (2, 1, 8, 8), steps=2, guidance=3.0)
    user_error(['sample', '--ckpt', unc_ckpt, '--guidance', '3', '--steps', '2', '--out', tmp_path / 'x.png'],
               'guidance=3.0 needs a conditional model', 'use guidance=0')

@pytest.mark.parametrize('args, msg', [
    (['--steps', '50'], 'the number of sampling steps must be an integer in 1..20, got 50'),
    (['--sampler', 'ancestral', '--steps', '21'], 'integer in 1..20, got 21'),
    (['--steps', '0'], "argument --steps: expected an integer >= 1, got '0'"),
    (['--steps', 'ten'], "argument --steps: expected an integer >= 1, got 'ten'"),
    (['--eta', '-1', '--steps', '2'], 'eta must be a finite number >= 0'),
    (['--sampler', 'plms'], "invalid choice: 'plms'"),
    (['--precision', 'fp16'], "argument --precision: invalid choice: 'fp16'"),
])
def test_sampling_step_counts_out_of_range(run_dir, tmp_path, args, msg):
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', *args, '--out', tmp_path / 'x.png'], msg)
    assert not (tmp_path / 'x.png').exists()

def test_sampling_step_counts_library(tiny_models):
    cond, _, diff = tiny_models
    y = torch.tensor([1, 2])
    for k in (0, 21, 2.5):
        with pytest.raises(ValueError, match='must be an integer in 1..20'): diff.sample(cond, (2, 1, 8, 8), y, steps=k)

def test_batch_size_zero(tiny_models, run_dir, tmp_path):
    cond, _, diff = tiny_models
    with pytest.raises(ValueError, match='B >= 1'): diff.sample(cond, (0, 1, 8, 8), torch.zeros(0, dtype=torch.long), steps=2)
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', '--n', '0', '--out', tmp_path / 'x.png'], "argument --n: expected an integer >= 1, got '0'")
    user_error(['train', '--preset', 'digits', 'batch_size=0'], 'batch_size = 0 is not allowed: expected >= 1')

def test_nan_or_inf_start_noise(tiny_models):
    cond, _, diff = tiny_models
    for bad in (float('nan'), float('inf')):
        x_T = torch.zeros(2, 1, 8, 8); x_T[0, 0, 0, 0] = bad
        with pytest.raises(ValueError, match='x_T contains NaN or inf'): diff.sample(cond, (2, 1, 8, 8), torch.tensor([1, 2]), steps=2, x_T=x_T)

@pytest.mark.parametrize('args', [['--guidance', 'nan'], ['--guidance', 'inf'], ['--eta', 'nan']])
def test_nan_or_inf_sampling_options(run_dir, tmp_path, args):
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', *args, '--steps', '2', '--n', '2', '--out', tmp_path / 'x.png'], 'finite')
    assert not (tmp_path / 'x.png').exists()


# ==================================================================================================== training
def test_training_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    out = tmp_path / 'run'
    err = user_error(['train', '--preset', 'digits', '--steps', '30', '--out', out, *TINY_ARGS, 'lr=1e12', 'grad_clip=0',
                      '--ckpt-every', '1', '--no-progress'], 'loss became', 'the last good checkpoint in', 'Try a lower lr', code=1)
    good = load_checkpoint(out / 'ckpt.pt')
    assert f"at step {good['step'] + 1};" in err, err                # the message names the step that diverged ...
    assert good['step'] >= 1 and all(torch.isfinite(v).all() for v in weights(out / 'ckpt.pt').values())   # ... the file the one before
    assert not list(out.glob('*.tmp'))

def _oom(*a, **k): raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')

def test_training_out_of_memory_suggests_a_smaller_batch(digits8, tmp_path, monkeypatch):
    tr = Trainer(load_preset('digits', **TINY), digits8, tmp_path, progress=False, ckpt_every=1)
    tr.fit(2)
    before = (tmp_path / 'ckpt.pt').read_bytes()
    monkeypatch.setattr(tr.model, 'forward', _oom)                   # what a GPU does when the batch does not fit
    with pytest.raises(TrainingError) as e: tr.fit(5)
    assert 'out of memory' in str(e.value) and 'at step 3' in str(e.value) and 'batch_size' in str(e.value), str(e.value)
    assert (tmp_path / 'ckpt.pt').read_bytes() == before

def test_training_out_of_memory_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(UNet, 'forward', _oom)
    user_error(['train', '--preset', 'digits', '--steps', '3', '--out', tmp_path / 'o', *TINY_ARGS, '--no-progress'],
               'out of memory', 'smaller batch', code=1)

def test_training_ctrl_c_writes_a_resumable_checkpoint(tmp_path):
    out = tmp_path / 'run'
    p = subprocess.Popen([*console(), 'train', '--preset', 'digits', '--steps', '100000', '--out', str(out), *TINY_ARGS,
                          '--ckpt-every', '0', '--log-every', '1', '--no-progress'],
                         cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / 'log.csv').exists():                        # training has started (the handler is installed)
            assert p.poll() is None and time.time() < deadline, p.communicate()
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 130, (stdout, stderr)
    assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr, stderr
    step = load_checkpoint(out / 'ckpt.pt')['step']
    assert f'interrupted at step {step}: resumable checkpoint written to {out / "ckpt.pt"}' in stdout, stdout
    assert 0 < step < 100000 and not list(out.glob('*.tmp'))
    code, o, e = cli('train', '--preset', 'digits', '--steps', step + 2, '--out', out, '--resume', *TINY_ARGS, '--no-progress')
    assert code == 0, e
    assert json.loads((out / 'card.json').read_text())['training']['step'] == step + 2

@pytest.mark.parametrize('where', ['write', 'fsync', 'rename'])
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    path = tmp_path / 'ckpt.pt'
    save_checkpoint({'step': 1, 'w': torch.ones(3)}, path)
    before = path.read_bytes()
    def full(*a, **k):
        if where == 'write': a[1].write(b'half a checkpoint')          # torch.save(obj, f): some bytes got out first
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(*{'write': (torch, 'save'), 'fsync': (os, 'fsync'), 'rename': (os, 'replace')}[where], full)
    with pytest.raises(CheckpointError) as e: save_checkpoint({'step': 2, 'w': torch.zeros(3)}, path)
    monkeypatch.undo()
    assert f'could not write checkpoint {path}: No space left on device; the previous checkpoint {path} is intact' == str(e.value)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]   # old bytes, no temp file left
    assert load_checkpoint(path)['step'] == 1

def test_disk_full_mid_run_on_the_command_line(tmp_path, monkeypatch):
    out, real, calls = tmp_path / 'run', torch.save, []
    def fills_up(obj, f, *a, **k):
        calls.append(1)
        if len(calls) > 2: raise OSError(errno.ENOSPC, 'No space left on device')
        return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, 'save', fills_up)
    user_error(['train', '--preset', 'digits', '--steps', '6', '--out', out, *TINY_ARGS, '--ckpt-every', '1', '--no-progress'],
               f'could not write checkpoint {out / "ckpt.pt"}: No space left on device; the previous checkpoint', 'is intact')
    monkeypatch.undo()
    assert load_checkpoint(out / 'ckpt.pt')['step'] == 2 and not list(out.glob('*.tmp'))

def test_unwritable_output_folder_library(tmp_path, monkeypatch):
    (tmp_path / 'afile').write_text('a file, not a folder')
    with pytest.raises(CheckpointError, match='cannot write checkpoints to .*afile/run.*choose a writable --out folder'):
        save_checkpoint({'step': 1}, tmp_path / 'afile' / 'run' / 'ckpt.pt')
    def denied(*a, **k): raise PermissionError(errno.EACCES, 'Permission denied')   # chmod does not stop root: simulate it
    monkeypatch.setattr(tempfile, 'mkstemp', denied)
    with pytest.raises(CheckpointError, match='cannot write checkpoints to .*: Permission denied; choose a writable --out folder'):
        save_checkpoint({'step': 1}, tmp_path / 'ro' / 'ckpt.pt')

def test_unwritable_output_folder_train(tmp_path):
    (tmp_path / 'afile').write_text('a file, not a folder')
    user_error(['train', '--preset', 'digits', '--steps', '2', '--out', tmp_path / 'afile' / 'run', *TINY_ARGS, '--no-progress'],
               'afile', 'writable')

def test_unwritable_output_folder_sample(run_dir, tmp_path):
    (tmp_path / 'afile').write_text('a file, not a folder')
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', '--steps', '2', '--out', tmp_path / 'afile' / 'x.png'], 'afile')

def test_existing_run_is_not_overwritten(run_copy):
    before = (run_copy / 'ckpt.pt').read_bytes()
    user_error(['train', '--preset', 'digits', '--out', run_copy, *TINY_ARGS], 'already holds a checkpoint: pass --resume')
    assert (run_copy / 'ckpt.pt').read_bytes() == before

def test_resume_without_a_checkpoint(tmp_path):
    user_error(['train', '--preset', 'digits', '--steps', '2', '--out', tmp_path / 'o', '--resume', *TINY_ARGS, '--no-progress'],
               f"--resume: no checkpoint at {tmp_path / 'o' / 'ckpt.pt'}")


# ==================================================================================================== checkpoints
@pytest.mark.parametrize('make, msg', [
    (lambda good: good[: len(good) // 2], 'is not a readable ddpm_nb checkpoint (truncated, corrupt'),
    (lambda good: good[:200] + np.random.default_rng(1).bytes(500) + good[700:], 'is not a readable ddpm_nb checkpoint'),
    (lambda good: np.random.default_rng(0).bytes(4000), 'is not a readable ddpm_nb checkpoint'),
])
def test_checkpoint_truncated_or_corrupt(run_copy, make, msg):
    good = (run_copy / 'ckpt.pt').read_bytes()
    bad = run_copy / 'bad.pt'; bad.write_bytes(damaged := make(good))
    with pytest.raises(CheckpointError, match='is not a readable ddpm_nb checkpoint'): load_checkpoint(bad)
    user_error(['sample', '--ckpt', bad, '--out', run_copy / 'x.png'], msg, str(bad))
    bad.replace(run_copy / 'ckpt.pt')                                   # a damaged ckpt.pt in a run folder: --resume refuses it
    user_error(['train', '--preset', 'digits', '--out', run_copy, '--resume', *TINY_ARGS, '--no-progress'], msg)
    assert (run_copy / 'ckpt.pt').read_bytes() == damaged               # left as it was, for the user to inspect
    assert not (run_copy / 'x.png').exists()

def test_checkpoint_from_a_different_architecture(run_copy):
    before = (run_copy / 'ckpt.pt').read_bytes()
    args = ['image_size=8', 'base_channels=16', 'T=25', 'batch_size=16', 'warmup=2']
    user_error(['train', '--preset', 'digits', '--steps', '4', '--out', run_copy, '--resume', *args, '--no-progress'],
               'the checkpoint was made for a different model/diffusion:', 'T: checkpoint 20 vs now 25', 'base_channels: checkpoint 8 vs now 16')
    assert (run_copy / 'ckpt.pt').read_bytes() == before

def _misfit(run_copy):
    "A checkpoint whose preset says base_channels = 16 but whose weights were trained with 8."
    state = load_checkpoint(run_copy / 'ckpt.pt')
    p = json.loads(state['preset']); p['base_channels'] = 16
    return save_checkpoint({k: v for k, v in state.items() if k != 'format'} | {'preset': json.dumps(p)}, run_copy / 'edited.pt')

def test_checkpoint_weights_that_do_not_fit_their_preset(run_copy):
    code, out, err = cli('sample', '--ckpt', _misfit(run_copy), '--out', run_copy / 'x.png')
    assert code == 2 and 'Traceback' not in err and 'weights do not fit the model its preset describes' in err, err
    assert not (run_copy / 'x.png').exists()

def test_checkpoint_weights_that_do_not_fit_one_line(run_copy):
    user_error(['sample', '--ckpt', _misfit(run_copy), '--out', run_copy / 'x.png'], 'weights do not fit', 'time_embed')

def test_not_a_checkpoint(run_copy, tmp_path):
    Image.new('L', (8, 8)).save(tmp_path / 'samples.png')
    torch.save({'step': 3, 'model': {}}, tmp_path / 'other.pt')          # some other program's torch file
    torch.save({'format': 'ddpm_nb-checkpoint-v0', 'step': 3}, tmp_path / 'old.pt')   # another version's checkpoint
    for f, msg in [(tmp_path / 'samples.png', 'is not a readable ddpm_nb checkpoint'),
                   (tmp_path / 'other.pt', f"is not a ddpm_nb checkpoint (expected format '{CKPT_FORMAT}')"),
                   (tmp_path / 'old.pt', f"is not a ddpm_nb checkpoint (expected format '{CKPT_FORMAT}')"),
                   (tmp_path, 'no checkpoint at'), (tmp_path / 'missing.pt', 'no checkpoint at')]:
        user_error(['sample', '--ckpt', f, '--out', tmp_path / 'x.png'], msg, str(f))
    assert not (tmp_path / 'x.png').exists()

def _evil_files(d):
    "The same payload three ways: a raw pickle (protocol 2 and 4) and a torch.save zip archive."
    marker = d / 'pwned'
    payload = {'format': CKPT_FORMAT, 'step': 1, 'model': Evil(marker)}
    (d / 'evil_p2.pt').write_bytes(pickle.dumps(payload, protocol=2))
    (d / 'evil_p4.pt').write_bytes(pickle.dumps(payload, protocol=4))
    torch.save(payload, d / 'evil_zip.pt')                               # pickling only records the call; it runs nothing
    assert not marker.exists()
    return marker, [d / 'evil_p2.pt', d / 'evil_p4.pt', d / 'evil_zip.pt']

@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
def test_malicious_pickle_is_never_run(tmp_path):
    marker, files = _evil_files(tmp_path)
    for f in files:
        with pytest.raises(CheckpointError, match='code in it is never run'): load_checkpoint(f)
        with pytest.raises(CheckpointError): load_model(f)
        code, out, err = cli('sample', '--ckpt', f, '--out', tmp_path / 'x.png')
        assert code == 2 and 'Traceback' not in err and f'ddpm-nb sample: error: {f} is not a readable ddpm_nb checkpoint' in err, err
        code, out, err = cli('gif', '--ckpt', f, '--out', tmp_path / 'x.gif')
        assert code == 2 and 'Traceback' not in err, err
        assert not marker.exists(), f'loading {f.name} ran the payload'
    for f in files:                                                      # a poisoned ckpt.pt in a run folder: --resume
        run = tmp_path / f.stem; run.mkdir(); shutil.copy(f, run / 'ckpt.pt')
        code, out, err = cli('train', '--preset', 'digits', '--out', run, '--resume', *TINY_ARGS, '--no-progress')
        assert code == 2 and 'Traceback' not in err and not marker.exists(), err
    pickle.loads(files[0].read_bytes())                                 # control: a plain unpickler does run it
    assert marker.exists()

@pytest.mark.parametrize('name', ['evil_p4.pt', 'evil_zip.pt', 'random'])
def test_refused_file_message_is_one_safe_line(tmp_path, name):
    _evil_files(tmp_path); (tmp_path / 'random').write_bytes(np.random.default_rng(0).bytes(4000))
    err = user_error(['sample', '--ckpt', tmp_path / name, '--out', tmp_path / 'x.png'], 'is not a readable ddpm_nb checkpoint')
    assert 'weights_only' not in err, err                                # never advise turning the protection off


# ==================================================================================================== the console script
def test_console_script_rows(tmp_path):
    "Two rows through the installed `ddpm-nb` in real processes (run side by side): exit 2, one line, no traceback."
    marker, files = _evil_files(tmp_path)
    rows = [(['train', '--preset', 'digitz'], "unknown preset 'digitz'"),
            (['sample', '--ckpt', str(files[2]), '--out', str(tmp_path / 'x.png')], 'not a readable ddpm_nb checkpoint')]
    procs = [subprocess.Popen([*console(), *argv], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv, _ in rows]
    for (argv, msg), p in zip(rows, procs):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 2 and 'Traceback' not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and msg in err and err.startswith(f'ddpm-nb {argv[0]}: error: '), (argv, err)
    assert not marker.exists()


# ==================================================================================================== resume
def test_sigkill_at_random_points_then_resume_is_bit_identical(digits8, tmp_path):
    """Kill `ddpm-nb train` with SIGKILL at random moments, resume each time: the end is the uninterrupted run, bit for bit.

    After every kill ckpt.pt must load (it is only ever replaced by an atomic rename); a killed writer may leave a
    temporary file (`.ckpt.pt.*.tmp`, `.log.csv.*.tmp`, ...) and the run lock's file behind, which are harmless and the
    only other files allowed — and the resumed run removes them."""
    N, rng = 30, random.Random(0)
    train = load_splits('digits', image_size=8).train                   # what `ddpm-nb train` trains on (chapter 6)
    ref = Trainer(load_preset('digits', ROOT / 'settings.ini', **TINY, steps=N), train, tmp_path / 'ref', progress=False, ckpt_every=1)
    ref.fit()                                                            # the uninterrupted CPU run, same code path as the CLI's
    out = tmp_path / 'killed'
    argv = [*console(), 'train', '--preset', 'digits', '--steps', str(N), '--out', str(out), *TINY_ARGS,
            '--ckpt-every', '1', '--log-every', '1', '--no-progress']
    steps_at_kill = []
    for attempt in range(2):
        resume = ['--resume'] if (out / 'ckpt.pt').exists() else []
        rows = len((out / 'log.csv').read_text().splitlines()) if (out / 'log.csv').exists() else 0
        p = subprocess.Popen(argv + resume, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline:               # wait until two steps are logged (the first is
            if (out / 'log.csv').exists() and len((out / 'log.csv').read_text().splitlines()) > max(rows, 1) + 1: break  # saved)
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.5))
        p.send_signal(signal.SIGKILL); p.wait(timeout=60)
        step = load_checkpoint(out / 'ckpt.pt')['step']                   # complete after every kill
        assert not steps_at_kill or step >= steps_at_kill[-1]
        steps_at_kill.append(step)
        others = {f.name for f in out.iterdir()} - {'ckpt.pt', 'log.csv', 'card.json', 'samples.png'}
        assert others <= {f.name for f in out.glob('.*.tmp')} | {'.lock'}, others
        if step == N: break
    assert any(0 < s < N for s in steps_at_kill), steps_at_kill          # at least one kill landed mid-run
    r = subprocess.run(argv + ['--resume'], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert {f.name for f in out.iterdir()} == {'ckpt.pt', 'log.csv', 'card.json', 'samples.png'}   # nothing stale left
    assert same_weights(weights(out / 'ckpt.pt'), weights(tmp_path / 'ref' / 'ckpt.pt')), steps_at_kill
    a, b = load_checkpoint(out / 'ckpt.pt'), load_checkpoint(tmp_path / 'ref' / 'ckpt.pt')
    assert a['step'] == b['step'] == N and torch.equal(a['rng']['gen'], b['rng']['gen'])

@pytest.mark.parametrize('interrupt', [KeyboardInterrupt, SystemExit])
def test_checkpoint_write_interrupted_midway_leaves_the_old_one(tmp_path, monkeypatch, interrupt):
    "Ctrl-C (or an exit) inside torch.save: the half-written temp file is removed and ckpt.pt keeps its old bytes."
    path = tmp_path / 'ckpt.pt'
    save_checkpoint({'step': 1, 'w': torch.ones(3)}, path); before = path.read_bytes()
    def stopped(obj, f, *a, **k): f.write(b'half'); raise interrupt()
    monkeypatch.setattr(torch, 'save', stopped)
    with pytest.raises(interrupt): save_checkpoint({'step': 2}, path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]

def test_checkpoint_write_order_is_temp_fsync_rename(tmp_path, monkeypatch):
    "The protocol itself: bytes go to a temp file in the same folder, are fsynced, renamed over ckpt.pt, then the folder is fsynced."
    events, real_fsync, real_replace = [], os.fsync, os.replace
    def fsync(fd): events.append(('fsync', os.path.isdir(f'/proc/self/fd/{fd}') if os.path.exists('/proc/self/fd') else None)); real_fsync(fd)
    def replace(a, b): events.append(('rename', Path(a).parent == Path(b).parent, Path(a).name != Path(b).name)); real_replace(a, b)
    monkeypatch.setattr(os, 'fsync', fsync); monkeypatch.setattr(os, 'replace', replace)
    save_checkpoint({'step': 1}, tmp_path / 'ckpt.pt')
    assert [e[0] for e in events] == ['fsync', 'rename', 'fsync'], events
    assert events[1][1:] == (True, True)                                 # same folder (an atomic rename), a different name
    if events[0][1] is not None: assert (events[0][1], events[2][1]) == (False, True)   # the file first, the folder last


def test_new_run_does_not_inherit_an_old_log_or_card(digits8, tmp_path):
    "A folder with an earlier run's log.csv and card.json (its checkpoint deleted): the new run's record is its own."
    out = tmp_path / 'run'; out.mkdir()
    (out / 'log.csv').write_text('step,loss\n999,0.5\n')
    (out / 'card.json').write_text(json.dumps({'metrics': {'accuracy': {'overall': 1.0}}, 'training': {'step': 999}}))
    Trainer(load_preset('digits', ROOT / 'settings.ini', **TINY), digits8, out, progress=False, log_every=1).fit(2)
    card = json.loads((out / 'card.json').read_text())
    assert 'metrics' not in card and card['training']['step'] == 2
    assert [r.split(',')[0] for r in (out / 'log.csv').read_text().splitlines()] == ['step', '1', '2']
    t = Trainer(load_preset('digits', ROOT / 'settings.ini', **TINY), digits8, out, progress=False, log_every=1)
    assert t.resume(); t.fit(4)                                                  # a resumed run appends
    assert [r.split(',')[0] for r in (out / 'log.csv').read_text().splitlines()] == ['step', '1', '2', '3', '4']


# ==================================================================================================== round 2 (#17)
# The cases a hostile pass found that the first catalogue did not list: each failed before its fix.
def files_of(folder):
    "Every file under `folder` with its bytes: to assert that a refused command changed nothing."
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(Path(folder).rglob('*')) if f.is_file()}

@pytest.fixture(scope='module')
def cli_run_dir(tmp_path_factory):
    "A tiny run made by `ddpm-nb train` itself (on the digits' training split), for rows that --resume it."
    out = tmp_path_factory.mktemp('cli') / 'run'
    code, _, err = cli('train', '--preset', 'digits', '--steps', 2, '--out', out, '--no-progress', '--log-every', 1, *TINY_ARGS)
    assert code == 0, err
    return out

@pytest.fixture
def cli_run(cli_run_dir, tmp_path):
    return Path(shutil.copytree(cli_run_dir, tmp_path / 'run'))

def test_sample_never_overwrites_a_checkpoint(run_copy):
    "`--out run/ckpt.png` once wrote the raw samples to run/ckpt.pt; `--ckpt best.pt --out best.png` likewise."
    before = files_of(run_copy)
    user_error(['sample', '--ckpt', run_copy / 'ckpt.pt', '--out', run_copy / 'ckpt.pt'], '--out must end in')
    assert files_of(run_copy) == before
    shutil.copy(run_copy / 'ckpt.pt', run_copy / 'best.pt')
    code, out, err = cli('sample', '--ckpt', run_copy / 'best.pt', '--n', 10, '--steps', 2, '--out', run_copy / 'best.png',
                         '--no-progress')
    assert code == 0, err
    assert (run_copy / 'best.pt').read_bytes() == before['ckpt.pt']          # the checkpoint, untouched
    assert (run_copy / 'best.safetensors').exists()                          # the raw samples went beside the image

def test_card_written_by_two_processes_at_once_stays_valid_json(tmp_path):
    """Two processes merging 200 fields each into one card, started together: valid JSON with all 400.
    (The card once went through one fixed temp name, `card.tmp`: this left invalid JSON, and a failed rename.)"""
    code = ('import sys, time; from pathlib import Path; from ddpm_nb.checkpoint import write_card\n'
            'while not Path(sys.argv[3]).exists(): time.sleep(0.001)\n'          # start together, once both imported
            'for i in range(200): write_card(sys.argv[1], **{f"{sys.argv[2]}{i}": i})')
    card, go = tmp_path / 'card.json', tmp_path / 'go'
    procs = [subprocess.Popen([sys.executable, '-c', code, str(card), who, str(go)], env=ENV) for who in 'ab']
    time.sleep(3)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    got = json.loads(card.read_text())
    assert set(got) == {f'{w}{i}' for w in 'ab' for i in range(200)}
    assert sorted(f.name for f in tmp_path.iterdir()) == ['card.json', 'go']  # no temp file left

def test_second_train_on_one_folder_is_refused(cli_run):
    "A second `train --resume` (or any run) on a folder another run holds: refused at once, nothing of the first touched."
    from ddpm_nb.checkpoint import RunLock
    before = files_of(cli_run)
    with RunLock(cli_run):
        err = user_error(['train', '--preset', 'digits', '--steps', '2', '--out', cli_run, '--resume', *TINY_ARGS],
                         'is in use by another ddpm-nb run', f'pid {os.getpid()}')
    assert {k: v for k, v in files_of(cli_run).items() if k != '.lock'} == before, err

def test_resuming_a_finished_run_keeps_its_training_record(digits8, tmp_path):
    "`make demo` twice resumes a finished run: the card once said images_per_s 0.0, final_loss None."
    out = tmp_path / 'run'
    p = load_preset('digits', ROOT / 'settings.ini', **TINY, steps=3)
    Trainer(p, digits8, out, progress=False).fit()
    first = json.loads((out / 'card.json').read_text())['training']
    t = Trainer(p, digits8, out, progress=False)
    assert t.resume(); t.fit()
    again = json.loads((out / 'card.json').read_text())['training']
    assert again['step'] == 3 and again['final_loss'] == first['final_loss'] and again['images_per_s'] > 0
    assert again['stretches'] == 1                                                 # nothing trained: no new stretch

def test_resume_after_a_kill_cuts_the_log_and_removes_temp_files(digits8, tmp_path):
    "What SIGKILL leaves: log rows after the last checkpoint and stale temp files. The resume cuts and removes them."
    out = tmp_path / 'run'
    p = load_preset('digits', ROOT / 'settings.ini', **TINY, steps=6)
    Trainer(p, digits8, out, progress=False, log_every=1).fit(3)                      # checkpoint at step 3
    with (out / 'log.csv').open('a') as f: f.write('4,0.1,0,0,0,0,0\n5,0.1,0,0,0,0,0\n')   # logged, never checkpointed
    (out / '.ckpt.pt.x1y2.tmp').write_bytes(b'\0' * 1000)                               # a half-written checkpoint
    t = Trainer(p, digits8, out, progress=False, log_every=1)
    assert t.resume(); t.fit()
    steps = [r.split(',')[0] for r in (out / 'log.csv').read_text().splitlines()[1:]]
    assert steps == ['1', '2', '3', '4', '5', '6'], steps
    assert not list(out.glob('.*.tmp'))

def test_eval_with_an_unreadable_card_still_reports(run_copy):
    "A garbage card.json: eval prints its numbers, keeps the bad card aside and writes a new one (it once failed at the end)."
    (run_copy / 'card.json').write_text('{"training": ')
    code, out, err = cli('eval', '--ckpt', run_copy / 'ckpt.pt', '--metrics', 'bpd', '--n', 8, '--no-progress')
    assert code == 0 and 'bpd' in out, (out, err)
    assert 'kept it as' in err and (run_copy / 'card.json.unreadable').read_text() == '{"training": '
    assert 'bpd' in json.loads((run_copy / 'card.json').read_text())['metrics']

def test_changed_lr_on_resume_is_applied_warned_and_recorded(cli_run):
    "`lr=` on --resume: once ignored (the optimizer state brought the old one back) while the card recorded the new one."
    code, out, err = cli('train', '--preset', 'digits', '--steps', 4, '--out', cli_run, '--resume', '--no-progress',
                         '--log-every', 1, *TINY_ARGS, 'lr=0.0005', 'warmup=0')
    assert code == 0, err
    assert 'lr' in err and 'changed' in err.lower(), err
    rows = [r.split(',') for r in (cli_run / 'log.csv').read_text().splitlines()]
    lr = rows[0].index('lr')
    assert [float(r[lr]) for r in rows[1:] if int(r[0]) > 2] == [0.0005, 0.0005]         # what the optimizer used
    opt = load_checkpoint(cli_run / 'ckpt.pt')['optimizer']['param_groups'][0]['lr']
    assert opt == 0.0005

@pytest.mark.parametrize('arch', [['base_channels=16'], ['batch_size=8'], ['seed=3']])
def test_changed_architecture_batch_or_seed_on_resume_is_refused(cli_run, arch):
    "Keys a resumed run cannot honour are refused with what to do, the run folder unchanged."
    before = files_of(cli_run)
    user_error(['train', '--preset', 'digits', '--steps', '4', '--out', cli_run, '--resume', *TINY_ARGS, *arch],
               arch[0].split('=')[0])
    assert {k: v for k, v in files_of(cli_run).items() if k != '.lock'} == before

def test_nan_weights_refused_for_sampling_and_resume(cli_run, tmp_path):
    "NaN weights once sampled an all-black PNG (exit 0) and resumed to 'done'."
    s = load_checkpoint(cli_run / 'ckpt.pt')
    for part in ('model', 'ema'):
        k = next(k for k, v in s[part].items() if v.is_floating_point())
        s[part][k] = torch.full_like(s[part][k], float('nan'))
    save_checkpoint(s, cli_run / 'ckpt.pt')
    user_error(['sample', '--ckpt', cli_run / 'ckpt.pt', '--out', tmp_path / 'x.png'], 'NaN or inf')
    assert not (tmp_path / 'x.png').exists()
    user_error(['train', '--preset', 'digits', '--steps', '4', '--out', cli_run, '--resume', *TINY_ARGS], 'NaN or inf')

def test_guidance_on_a_model_that_never_trained_its_null_class_warns(digits8, tmp_path):
    out = tmp_path / 'run'
    Trainer(load_preset('digits', **TINY, p_uncond=0.0), digits8, out, progress=False).fit(1)
    code, _, err = cli('sample', '--ckpt', out / 'ckpt.pt', '--n', 10, '--steps', 2, '--guidance', 1, '--out',
                       tmp_path / 'x.png', '--no-progress')
    assert code == 0 and 'p_uncond' in err, err

def test_accuracy_of_an_unconditional_model_is_refused(unc_ckpt):
    user_error(['eval', '--ckpt', unc_ckpt, '--metrics', 'accuracy', '--n', '10'], 'unconditional')

@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_cuda_without_a_gpu(run_dir, tmp_path):
    user_error(['sample', '--ckpt', run_dir / 'ckpt.pt', '--device', 'cuda', '--out', tmp_path / 'x.png'], 'cuda')
    user_error(['train', '--preset', 'digits', '--device', 'cuda', '--out', tmp_path / 'r', *TINY_ARGS], 'cuda')
    assert not (tmp_path / 'r').exists()

@pytest.mark.parametrize('change', ['extra', 'missing'])
def test_checkpoint_from_another_version_of_the_preset(run_copy, tmp_path, change):
    "A checkpoint whose stored preset has a key this version does not know, or lacks one: one line, not a TypeError."
    s = load_checkpoint(run_copy / 'ckpt.pt')
    preset = json.loads(s['preset'])
    if change == 'extra': preset['shiny_new_key'] = 1
    else: del preset['p_uncond']
    s['preset'] = json.dumps(preset)
    save_checkpoint(s, run_copy / 'ckpt.pt')
    code, out, err = cli('sample', '--ckpt', run_copy / 'ckpt.pt', '--n', 10, '--steps', 2, '--out', tmp_path / 'x.png',
                         '--no-progress')
    assert code in (0, 2) and 'Traceback' not in err, err
    if code == 2: assert len(err.strip().splitlines()) == 1 and ('shiny_new_key' in err or 'p_uncond' in err), err

def test_malformed_settings_ini_in_the_current_folder(tmp_path, monkeypatch):
    "A broken ./settings.ini picked up from the current folder: one line saying so and how to avoid it."
    (tmp_path / 'settings.ini').write_text('[digits\nlr = 1\n')
    monkeypatch.chdir(tmp_path)
    user_error(['train', '--preset', 'digits', '--out', tmp_path / 'r'], 'settings.ini', '--presets')
    assert not (tmp_path / 'r').exists()

def test_resume_against_a_smaller_dataset(cli_run, digits8):
    "Resuming with another number of images than the run started with (an IndexError once): one line, nothing changed."
    before = files_of(cli_run)
    small = ImageDataset(digits8.images[:40], digits8.labels[:40], digits8.num_classes, name='digits[:40]')
    t = Trainer(load_preset('digits', ROOT / 'settings.ini', **TINY), small, cli_run, progress=False)
    with pytest.raises(DataError, match='dataset of 1437 images, but digits.:40. holds 40: resume with the data'):
        t.resume()
    assert files_of(cli_run) == before

def test_ctrl_c_during_start_up_exits_130(tmp_path, monkeypatch):
    "Ctrl-C before the first step (while the data loads or the precision is probed): exit 130, one line, no traceback."
    import ddpm_nb.cli as cli_mod
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(cli_mod, 'load_splits', interrupted)
    code, out, err = cli('train', '--preset', 'digits', '--steps', 2, '--out', tmp_path / 'r', *TINY_ARGS)
    assert code == 130 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, (code, err)

def test_sample_and_gif_run_in_bounded_batches(run_dir, tmp_path, monkeypatch):
    "--n larger than --batch-size: the network never sees more than one batch (twice that with guidance) at once."
    seen = []
    real = UNet.forward
    def forward(self, x, *a, **k):
        seen.append(x.shape[0]); return real(self, x, *a, **k)
    monkeypatch.setattr(UNet, 'forward', forward)
    code, _, err = cli('sample', '--ckpt', run_dir / 'ckpt.pt', '--n', 30, '--batch-size', 8, '--steps', 2,
                       '--guidance', 1, '--out', tmp_path / 'x.png', '--no-progress')
    assert code == 0, err
    assert max(seen) <= 16 and sum(seen) == 30 * 2 * 2, (max(seen), sum(seen))    # 2 steps, guided: 2 rows per image
    seen.clear()
    code, _, err = cli('gif', '--ckpt', run_dir / 'ckpt.pt', '--n', 30, '--batch-size', 8, '--steps', 2, '--frames', 2,
                       '--out', tmp_path / 'x.gif', '--no-progress')
    assert code == 0, err
    assert max(seen) <= 16, seen


# A table of bad values for every option a user types: exit 2, one line naming the option, no traceback, and nothing
# in the run folder changed (nor any output written).
BAD_VALUES = {
    '--steps': ['0', '-3', '2.5', 'ten', 'nan', '1e99'],
    '--n': ['0', '-1', 'many', 'nan', '1e12'],
    '--guidance': ['-1', 'nan', 'inf', 'strong'],
    '--eta': ['-0.5', 'nan', 'inf', 'x'],
    '--seed': ['-1', 'x', '1.5'],
    '--batch-size': ['0', '-8', 'x'],
    '--classes': ['a', '10', '-1', ',', ''],
    '--nrow': ['0', '-2', 'x'],
    '--sampler': ['plms', ''],
    '--precision': ['fp16', ''],
    '--device': ['gpu', 'cuda:x', ''],
}

@pytest.mark.parametrize('option, value', [(o, v) for o, vs in BAD_VALUES.items() for v in vs])
def test_bad_values_for_sample_options(run_copy, tmp_path, option, value):
    before = files_of(run_copy)
    got, out, err = cli('sample', '--ckpt', run_copy / 'ckpt.pt', '--out', tmp_path / 'x.png', '--no-progress', option, value)
    assert 'Traceback' not in err and got == 2, (option, value, got, err)
    assert len(err.strip().splitlines()) == 1, err
    assert files_of(run_copy) == before and not (tmp_path / 'x.png').exists()

TRAIN_BAD = [['--minutes', '0'], ['--minutes', '-1'], ['--minutes', 'nan'], ['--minutes', 'inf'], ['--steps', '-1'],
             ['--ckpt-every', '-1'], ['--log-every', '0'], ['--log-every', 'x'], ['--micro-batches', '0'],
             ['--micro-batches', '3'], ['--sample-every', '-1'], ['lr=nan'], ['T=1e9'], ['batch_size=-1'],
             ['p_uncond=2'], ['minutes=-1'], ['channel_mults='], ['image_size=0']]

@pytest.mark.parametrize('args', TRAIN_BAD, ids=' '.join)
def test_bad_values_for_train_options(cli_run, args):
    "The same for train on an existing run (with --resume): nothing in the folder may change."
    before = files_of(cli_run)
    got, out, err = cli('train', '--preset', 'digits', '--out', cli_run, '--resume', '--no-progress', *TINY_ARGS, *args)
    assert 'Traceback' not in err and got == 2, (args, got, err)
    assert len(err.strip().splitlines()) == 1, err
    assert {k: v for k, v in files_of(cli_run).items() if k != '.lock'} == before
