"""The package as a user gets it: build the wheel, install it outside the repository, use it from another folder.

The wheel is installed with `pip install --no-deps --target` into a temporary folder (torch and the other
dependencies come from the test environment: installing them again would take minutes and gigabytes) and put
first on PYTHONPATH, so `import ddpm_nb` and the `ddpm-nb` script run the wheel's copy, not the checkout's — the
tests check that. Everything runs in a temporary working folder, so nothing of the repository (its settings.ini,
its notebooks) can be picked up by accident. About a minute: marked `wheel`; `pytest -m wheel` runs it alone.
"""
import email, json, os, re, subprocess, sys, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.wheel

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob('ddpm_nb-*.whl')
    return whl

@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    target = tmp_path_factory.mktemp('site')
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target), str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return target

def _run(installed, tmp_path, *args, **kw):
    env = {**os.environ, 'PYTHONPATH': str(installed), 'OMP_NUM_THREADS': '1', 'DDPM_NB_CACHE': str(tmp_path / 'cache')}
    return subprocess.run(list(map(str, args)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, **kw)

def test_metadata_a_package_index_shows(wheel):
    "Name, version, license and its file, URLs, extras, and a long description whose links work off GitHub."
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        meta = email.message_from_bytes(z.read(meta_name))
        names = z.namelist()
    assert meta['Name'] == 'ddpm_nb' and re.fullmatch(r'\d+\.\d+\.\d+', meta['Version'])
    assert meta['License-Expression'] == 'Apache-2.0' and any(n.endswith('licenses/LICENSE') for n in names)
    urls = dict(u.split(', ', 1) for u in meta.get_all('Project-URL'))
    assert {'Homepage', 'Repository', 'Issues'} <= set(urls) and all(u.startswith('https://') for u in urls.values())
    assert {'fid', 'bench', 'docs', 'dev', 'diffusers'} <= set(meta.get_all('Provides-Extra'))
    assert meta['Description-Content-Type'] == 'text/markdown'
    body = meta.get_payload()
    links = re.findall(r'\]\(([^)]+)\)|<(https?://[^>]+)>', body)
    assert links and all((a or b).startswith('https://') for a, b in links), links   # no repository-relative links
    assert 'ddpm_nb/presets.ini' in names and 'ddpm_nb/cli.py' in names

def test_installed_wheel_trains_samples_and_renders_from_another_folder(installed, tmp_path):
    "The packaged presets, `ddpm-nb train/sample/gif` and the Python API, all from the wheel's copy."
    py = _run(installed, tmp_path, sys.executable, '-c', 'import ddpm_nb, json; from ddpm_nb.presets import preset_names; '
              'print(json.dumps([ddpm_nb.__file__, preset_names()]))')
    assert py.returncode == 0, py.stderr
    where, names = json.loads(py.stdout)
    assert where.startswith(str(installed)) and {'digits', 'mnist', 'cifar10', 'workshop'} <= set(names)
    script = installed / 'bin' / 'ddpm-nb'
    tiny = ['image_size=8', 'base_channels=8', 'T=20', 'batch_size=16', 'warmup=2', 'precision=fp32']
    r = _run(installed, tmp_path, script, 'train', '--preset', 'digits', '--steps', '4', '--out', 'run', '--no-progress', *tiny)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'run' / 'card.json').read_text())
    assert card['training']['step'] == 4 and card['data']['images'] == 1437      # the digits' training split
    r = _run(installed, tmp_path, script, 'sample', '--ckpt', 'run/ckpt.pt', '--n', '10', '--steps', '3', '--out', 's.png')
    assert r.returncode == 0 and (tmp_path / 's.png').exists() and (tmp_path / 's.safetensors').exists(), r.stderr
    r = _run(installed, tmp_path, script, 'gif', '--ckpt', 'run/ckpt.pt', '--steps', '4', '--frames', '3', '--out', 'a.gif')
    assert r.returncode == 0 and (tmp_path / 'a.gif').exists(), r.stderr
    r = _run(installed, tmp_path, script, 'train', '--preset', 'digitz')
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'packaged presets' not in r.stderr
