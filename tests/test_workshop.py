"""The workshop's exercise notebooks hold no solution: as handed out, every cell runs and every check says "not yet"
(never "correct!"), as after a learner's "Run all"; with each exercise cell replaced by its solution from
`workshop/solutions.py` (what `show_solution` prints), every check says "correct!"; and the checks catch the usual
mistakes, planted here one at a time.

Cells run in this process, in order, in one namespace per notebook (no kernel: a few seconds in all).
`DDPM_WORKSHOP_STRICT=1` makes a wrong answer raise inside the notebook."""
import ast, contextlib, io, json, os, re
from pathlib import Path
import pytest

WS = Path(__file__).resolve().parent.parent / "workshop"
EXERCISES = sorted(WS.glob("ex_*.ipynb"))
SOLUTIONS = (WS / "solutions.py").read_text(encoding="utf-8")

def _cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]

def _src(c): return "".join(c["source"])
def _is_exercise(c) -> bool:
    "An exercise cell is the one with a `# your turn` line (cell tags would not survive nbdev-clean)."
    return any(l.strip().startswith("# your turn") for l in _src(c).splitlines())

def _functions(src: str) -> dict:
    "name -> source of each top-level function in `src`."
    return {f.name: ast.get_source_segment(src, f) for f in ast.parse(src).body if isinstance(f, ast.FunctionDef)}

def _run(sources, strict: bool, cwd=None):
    "Execute code cells in order; the namespace and the printed output of each."
    ns, outs, here = {"__name__": "__main__"}, [], os.getcwd()
    os.environ["DDPM_WORKSHOP_STRICT"] = "1" if strict else "0"
    try:
        if cwd: os.chdir(cwd)
        for src in sources:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf): exec(compile(src, "<cell>", "exec"), ns)
            outs.append(buf.getvalue())
    finally:
        os.environ.pop("DDPM_WORKSHOP_STRICT", None)
        os.chdir(here)
    return ns, outs

def _solved(cells):
    "The notebook's cell sources with each exercise cell replaced by the solutions of the functions it defines."
    sol = _functions(SOLUTIONS)
    return ["\n\n".join(sol[n] for n in _functions(_src(c))) if _is_exercise(c) else _src(c) for c in cells]

def test_numbers_and_titles_agree():
    "ex_NN_topic.ipynb is titled 'Exercise NN' (05b: '5b'), and the README lists every notebook under its number."
    readme = (WS / "README.md").read_text(encoding="utf-8")
    for nb in EXERCISES:
        num = re.match(r"ex_0?(\d+b?)_", nb.name).group(1)
        title = "".join(json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"]).splitlines()[0]
        assert title.startswith(f"# Exercise {num}:"), (nb.name, title)
        assert f"| `{nb.name}` | exercise {num}:" in readme, f"README's table lacks `{nb.name}` as exercise {num}"
        assert f"exercise {num} " in readme.split("## Agenda")[1].split("## Setup")[0], f"agenda lacks exercise {num}"

def test_there_are_exercises():
    assert len(EXERCISES) >= 6, EXERCISES

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_handed_out_notebook_holds_no_solution(nb):
    cells = _cells(nb)
    calls = [c for c in cells if any(
        isinstance(n, ast.Call) and getattr(n.func, "id", "") == "show_solution" for n in ast.walk(ast.parse(_src(c))))]
    assert not calls, f"{nb.name}: a cell holds or loads a solution: {_src(calls[0])[:200]}"
    ex = [c for c in cells if _is_exercise(c)]
    assert ex, f"{nb.name}: no exercise cell"
    sol = _functions(SOLUTIONS)
    lines = {l.strip() for c in cells for l in _src(c).splitlines()}     # hints may quote a fragment, not a line
    for c in ex:
        for name in _functions(_src(c)):
            assert name in sol, f"{nb.name}: no solution for {name} in workshop/solutions.py"
            own = [l.strip() for l in sol[name].splitlines() if len(l.strip()) > 12 and l.strip() not in _src(c)]
            assert own, f"{nb.name}: the solution of {name} adds nothing to the exercise cell"
            shown = [l for l in own if l in lines]
            assert not shown, f"{nb.name}: the solution of {name} is in the notebook: {shown[0]!r}"

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_run_all_says_not_yet_for_every_exercise(nb):
    "As a learner's Run all: every cell runs, the check after each exercise says not yet, nothing says correct!."
    cells = _cells(nb)
    _, outs = _run([_src(c) for c in cells], strict=False)
    text = "".join(outs)
    assert "correct!" not in text, text
    for i, c in enumerate(cells):                        # the first cell after an exercise that prints: its check
        if _is_exercise(c):
            check = next(o for o in outs[i + 1:] if o)
            assert check.startswith("not yet:"), (nb.name, i, check)
    assert text.count("not yet:") >= sum("verdict(" in _src(c) for c in cells[1:]), text

@pytest.mark.parametrize("nb", EXERCISES, ids=lambda p: p.stem)
def test_solved_notebook_is_correct(nb):
    cells = _cells(nb)
    _, outs = _run(_solved(cells), strict=True)
    text = "".join(outs)
    assert "not yet:" not in text, text
    assert text.count("correct!") == sum("verdict(" in _src(c) for c in cells[1:]), outs

def test_show_solution_prints_the_solution():
    "show_solution (defined in every notebook's first cell) prints the function from solutions.py next to it."
    ns, _ = _run([_src(_cells(EXERCISES[0])[0])], strict=False, cwd=WS)
    here = os.getcwd()
    os.chdir(WS)
    try:
        for name, src in _functions(SOLUTIONS).items():
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf): ns["show_solution"](name)
            assert buf.getvalue().strip() == src.strip(), name
    finally: os.chdir(here)
    assert all(_src(_cells(nb)[0]) == _src(_cells(EXERCISES[0])[0]) for nb in EXERCISES), "setup cells differ"

def _checks(nb_name):
    "The handed-out notebook's namespace after Run all: its check functions, ready to take a planted mistake."
    ns, _ = _run([_src(c) for c in _cells(WS / nb_name)], strict=False)
    return ns

def _verdict(ns, check, src):
    "Define the (wrong) function in `src` in the notebook's namespace and run `check` on it; what it printed."
    exec(compile(src, "<planted>", "exec"), ns)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): ns[check](ns[_functions(src).popitem()[0]])
    return buf.getvalue()

L_SIMPLE = '''def l_simple_mine(schedule, eps_model, x0):
    t = {t}
    eps = {eps}
    xt = extract({a}, t, x0.shape) * x0 + extract({b}, t, x0.shape) * eps
    return (({target} - eps_model({inp}, t)) ** 2).{reduce}()'''
RIGHT = dict(t="torch.randint(0, schedule.T, (x0.shape[0],))", eps="torch.randn_like(x0)", a="schedule.sqrt_alpha_bar",
             b="schedule.sqrt_one_minus_alpha_bar", target="eps", inp="xt", reduce="mean")

@pytest.mark.parametrize("change, hint", [
    ({}, "correct!"),
    (dict(a="schedule.alpha_bar", b="1 - schedule.alpha_bar"), "square roots"),                 # sqrt missing
    (dict(t="torch.randint(0, schedule.T, (1,)).repeat(x0.shape[0])"), "one t for the whole batch"),
    (dict(t="torch.randint(0, schedule.T, (1,))"), "one integer t per image"),
    (dict(t="torch.randint(1, schedule.T + 1, (x0.shape[0],))"), "raised IndexError"),        # paper's 1..T
    (dict(t="torch.randint(1, schedule.T, (x0.shape[0],))"), "t ran over 1..9"),
    (dict(t="torch.randint(0, schedule.T - 1, (x0.shape[0],))"), "t ran over 0..8"),
    (dict(t="(torch.rand(x0.shape[0]) ** 2 * schedule.T).long()"), "not uniform"),
    (dict(target="x0"), "regresses x0"),                                                       # predicts x0
    (dict(inp="x0"), "the network got x0"),
    (dict(eps="torch.rand_like(x0)"), "does not hold N(0, I) noise"),
    (dict(reduce="sum"), "that sums"),
])
def test_l_simple_check_catches_planted_mistakes(change, hint):
    ns = _checks("ex_05_diffusion.ipynb")
    out = _verdict(ns, "check_l_simple", L_SIMPLE.format(**{**RIGHT, **change}))
    assert out.startswith("correct!" if hint == "correct!" else "not yet:") and hint in out, out

KL = "def kl_gauss_mine(mean1, var1, mean2, var2): return {}"
@pytest.mark.parametrize("body, hint", [
    ("0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)", "correct!"),
    ("0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2)", "drop the - 1"),
    ("0.5 * (torch.log(var1 / var2) + (var2 + (mean1 - mean2) ** 2) / var1 - 1)", "KL(p || q)"),
    ("(torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)", "twice the KL"),
    ("torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / (2 * var2) - 0.5", "half of log"),
    ("torch.log(var2 / var1) + (var1 ** 2 + (mean1 - mean2) ** 2) / (2 * var2 ** 2) - 0.5", "do not square"),
    ("0.5 * (torch.log(var2 / var1) + var1 / var2 + (mean1 - mean2) ** 2 - 1)", "divide (mean1 - mean2)^2"),
    ("0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1).sum()", "one KL per element"),
])
def test_kl_check_catches_planted_mistakes(body, hint):
    out = _verdict(_checks("ex_03_elbo.ipynb"), "check_kl", KL.format(body))
    assert out.startswith("correct!" if hint == "correct!" else "not yet:") and hint in out, out

L_T = '''def l_t_minus_1_mine(schedule, x0, xt, t, eps_hat):
    mean_q, var_q, _ = q_posterior(schedule, x0, xt, t)
    mean_p, var_p, _ = q_posterior(schedule, {x0_p}, xt, t)
    return {reduce}(normal_kl(mean_q, var_q.log(), mean_p, {logvar_p})){div}'''
L_T_RIGHT = dict(x0_p="predict_x0_from_eps(schedule, xt, t, eps_hat)", reduce="mean_flat", logvar_p="var_p.log()",
                 div=" / math.log(2)")
@pytest.mark.parametrize("change, hint", [
    ({}, "correct!"),
    (dict(x0_p="x0"), "p_theta does not know x0"),
    (dict(div=""), "in nats"),
    (dict(reduce="(lambda k: k.sum((1, 2, 3)))"), "sum over the pixels"),
    (dict(logvar_p="schedule.betas.log()[t].view(-1, 1, 1, 1)"), "not beta_t"),
    (dict(reduce="(lambda k: k.mean())"), "one number per example"),
])
def test_l_t_minus_1_check_catches_planted_mistakes(change, hint):
    out = _verdict(_checks("ex_03_elbo.ipynb"), "check_l_t_minus_1", L_T.format(**{**L_T_RIGHT, **change}))
    assert out.startswith("correct!" if hint == "correct!" else "not yet:") and hint in out, out

@pytest.mark.parametrize("nb, check, src, hint", [
    ("ex_01_schedules.ipynb", "check_alpha_bar", "def alpha_bar_mine(betas): return 1 - betas", "running product"),
    ("ex_02_forward.ipynb", "check_q_sample", "def q_sample_mine(s, x0, t, eps):\n    return "
     "extract(s.alpha_bar, t, x0.shape) * x0 + extract(1 - s.alpha_bar, t, x0.shape) * eps", "square roots"),
    ("ex_02_forward.ipynb", "check_q_sample", "def q_sample_mine(s, x0, t, eps):\n    return "
     "s.sqrt_alpha_bar[t[0]] * x0 + s.sqrt_one_minus_alpha_bar[t[0]] * eps", "first image only"),
])
def test_earlier_checks_catch_planted_mistakes(nb, check, src, hint):
    out = _verdict(_checks(nb), check, src)
    assert out.startswith("not yet:") and hint in out, out

@pytest.mark.parametrize("nb, planted, marker", [
    # the "derive it twice" cells after an exercise: each must see the planted mistake on its own
    ("ex_02_forward.ipynb", "def q_sample_mine(s, x0, t, eps):\n    return extract(s.alpha_bar, t, x0.shape) * x0 + "
     "extract(1 - s.alpha_bar, t, x0.shape) * eps", "the statistician's way"),
    ("ex_03_elbo.ipynb", "def kl_gauss_mine(mean1, var1, mean2, var2):\n    return 0.5 * (torch.log(var1 / var2) + "
     "(var2 + (mean1 - mean2) ** 2) / var1 - 1)", "400,000 draws"),
    ("ex_03_elbo.ipynb", "def l_t_minus_1_mine(s, x0, xt, t, eps_hat):\n    mq, vq, _ = q_posterior(s, x0, xt, t)\n"
     "    mp, vp, _ = q_posterior(s, predict_x0_from_eps(s, xt, t, eps_hat), xt, t)\n"
     "    return mean_flat(normal_kl(mq, vq.log(), mp, vp.log()))", "Eq. 12"),
    ("ex_05_diffusion.ipynb", "def ddim_step_mine(s, xt, t, eps_hat):\n    x0_hat = predict_x0_from_eps(s, xt, t, eps_hat)\n"
     "    ab = extract(s.alpha_bar, t, xt.shape).to(xt)\n    return ab.sqrt() * x0_hat + (1 - ab).sqrt() * eps_hat",
     "end to end"),
    ("ex_05b_score.ipynb", "def langevin_step_mine(x, score, sigma, sigma_L, step_size, z):\n"
     "    e = step_size * (sigma / sigma_L) ** 2\n    return x + e * score", "end to end"),
])
def test_second_checks_catch_planted_mistakes(nb, planted, marker):
    "With a wrong answer in the exercise cell, the closed-form / Monte-Carlo / end-to-end check below it says not yet."
    cells = json.loads((WS / nb).read_text(encoding="utf-8"))["cells"]
    name = _functions(planted).popitem()[0]
    srcs, after = [], None
    for c in cells:
        if c["cell_type"] == "markdown":
            if marker in _src(c) and after is None: after = len(srcs)       # the code cells after this heading
            continue
        srcs.append(planted if _is_exercise(c) and name in _functions(_src(c)) else _src(c))
    assert after is not None, marker
    _, outs = _run(srcs, strict=False)
    second = next(o for o in outs[after:] if "correct!" in o or "not yet:" in o)
    assert "not yet:" in second and "correct!" not in "".join(outs[after:]), outs[after:]
