"Presets: the packaged copy, typing and every kind of bad value (each message names the section and key)."
import subprocess, sys, zipfile
from pathlib import Path
import pytest
from ddpm_nb.presets import load_preset, preset_names, default_presets_path, PresetError, Preset

ROOT = Path(__file__).resolve().parent.parent

def test_packaged_copy_matches_settings_ini():
    assert default_presets_path().read_bytes() == (ROOT / 'settings.ini').read_bytes()

def test_all_presets_load():
    assert {'digits', 'mnist', 'cifar10'} <= set(preset_names())
    for n in preset_names(): assert isinstance(load_preset(n), Preset)

def test_cifar10_is_the_papers_setup():
    p = load_preset('cifar10')
    assert (p.T, p.schedule, p.beta_start, p.beta_end, p.base_channels, p.channel_mults) == (1000, 'linear', 1e-4, 0.02, 128, (1, 2, 2, 2))
    assert (p.num_res_blocks, p.attention_resolutions, p.dropout, p.lr, p.batch_size, p.ema_decay, p.grad_clip, p.warmup) == \
           (2, (16,), 0.1, 2e-4, 128, 0.9999, 1.0, 5000)

def _ini(tmp_path, text):
    f = tmp_path / 'p.ini'; f.write_text(text); return f

@pytest.mark.parametrize('edit, msg', [
    (lambda s: s + 'typo_key = 1\n', '[digits] unknown key(s) typo_key'),
    (lambda s: s.replace('lr = 0.002', 'lr = -0.1'), '[digits] lr = -0.1 is not allowed'),
    (lambda s: s.replace('lr = 0.002', 'lr = abc'), "[digits] lr = 'abc' is not a number"),
    (lambda s: s.replace('T = 1000', 'T = 0'), '[digits] T = 0 is not allowed'),
    (lambda s: s.replace('conditioning = bias', 'conditioning = scale'), 'one of bias, film, none'),
    (lambda s: s.replace('channel_mults = 1,2', 'channel_mults = 1,2,2,2,2'), '8 must divide by 2**4'),
    (lambda s: s.replace('batch_size = 128\n', ''), '[digits] missing key(s): batch_size'),
])
def test_bad_values_name_section_and_key(tmp_path, edit, msg):
    digits = (ROOT / 'settings.ini').read_text().split('[mnist]')[0]
    with pytest.raises(PresetError) as e: load_preset('digits', _ini(tmp_path, edit(digits)))
    assert msg in str(e.value)

def test_unknown_preset_and_missing_section(tmp_path):
    with pytest.raises(PresetError, match="unknown preset 'nope'"): load_preset('nope')
    with pytest.raises(PresetError, match="unknown preset 'mnist'"): load_preset('mnist', _ini(tmp_path, '[digits]\n'))
    with pytest.raises(PresetError, match='presets file not found'): load_preset('digits', tmp_path / 'missing.ini')

def test_overrides_are_typed_and_checked():
    assert load_preset('digits', steps='7').steps == 7
    with pytest.raises(PresetError, match='unknown override'): load_preset('digits', stepz=3)
    with pytest.raises(PresetError): load_preset('digits', p_uncond=1.0)

def test_wheel_ships_presets(tmp_path):
    "A `pip install` user gets the presets: the built wheel contains ddpm_nb/presets.ini."
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = zipfile.ZipFile(next(tmp_path.glob('ddpm_nb-*.whl'))).namelist()
    assert 'ddpm_nb/presets.ini' in names and 'ddpm_nb/forward.py' in names
