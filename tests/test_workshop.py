"""The workshop's exercise notebooks: as handed out they run and their checks say "not yet" (so a check can
fail); with each exercise cell replaced by the solution cell after it, every check says "correct!".

Cells run in this process, in order, in one namespace per notebook (no kernel: a few seconds in all).
`DDPM_WORKSHOP_STRICT=1` makes a wrong answer raise inside the notebook."""
import contextlib, io, json, os
from pathlib import Path
import pytest

WS = Path(__file__).resolve().parent.parent / "workshop"
EXERCISES = sorted(WS.glob("ex_*.ipynb"))

def _cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]

def _tags(c): return set(c.get("metadata", {}).get("tags", []))

def _run(sources, strict: bool) -> list[str]:
    "Execute code cells in order; the printed output of each."
    ns, outs = {"__name__": "__main__"}, []
    os.environ["DDPM_WORKSHOP_STRICT"] = "1" if strict else "0"
    try:
        for src in sources:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf): exec(compile(src, "<cell>", "exec"), ns)
            outs.append(buf.getvalue())
    finally: os.environ.pop("DDPM_WORKSHOP_STRICT", None)
    return outs

def _src(c): return "".join(c["source"])

def test_there_are_exercises():
    assert len(EXERCISES) >= 4, EXERCISES

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_each_exercise_has_a_solution(nb):
    cells = _cells(nb)
    ex = [i for i, c in enumerate(cells) if "exercise" in _tags(c)]
    assert ex, f"{nb.name}: no exercise cell"
    for i in ex:
        sol = next((j for j in range(i + 1, len(cells)) if "solution" in _tags(cells[j])), None)
        assert sol is not None, f"{nb.name}: exercise cell {i} has no solution after it"
        assert cells[sol]["metadata"].get("jupyter", {}).get("source_hidden"), f"{nb.name}: solution {sol} is not collapsed"

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_unsolved_notebook_runs_and_says_not_yet(nb):
    cells = _cells(nb)
    # as a learner first runs it: exercises as given, solutions not yet opened
    outs = _run([_src(c) for c in cells if "solution" not in _tags(c)], strict=False)
    text = "".join(outs)
    assert "not yet:" in text and "correct!" not in text, text

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_solved_notebook_is_correct(nb):
    cells = _cells(nb)
    srcs, n_checks = [], 0
    for i, c in enumerate(cells):
        if "solution" in _tags(c): continue
        if "exercise" in _tags(c):    # the learner's answer = the solution's definition (its own check call dropped)
            sol = next(cells[j] for j in range(i + 1, len(cells)) if "solution" in _tags(cells[j]))
            c = {"source": "\n".join(l for l in _src(sol).splitlines() if not l.startswith("check_"))}
        srcs.append(_src(c))
    outs = _run(srcs, strict=True)
    n_checks = sum(o.count("correct!") for o in outs)
    assert n_checks >= sum("exercise" in _tags(c) for c in cells), outs
    assert "not yet:" not in "".join(outs)
