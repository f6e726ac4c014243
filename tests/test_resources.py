"""The committed talk and report PDFs must be what their Typst sources build today.

The build is byte-for-byte reproducible (bundled fonts only, no document date), so a fresh build from the
committed sources and figures must equal the committed PDFs. Figures are not remade here (too slow for CI):
`make resources` remakes them and both PDFs.
"""
import importlib.util, json, re
from pathlib import Path
import pytest
import typst

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('resources_build', ROOT / 'resources' / 'src' / 'build.py')
build = importlib.util.module_from_spec(spec); spec.loader.exec_module(build)


def n_pages(pdf: bytes) -> int:
    "Number of page objects in an (uncompressed-object) typst PDF."
    return len(re.findall(rb'/Type\s*/Page(?![a-zA-Z])', pdf))


@pytest.mark.parametrize('name, pages', [('slides', (25, 35)), ('notes', (25, 35)), ('report', (14, 18))])
def test_committed_pdf_matches_sources(name, pages, tmp_path):
    committed = ROOT / 'resources' / build.DOCS[name][1]
    assert committed.exists(), f"{committed.relative_to(ROOT)} is missing: run `make resources`"
    fresh = build.build(name, tmp_path).read_bytes()
    old = committed.read_bytes()
    made_by = re.search(rb'/Creator\((Typst [0-9.]+)\)', old)
    now_by = re.search(rb'/Creator\((Typst [0-9.]+)\)', fresh)
    assert made_by and now_by, "no typst Creator entry found in the PDFs"
    assert made_by[1] == now_by[1], (f"{committed.name} was built by {made_by[1].decode()} but this environment has "
                                     f"{now_by[1].decode()}: install the pinned typst (pip install -e '.[dev]') or run `make resources`")
    assert fresh == old, f"{committed.relative_to(ROOT)} is stale (its sources or figures changed): run `make resources`"
    lo, hi = pages
    assert lo <= n_pages(fresh) <= hi, f"{name} has {n_pages(fresh)} pages, expected {lo}..{hi}"


def test_build_rejects_unknown_document(tmp_path):
    with pytest.raises(ValueError, match="unknown document 'poster'"): build.build('poster', tmp_path)


def test_slides_carry_no_speaker_notes_and_the_notes_copy_does():
    "The room's slides never print the notes (issue #21); the speaker's copy has them on every slide that has notes."
    def notes_in(name):
        found = typst.query(str(build.SRC / build.DOCS[name][0]), '<speaker-note>', root=str(build.SRC),
                            ignore_system_fonts=True, sys_inputs=build.INPUTS.get(name, {}))
        return len(json.loads(found))
    assert notes_in('slides') == 0
    assert notes_in('notes') >= 20


def test_facts_hold_the_search_files_as_they_are():
    "The report's and the talk's table of the recipe on each machine is what the search files say today."
    spec = importlib.util.spec_from_file_location('make_figures', ROOT / 'resources' / 'src' / 'make_figures.py')
    mf = importlib.util.module_from_spec(spec); spec.loader.exec_module(mf)
    committed = json.loads((ROOT / 'resources' / 'src' / 'figures' / 'facts.json').read_text())
    fresh = {}
    mf.recipe_machines(fresh)
    assert len(fresh['recipe_machines']) >= 3                     # one row per machine's search file
    assert committed['recipe_machines'] == fresh['recipe_machines'], "rerun resources/src/make_figures.py"
    mf.classwise(fresh)                                           # the class-mix table and slide
    assert fresh['classwise']['draws'] >= 15 and len(fresh['classwise']['recipe']) == 8
    assert committed['classwise'] == fresh['classwise'], "rerun resources/src/make_figures.py"
    mf.guidance_choice(fresh)                                     # the report's table of tune's choices
    assert [r['steps'] for r in fresh['guidance_choice']['models']] == [3500, 7000, 12000]
    assert committed['guidance_choice'] == fresh['guidance_choice'], "rerun resources/src/make_figures.py"
