"""Every chapter's first cells say how to fix a missing or foreign ddpm_nb in one line (issue #20), before any cell
imports it. The guard is run here as a notebook runs it (cwd nbs/), with the import system patched to stand for
the kernels a learner meets: without the package, and with an installed copy that is not this book's."""
import contextlib, importlib.util, io, json, os, types
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parent.parent / 'nbs'
CHAPTERS = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

def code_cells(nb: Path) -> list[str]:
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

def guard_of(nb: Path) -> str:
    cells = code_cells(nb)
    i = next(i for i, c in enumerate(cells) if 'find_spec' in c)
    assert not any('ddpm_nb' in c and 'import' in c for c in cells[:i]), f"{nb.name}: ddpm_nb used before the guard"
    return cells[i]

GUARD = guard_of(NBS / '02_forward.ipynb')

@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_the_same_guard_first(nb):
    assert guard_of(nb) == GUARD

def run_guard(monkeypatch, spec):
    monkeypatch.chdir(NBS)
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: spec)
    out = io.StringIO()
    with contextlib.redirect_stdout(out): exec(GUARD, {})
    return out.getvalue()

def test_without_the_package_the_first_cell_says_how_to_install(monkeypatch):
    with pytest.raises(ModuleNotFoundError, match=r'run `pip install -e \.`.*restart the kernel'):
        run_guard(monkeypatch, None)

def test_a_foreign_installed_copy_is_named(monkeypatch, tmp_path):
    (tmp_path / 'ddpm_nb').mkdir()
    said = run_guard(monkeypatch, types.SimpleNamespace(origin=str(tmp_path / 'ddpm_nb' / '__init__.py')))
    assert str(tmp_path / 'ddpm_nb') in said and 'pip install -e .' in said

def test_the_books_own_library_passes_silently(monkeypatch):
    assert run_guard(monkeypatch, types.SimpleNamespace(origin=str(NBS.parent / 'ddpm_nb' / '__init__.py'))) == ''
