"""The package as a user gets it: build the sdist and the wheel, install the wheel into a fresh virtual environment
outside the repository, use it from another folder.

`python -m build` builds the sdist and then the wheel *from the sdist* (so a file the sdist forgets breaks the
wheel). The wheel goes into a new venv in a temporary folder, made without pip (ensurepip would bring an old
setuptools that shadows the one torch needs; this environment's pip installs into it with `--python`). Its dependencies are not downloaded again (minutes
and gigabytes of torch): a `.pth` line puts the test environment's site-packages on the new venv's path, after the
venv's own. A `.pth` line adds a folder but does not run the `.pth` files inside it, so the checkout's editable
install stays invisible. `pip install --no-index` must then find every dependency the wheel declares, and `pip check` agree. The tests
check that `import ddpm_nb` and the `ddpm-nb` script run the wheel's copy, not the checkout's. Everything runs in a
temporary working folder, so nothing of the repository (its settings.ini, its notebooks) can be picked up by
accident. About a minute: marked `wheel`; `pytest -m wheel` runs it alone.
"""
import email, json, os, re, subprocess, sys, sysconfig, tarfile, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.wheel

@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    "The sdist and the wheel built from it, as `python -m build` makes them (no isolation: setuptools is a dev extra)."
    out = tmp_path_factory.mktemp('dist')
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    (sdist,), (whl,) = out.glob('ddpm_nb-*.tar.gz'), out.glob('ddpm_nb-*.whl')
    return sdist, whl

@pytest.fixture(scope='module')
def wheel(dist): return dist[1]

@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    "A fresh venv holding the wheel; the test environment's site-packages serve its dependencies. Its bin/ folder."
    venv = tmp_path_factory.mktemp('venv')
    r = subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    py = venv / 'bin' / 'python'
    own = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                         capture_output=True, text=True).stdout.strip()
    (Path(own) / 'test_env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    r = _pip(py, 'install', '-q', '--no-index', wheel)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _pip(py, 'check')
    assert r.returncode == 0, r.stdout + r.stderr                                 # every declared dependency met
    assert r.returncode == 0, r.stderr[-3000:]
    return venv / 'bin'

def _pip(py, *args):
    "This environment's pip acting on the venv of `py` (a venv made without pip: ensurepip would bring an old setuptools)."
    return subprocess.run([sys.executable, '-m', 'pip', '--python', str(py), *map(str, args)],
                          capture_output=True, text=True, timeout=600)

def _run(installed, tmp_path, *args, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env.update(OMP_NUM_THREADS='1', DDPM_NB_CACHE=str(tmp_path / 'cache'), PATH=f"{installed}:{env.get('PATH', '')}")
    return subprocess.run(list(map(str, args)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, **kw)

def test_sdist_holds_the_sources_and_nothing_heavy(dist):
    "The sdist a user (or a distro) builds from: package, presets, licence, readme; no data, checkpoints or notebooks."
    sdist, _ = dist
    with tarfile.open(sdist) as t: names = [n.split('/', 1)[1] for n in t.getnames() if '/' in n]
    assert {'pyproject.toml', 'README.md', 'LICENSE', 'ddpm_nb/presets.ini', 'ddpm_nb/cli.py'} <= set(names), names
    heavy = [n for n in names if n.endswith(('.pt', '.safetensors', '.gif', '.png', '.ipynb', '.gz', '.pdf'))
             or n.startswith(('resources/', 'outputs/', 'nbs/'))]
    assert not heavy, heavy
    assert sdist.stat().st_size < 1_000_000, sdist.stat().st_size

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
    py = _run(installed, tmp_path, installed / 'python', '-c', 'import ddpm_nb, json, sys; '
              'from ddpm_nb.presets import preset_names; print(json.dumps([ddpm_nb.__file__, sys.prefix, preset_names()]))')
    assert py.returncode == 0, py.stderr
    where, prefix, names = json.loads(py.stdout)
    assert prefix == str(installed.parent) and where.startswith(prefix), (where, prefix)     # the venv's own copy
    assert {'digits', 'mnist', 'cifar10', 'workshop', 'cifar10-cpu'} <= set(names)
    script = installed / 'ddpm-nb'
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
