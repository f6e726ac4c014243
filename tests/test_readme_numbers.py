"""The README's table of the recorded workshop run quotes its card: if the run is re-recorded and the README is
not updated (or the other way round), this fails. The run recorded before it (2026-12-01, random halves) keeps its
card as resources/workshop/card-2026-12-01.json, which the comparisons with the search runs of that time quote."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEARCH = ROOT / 'tools' / 'workshop_search'


def _runs(name: str) -> dict:
    "variant -> its run row (the last one where a variant ran twice) in the search file `name`."
    return {r['variant']: r for blk in json.loads((SEARCH / name).read_text())['runs'] for r in blk['rows']}


def _flat(text: str) -> str: return ' '.join(text.split())


def _text(rel: str) -> str:
    """The file at `rel` with its whitespace runs flattened to single spaces (a quote may wrap anywhere); for a notebook,
    its markdown cells only."""
    path = ROOT / rel
    if path.suffix != '.ipynb': return _flat(path.read_text())
    cells = json.loads(path.read_text())['cells']
    return _flat(' '.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown'))


def _ev(runs: dict, v: str, w: float, seed: int = 0) -> dict:
    "Variant v's DDIM-20 evaluation at guidance w on the draw of samples `seed`."
    return next(e for e in runs[v]['evals'] if (e['sampler'], e['guidance'], e.get('seed', 0)) == ('DDIM 20', w, seed))


def test_readme_quotes_the_workshop_card():
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card.json').read_text())
    readme = (ROOT / 'README.md').read_text()
    tr, m = card['training'], card['metrics']
    fd = m['frechet']
    smp = m['accuracy']['samples']
    table = card['guidance_choice']['table']                       # what tune scored, the weight it kept and the next
    chosen, runner_up = sorted(table, key=lambda r: r['ratio_of_means'])[:2]
    assert card['guidance_choice']['step'] == tr['step'] and chosen['guidance'] == smp['guidance'], "eval used tune's weight"
    quoted = [f"{tr['train_time_s'] / 60:.1f} min of the {tr['budget_minutes']:g}-minute budget",
              f"{tr['step']:,} steps of batch {card['preset']['batch_size']}",
              f"{tr['images_per_s']} images/s", f"{card['parameters'] / 1e6:.2f}M parameters",
              f"**{m['accuracy']['overall']:.1%}** (DDIM {smp['steps']} steps, guidance w = {smp['guidance']:g})",
              f"{fd['fd']:.2f} / {fd['floor']:.2f} = {fd['fd'] / fd['floor']:.2f}× on the first halving",
              f"{fd['fd_mean']:.2f} / {fd['floor_mean']:.2f} = **{fd['ratio_of_means']:.2f}×** as the means over "
              f"{fd['splits']} halvings ({fd['classes_ignored']['ratio_of_means']:.2f}× with random halves",
              f"{card['guidance_choice']['guidance']:g}, chosen by `ddpm-nb tune` from "
              + ', '.join(f"{r['guidance']:g}" for r in table[:-1]) + f" and {table[-1]['guidance']:g} against the "
              f"training digits ({chosen['ratio_of_means']:.2f}× there; {runner_up['ratio_of_means']:.2f}× at "
              f"{runner_up['guidance']:g})",
              f"{m['memorisation']['median_ratio']:.2f} (no copying)",
              f"**{smp['sampling_time_s']:.0f} s** (DDIM {smp['steps']} with guidance",
              f"2-core **{card['environment']['cpu']['model']}**"]
    missing = [q for q in quoted if q not in readme]
    assert not missing, f"README.md does not quote resources/workshop/card.json: missing {missing}"


def test_readme_quotes_the_workshop_search():
    """The README's three base-8 runs (search seeds 0 and 1, the first recorded run, measured with random halves)
    match results.json and that run's card, kept as card-2026-12-01.json."""
    doc = json.loads((ROOT / 'tools' / 'workshop_search' / 'results.json').read_text())
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card-2026-12-01.json').read_text())
    def first_draw(variant):
        rows = [r for blk in doc['runs'] for r in blk['rows'] if r['variant'] == variant]
        return next(e['ratio_of_means'] for e in rows[-1]['evals']
                    if (e['sampler'], e['guidance'], e.get('seed', 0)) == ('DDIM 20', 1.0, 0))
    runs = [first_draw('w8-b64'), first_draw('w8-b64-s1'), card['metrics']['frechet']['ratio_of_means']]
    first = card['metrics']
    quoted_first = (f"{card['training']['step']:,} steps; its card is kept", f"random halves: "
                    f"{first['frechet']['ratio_of_means']:.2f}×, {first['accuracy']['overall']:.1%}, "
                    f"{first['accuracy']['samples']['sampling_time_s']:.0f} s")
    assert all(q in _text('README.md') for q in quoted_first), quoted_first
    quoted = f"landed at {runs[0]:.1f}×, {runs[1]:.1f}× and {runs[2]:.1f}× that"
    assert quoted in _text('README.md'), quoted


def test_the_recorded_run_was_evaluated_on_held_out_digits():
    "The card's quality figures must come from digits the run never trained on (issue #16)."
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card.json').read_text())
    assert card['data']['every_kth'] and 'held out' in card['metrics']['frechet']['reference']
    assert card['metrics']['frechet']['halves'].startswith('class by class')      # chapter 8: like with like
    assert card['metrics']['memorisation']['heldout'] == card['data']['heldout']


def test_readme_quotes_the_cifar10_cpu_card():
    card = json.loads((ROOT / 'resources' / 'cifar10-cpu' / 'card.json').read_text())
    readme = (ROOT / 'README.md').read_text()
    tr, m = card['training'], card['metrics']
    a, f, smp = m['accuracy'], m['frechet'], m['accuracy']['samples']
    quoted = [f"{tr['step']:,} steps of batch {card['preset']['batch_size']}", f"{tr['images_per_s']} images/s",
              f"**{a['overall']:.1%}**", f"scores {a['classifier_held_out_accuracy']:.1%} on real test images",
              f"{f['fd']:.2f} / {f['floor']:.2f} = **{f['fd'] / f['floor']:.1f}×**",
              f"**{smp['sampling_time_s']:.0f} s**", f"memorisation ratio\n{m['memorisation']['median_ratio']:.2f}"]
    missing = [q for q in quoted if q not in readme]
    assert not missing, f"README.md does not quote resources/cifar10-cpu/card.json: missing {missing}"


def test_readme_quotes_the_xeon_search():
    "The README's figures for the recipe on the Xeon of 2026-12-01 match that machine's search file."
    runs = _runs('results-xeon-2026-12-01.json')
    def ev(v, w, seed): return _ev(runs, v, w, seed)
    def rm(v, w, seed=0): return ev(v, w, seed)['ratio_of_means']
    def acc(v, w, seed=0): return ev(v, w, seed)['accuracy']
    r8, long8 = runs['w8-b64'], runs['w8-b64-long']
    quoted = [f"bought {r8['training']['step']:,} steps ({r8['training']['images_per_s']:.0f} images/s)",
              f"{acc('w8-b64', 1.0):.1%} accuracy, {rm('w8-b64', 1.0):.2f}× the floor over 10 halvings "
              f"({rm('w8-b64', 1.0, 1):.2f}× on a second draw of samples) and 1,000 samples in "
              f"{ev('w8-b64', 1.0, 0)['sampling_s']:.0f} s (sampled in {ev('w8-b64', 1.0, 0)['precision']},",
              f"float32 training gave {rm('w8-b64-fp32', 1.0):.2f}×, base 12 {rm('w12-b64', 1.0):.2f}×",
              f"(16 minutes, {long8['training']['step']:,} steps) {rm('w8-b64-long', 1.0):.2f}×",
              f"reached {rm('w8-b64-long', 0.5):.2f}× and {rm('w8-b64-long', 0.5, 1):.2f}× on two draws "
              f"({acc('w8-b64-long', 0.5):.1%} and {acc('w8-b64-long', 0.5, 1):.1%} accuracy)",
              f"got worse ({rm('w8-b64', 0.5):.2f}×)"]
    readme = _text('README.md')
    missing = [q for q in quoted if q not in readme]
    assert not missing, missing


def test_readme_quotes_the_third_cpu():
    "The README's figures for the recipe on the EPYC with AVX-512 BF16 of 2026-12-02 match that machine's search file."
    doc = json.loads((SEARCH / 'results-epyc-bf16-2026-12-02.json').read_text())
    runs = _runs('results-epyc-bf16-2026-12-02.json')
    def ev(v, w, seed=0): return _ev(runs, v, w, seed)
    def rm(v, w, seed=0): return ev(v, w, seed)['ratio_of_means']
    r8, pr = runs['w8-b64'], runs['w8-b64']['precision']['seconds_per_call']
    quoted = [f"chose {runs['w8-b64']['precision']['chosen']} ({pr['bf16']:.3f} against {pr['fp32']:.3f} s per step)",
              f"bought {r8['training']['step']:,} steps ({r8['training']['images_per_s']:,.0f} images/s), "
              f"{ev('w8-b64', 1.0)['accuracy']:.1%} accuracy, {rm('w8-b64', 1.0):.2f}× the floor "
              f"({rm('w8-b64', 1.0, 1):.2f}× on a second draw) and 1,000 samples in {ev('w8-b64', 1.0)['sampling_s']:.0f} s",
              f"guidance 0.75 gave {rm('w8-b64', 0.75):.2f}× and {rm('w8-b64', 0.75, 1):.2f}× at "
              f"{ev('w8-b64', 0.75)['accuracy']:.1%} accuracy on both draws",
              f"({runs['w8-b64-short']['training']['step']:,} steps) gave {rm('w8-b64-short', 1.0):.2f}× and "
              f"{rm('w8-b64-short', 1.0, 1):.2f}× at guidance 1",
              f"({runs['w12-b64-long']['training']['step']:,} steps) gave {rm('w12-b64-long', 0.5):.2f}× and "
              f"{rm('w12-b64-long', 0.5, 1):.2f}× at guidance 0.5"]
    assert ev('w8-b64', 0.75, 1)['accuracy'] == ev('w8-b64', 0.75)['accuracy']     # "on both draws"
    real = [d['ratio_of_means'] for d in doc['baseline'][-1]['rows'][0]['draws']]
    quoted.append(f"gave {min(real):.2f}–{max(real):.2f}× over ten draws ({sum(real) / len(real):.2f}× on average, "
                  f"{['no', 'one', 'two', 'three', 'four', 'five'][sum(x > 1.25 for x in real)]} of ten above 1.25×)")
    assert len(real) == 10
    xeon = _runs('results-xeon-2026-12-01.json')
    xr = {w: _ev(xeon, 'w8-b64', w)['ratio_of_means'] for w in (0.75, 1.0)}
    quoted.append(f"on the Xeon, too, 0.75 beat 1: {xr[0.75]:.2f}× against {xr[1.0]:.2f}×")
    quoted.append(f"A second training seed on this EPYC ({runs['w8-b64-s1']['training']['step']:,} steps) agreed: "
                  f"{rm('w8-b64-s1', 0.75):.2f}× and {rm('w8-b64-s1', 0.75, 1):.2f}× at 0.75 against "
                  f"{rm('w8-b64-s1', 1.0):.2f}× and {rm('w8-b64-s1', 1.0, 1):.2f}× at guidance 1")
    readme = _text('README.md')
    missing = [q for q in quoted if q not in readme]
    assert not missing, missing
    workshop = _text('workshop/README.md')   # the teacher's page quotes them too
    quoted = [f"AVX-512 BF16 {r8['training']['step']:,} steps and {rm('w8-b64', 1.0):.2f}×",
              f"(on those two machines {xr[0.75]:.2f}× and {min(rm('w8-b64', 0.75, s) for s in (0, 1)):.2f}–"
              f"{max(rm('w8-b64', 0.75, s) for s in (0, 1)):.2f}×, still {ev('w8-b64', 0.75)['accuracy']:.1%} accuracy)"]
    assert _ev(xeon, 'w8-b64', 0.75)['accuracy'] == ev('w8-b64', 0.75)['accuracy']   # "still 99.4%": on both machines
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card.json').read_text())   # and the recorded run
    fd, tr = card['metrics']['frechet'], card['training']
    quoted.append(f"reached {tr['step']:,} steps; `ddpm-nb tune` kept guidance {card['guidance_choice']['guidance']:g} "
                  f"for it, and it drew {card['metrics']['accuracy']['overall']:.1%} of its digits in the right class at "
                  f"{fd['classes_ignored']['ratio_of_means']:.1f}× the Fréchet floor with random halves "
                  f"({fd['ratio_of_means']:.2f}× class by class)")
    missing = [q for q in quoted if q not in workshop]
    assert not missing, missing


def test_chapter9_quotes_the_third_cpu():
    "Chapter 9's summary of the third CPU types its figures; each one is read back from the search files here."
    names = {'epyc': 'results.json', 'xeon': 'results-xeon-2026-12-01.json', 'third': 'results-epyc-bf16-2026-12-02.json'}
    files = {k: json.loads((SEARCH / f).read_text()) for k, f in names.items()}
    runs = {k: _runs(f) for k, f in names.items()}
    third, xeon = runs['third'], runs['xeon']
    def ev(m, v, w, seed=0): return _ev(runs[m], v, w, seed)
    rm = lambda m, v, w, s=0: f"{ev(m, v, w, s)['ratio_of_means']:.2f}×"
    acc = lambda m, v, w, s=0: f"{ev(m, v, w, s)['accuracy']:.1%}"
    two = lambda m, v, w: f"{rm(m, v, w)} and {rm(m, v, w, 1)}"
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card-2026-12-01.json').read_text())   # the first recording
    r8, pr = third['w8-b64'], third['w8-b64']['precision']['seconds_per_call']
    probe = {r['variant']: r['train_images_per_s']['fp32'] for blk in files['third']['probe'] for r in blk['rows']}
    memo = lambda v: [e['memorisation_ratio'] for e in third[v]['evals']]
    real = [d['ratio_of_means'] for d in files['third']['baseline'][-1]['rows'][0]['draws']]
    lo_hi = lambda xs: f"{min(xs):.2f}–{max(xs):.2f}"
    quoted = [f"({pr['bf16']:.3f} against {pr['fp32']:.3f} s per training step",
              f"bought {r8['training']['step']:,} steps at {r8['training']['images_per_s']:,.0f} images/s: "
              f"{r8['training']['step'] / card['training']['step']:.1f}× the first recorded EPYC run's steps and "
              f"{r8['training']['step'] / xeon['w8-b64']['training']['step']:.1f}× the Xeon's",
              f"guided samples took {ev('third', 'w8-b64', 1.0)['sampling_s']:.0f} s",
              f"({probe['w8-b64']} against {probe['w12-b64']} images/s)",
              f"{two('third', 'w8-b64', 1.0)} on two draws, at {acc('third', 'w8-b64', 1.0)} and "
              f"{acc('third', 'w8-b64', 1.0, 1)} accuracy",
              f"gave {two('third', 'w8-b64', 0.75)} at {acc('third', 'w8-b64', 0.75)} accuracy on both draws",
              f"({rm('third', 'w8-b64', 0.5, 1)} for the first seed, {rm('third', 'w8-b64-s1', 0.5)} for the second) "
              f"but missed 99% accuracy on three draws of the four ("
              + ', '.join(acc('third', v, 0.5, s) for v in ('w8-b64', 'w8-b64-s1') for s in (0, 1)) + ")",
              f"({xeon['w8-b64']['training']['step']:,} steps) $w = 0.75$ also beat $w = 1$ ({rm('xeon', 'w8-b64', 0.75)} "
              f"against {rm('xeon', 'w8-b64', 1.0)}, {acc('xeon', 'w8-b64', 0.75)} both)",
              f"{third['w8-b64-short']['training']['step']:,} steps, {two('third', 'w8-b64-short', 1.0)} at $w = 1$ "
              f"({acc('third', 'w8-b64-short', 1.0)} and {acc('third', 'w8-b64-short', 1.0, 1)})",
              f"at $w = 0.75$, {two('third', 'w8-b64-short', 0.75)} ({acc('third', 'w8-b64-short', 0.75)} and "
              f"{acc('third', 'w8-b64-short', 0.75, 1)})",
              f"({third['w12-b64-long']['training']['step']:,} steps, the most any run has trained)",
              f"{two('third', 'w12-b64-long', 0.5)} at $w = 0.5$ ({acc('third', 'w12-b64-long', 0.5)} and "
              f"{acc('third', 'w12-b64-long', 0.5, 1)}), the 8-minute base 8's {two('third', 'w8-b64', 0.5)}",
              f"{two('third', 'w12-b64-long', 1.0)} at $w = 1$; {rm('third', 'w12-b64-long', 0.3)} at $w = 0.3$",
              f"memorisation ratio was {lo_hi(memo('w12-b64-long'))}, a little below the two 8-minute runs' "
              f"{lo_hi(memo('w8-b64') + memo('w8-b64-s1'))}",
              f"(`w8-b64-s1`, {third['w8-b64-s1']['training']['step']:,} steps: the same budget on the same machine "
              f"bought {third['w8-b64-s1']['training']['step'] / r8['training']['step'] - 1:.0%} more steps this time) "
              f"agreed: {two('third', 'w8-b64-s1', 0.75)} at $w = 0.75$ ({acc('third', 'w8-b64-s1', 0.75)} and "
              f"{acc('third', 'w8-b64-s1', 0.75, 1)}) against {two('third', 'w8-b64-s1', 1.0)} at $w = 1$",
              f"ten draws gave {lo_hi(real)}× the floor, {sum(real) / len(real):.2f}× on average, and four of the ten "
              f"were above 1.25×"]
    r1 = lambda xs: f"{min(xs):.1f}–{max(xs):.1f}×"      # a range to one decimal
    epyc8 = [e['ratio_of_means'] for blk in files['epyc']['runs'] for r in blk['rows'] for e in r['evals']
             if r['variant'].startswith('w8-b64') and (e['sampler'], e['guidance']) == ('DDIM 20', 1.0)]
    slower = epyc8 + [card['metrics']['frechet']['ratio_of_means']] + [_ev(xeon, 'w8-b64', 1.0, s)['ratio_of_means']
                                                                       for s in (0, 1)]
    best = lambda m, v, s: min(e['ratio_of_means'] for e in runs[m][v]['evals']     # a draw's best tuned weight
                               if e['sampler'] == 'DDIM 20' and e['guidance'] < 1 and e.get('seed', 0) == s)
    tuned = [best('third', v, s) for v in ('w8-b64', 'w8-b64-s1', 'w12-b64-long') for s in (0, 1)]
    xeon16 = [_ev(xeon, v, 0.5, s)['ratio_of_means'] for v in ('w8-b64-long', 'w12-b64-long') for s in (0, 1)]
    quoted += [f"inside the {r1(slower)} of the two slower machines' base-8 runs",
               f"the best distance stayed at {r1(tuned)} with guidance tuned, as the Xeon's 16-minute runs did "
               f"({r1(xeon16)})"]
    assert sum(x > 1.25 for x in real) == 4 and len(real) == 10
    md = _text('nbs/09_mnist.ipynb')
    missing = [q for q in quoted if q not in md]
    assert not missing, missing


def test_the_class_mix_figures_are_the_files():
    "Chapter 9's, the README's and the workshop README's class-mix figures, read back from the classwise search file."
    doc = json.loads((SEARCH / 'classwise-epyc-bf16-2026-12-02.json').read_text())
    ys = [d for blk in doc['yardstick'] for d in blk['rows'][0]['draws']]
    r = _runs('classwise-epyc-bf16-2026-12-02.json')
    new = lambda w, s=0: f"{_ev(r, 'w8-b64', w, s)['ratio_of_means']:.2f}×"
    old = lambda w, s=0: f"{_ev(r, 'w8-b64', w, s)['ratio_of_means_classes_ignored']:.2f}×"
    acc = lambda w, s=0: f"{_ev(r, 'w8-b64', w, s)['accuracy']:.1%}"
    col = lambda k, f: [d[k][f] for d in ys]
    rng = lambda xs, fmt='{:.2f}': f"{fmt.format(min(xs))}–{fmt.format(max(xs))}"
    mean = lambda xs: sum(xs) / len(xs)
    u_new, u_old = col('unseen', 'ratio_of_means'), col('unseen', 'ratio_of_means_classes_ignored')
    acc_u = col('unseen', 'accuracy')
    null = [d['seen_against_seen']['ratio_of_means'] for d in ys]
    steps = r['w8-b64']['training']['step']
    shared = [f"{rng(u_old)}×", f"{mean(u_old):.2f}× on average", f"above 1.25× on {sum(x > 1.25 for x in u_old)} of "
              f"{len(ys)} draws", f"{rng(u_new)}×", f"{mean(u_new):.2f}× on average", f"{mean(null):.2f}×",
              f"{steps:,} steps", f"{new(1.0)} and {new(1.0, 1)}", f"{new(0.5)} and {new(0.5, 1)} at",
              f"{acc(0.5)} and {acc(0.5, 1)} accuracy", f"{mean(acc_u):.1%} on average",
              f"{rng(acc_u, '{:.1%}').replace('%–', '–')}"]
    chapter = shared + [f"at $w = 1$, {new(0.75)} and {new(0.75, 1)} at 0.75", f"{new(0.3)} and {new(0.3, 1)} at 0.3",
                        f"{old(1.0)}/{old(1.0, 1)}, {old(0.75)}/{old(0.75, 1)}, {old(0.5)}/{old(0.5, 1)} and "
                        f"{old(0.3)}/{old(0.3, 1)}", f"{rng(null)}×",
                        f"{mean(col('seen', 'ratio_of_means')):.2f}× on average class by class",
                        f"({rng([d['held_out_accuracy'] for d in ys], '{:.1%}').replace('%–', '–')})",
                        f"{r['w8-b64']['training']['images_per_s']:,.0f} images/s"]
    readme = shared + [f"against {old(1.0)}/{old(1.0, 1)} and {old(0.5)}/{old(0.5, 1)} with random"]
    md = _text('nbs/09_mnist.ipynb')
    for text, quoted in ((md, chapter), (_text('README.md'), readme)):
        missing = [q for q in quoted if q not in text]
        assert not missing, missing
    workshop = _text('workshop/README.md')
    assert f"{float(new(1.0)[:-1]):.1f}× at guidance 1 and {float(new(0.5)[:-1]):.1f}× at 0.5" in workshop


def test_the_held_out_class_counts_are_the_data():
    "The class counts quoted for the held-out fifth (chapters 8 and 9, the README) are the held-out labels' own."
    import pytest, torch
    from ddpm_nb.data import load_splits
    root = ROOT.parent / 'shared' / 'data' / 'mnist'
    if not root.exists(): pytest.skip(f'no MNIST files at {root}')
    counts = torch.bincount(load_splits('mnist', root, 28, allow_test_as_train=True).heldout.labels).tolist()
    quoted = f"{counts[6]} sixes"
    for rel in ('nbs/08_evaluate.ipynb', 'nbs/09_mnist.ipynb', 'README.md'):
        assert quoted in _text(rel) and f"{counts[3]} threes" in _text(rel), rel
    assert (min(counts), max(counts)) == (counts[6], counts[3])      # the fewest and the most, as the text implies


def test_the_guidance_choice_figures_are_the_files():
    "The README's and chapter 9's figures for `ddpm-nb tune`, read back from the tune and rule files."
    tune = json.loads((SEARCH / 'tune-epyc-avx2-2026-12-03.json').read_text())
    runs = {r['variant']: r for r in tune['runs']}
    after = runs['w8-b64-n12000']['eval_after_tune']
    ref = {r['variant']: r['rows'] for blk in json.loads((SEARCH / 'references-epyc-avx2-2026-12-03.json').read_text())
           ['references'] for r in blk['rows']}
    rule = {r['variant']: r['rows'] for blk in json.loads((SEARCH / 'rule-epyc-avx2-2026-12-03.json').read_text())
            ['references'] for r in blk['rows']}
    held = lambda rows, w: next(e for e in rows if e['guidance'] == w)
    best12 = held(ref['w8-b64-n12000'], 0.75)['heldout']['ratio_of_means']
    r7 = held(rule['w8-b64-n7000'], 0.75)
    quoted = [f"kept {runs['w8-b64-n3500']['guidance_choice']['guidance']:g} and chose "
              f"{runs['w8-b64-n12000']['guidance_choice']['guidance']:g}, in {runs['w8-b64-n3500']['tune_wall_s']:.0f} s "
              f"and {runs['w8-b64-n12000']['tune_wall_s']:.0f} s",
              f"drew at {after['guidance']:g} by itself: {after['heldout_ratio_of_means']:.2f}× the floor, "
              f"{after['accuracy']:.1%} accuracy, {after['heldout_ratio_of_means'] / best12 - 1:.0%} above the held-out "
              f"best of {best12:.2f}× at 0.75",
              f"the held-out best there ({r7['heldout']['ratio_of_means']:.2f}×, {r7['accuracy']:.1%})"]
    missing = [q for q in quoted if q not in _text('README.md')]
    assert not missing, missing
    chapter = _text('nbs/09_mnist.ipynb')
    assert f"scored {after['heldout_ratio_of_means']:.2f}× against the held-out fifth at {after['accuracy']:.1%}" in chapter
    assert f"({r7['heldout']['ratio_of_means']:.2f}×, at {r7['accuracy']:.1%} accuracy" in chapter


def test_bench_readme_quotes_the_workshop_step_file():
    "bench/README.md's fused-Adam figures are bench/results/workshop-step-amd-epyc.json's."
    doc = json.loads((ROOT / 'bench' / 'results' / 'workshop-step-amd-epyc.json').read_text())
    v = doc['variants']
    base, fused = v['Adam (CPU default, for-loop)'], v['Adam fused']
    quoted = (f"{fused['speedup']:.2f}× on a 2-core AVX2-only EPYC, {fused['ms_per_step']:.0f} against "
              f"{base['ms_per_step']:.0f} ms a step, median of {doc['rounds']} alternated rounds")
    assert 'AMD EPYC' in doc['machine']['cpu'] and quoted in _text('bench/README.md'), quoted


def test_the_loss_weight_figures_are_quoted_from_their_files():
    """The loss-weight experiments (chapter 9, README, workshop README) type their figures; each is read back here
    from weights-epyc-avx2-2026-12-03.json (control: tsampling's uniform row), weights-xeon-2026-12-04.json and
    classwise-xeon-2026-12-04.json."""
    load = lambda f: [r for blk in json.loads((SEARCH / f).read_text())['runs'] for r in blk['rows']]
    gamma = lambda r: r.get('overrides', {}).get('min_snr_gamma', 5.0)     # absent: the preset's when these ran
    seed = lambda r: r.get('overrides', {}).get('seed', 0)
    at = lambda r, w, s=0: next(e for e in r['evals'] if (e['guidance'], e['seed']) == (w, s))
    epyc = {gamma(r): at(r, 1.0) for r in load('weights-epyc-avx2-2026-12-03.json')}
    epyc[5.0] = at(next(r for r in load('tsampling-epyc-avx2-2026-12-03.json') if r['kind'] == 'uniform'), 1.0)
    fixed = {gamma(r): r for r in load('weights-xeon-2026-12-04.json')}
    budget = {(gamma(r), seed(r)): r for r in load('classwise-xeon-2026-12-04.json')}
    x = lambda e: f"{e['ratio_of_means']:.2f}×"
    pc = lambda e: f"{e['accuracy']:.1%}"
    drop = lambda a, b: 1 - a['ratio_of_means'] / b['ratio_of_means']              # gamma 20's gain over the recipe
    per_cent = lambda v: f"{round(100 * v)}%"
    span = lambda vs: f"{round(100 * min(vs))}–{round(100 * max(vs))}%"   # a range of gains, one % sign
    xeon_fixed = [drop(at(fixed[20], w), at(fixed[5.0], w)) for w in (1.0, 1.25, 1.5)]
    b0 = [drop(e, at(budget[5.0, 0], e['guidance'], e['seed'])) for e in budget[20, 0]['evals']]
    seed0 = [drop(epyc[20], epyc[5.0])] + xeon_fixed + b0
    r5, r5s1 = budget[5.0, 0], budget[5.0, 1]
    accs = [at(fixed[g], 1.0)['accuracy'] for g in (20, 50, 100)]
    pr = r5['precision']['seconds_per_call']
    steps = sorted(budget[5.0, s]['training']['step'] for s in (0, 1))
    ips = sorted(budget[5.0, s]['training']['images_per_s'] for s in (0, 1))
    card = json.loads((ROOT / 'resources' / 'workshop' / 'card.json').read_text())
    seed1 = (f"{x(at(budget[20, 1], 0.75))} against {x(at(r5s1, 0.75))} at 0.75, {x(at(budget[20, 1], 1.0))} against "
             f"{x(at(r5s1, 1.0))} at 1")
    readme = [f"bought {r5['training']['step']:,} steps ({r5['training']['images_per_s']:,.0f} images/s in "
              f"{r5['precision']['chosen']}, which `auto` timed {pr['fp32'] / pr['bf16']:.2f}× faster than float32), "
              f"{x(at(r5, 1.0))} class by class at guidance 1 ({pc(at(r5, 1.0))}) and {x(at(r5, 0.75))} and "
              f"{x(at(r5, 0.75, 1))} at 0.75 on two draws ({pc(at(r5, 0.75))}, {pc(at(r5, 0.75, 1))}), with 1,000 "
              f"samples in {at(r5, 1.0)['sampling_s']:.0f} s; a second training seed gave {x(at(r5s1, 0.75))} at 0.75 "
              f"({pc(at(r5s1, 0.75))})",
              f"(by {span(seed0)}; in the budget {x(at(budget[20, 0], 0.75))} at 0.75 "
              f"with {pc(at(budget[20, 0], 0.75))} accuracy",
              f"seed 1 ({seed1})"]
    chapter = [f"the distance grows by {per_cent(epyc[0]['ratio_of_means'] / epyc[5.0]['ratio_of_means'] - 1)}",
               f"γ = 20 lands {per_cent(drop(epyc[20], epyc[5.0]))} below the recipe, inside a draw's noise, and at "
               f"{pc(epyc[20])} accuracy",
               f"lands at {x(at(fixed[5.0], 1.0))} here against {x(epyc[5.0])} there",
               f"here by {span(xeon_fixed)} at each of the three",
               f"lowest at 20–50 ({x(at(fixed[20], 1.0))} and {x(at(fixed[50], 1.0))}) and rising again at 100 "
               f"({x(at(fixed[100], 1.0))}) and for the ε loss ({x(at(fixed[1e5], 1.0))})",
               f"({100 * min(accs):.1f}–{max(accs):.1%} at 20–100, {pc(at(fixed[1e5], 1.0))} for ε)",
               f"({pc(at(fixed[20], 1.25))} at guidance 1.25 against the recipe's {pc(at(fixed[5.0], 1.0))} at 1) it is "
               f"{x(at(fixed[20], 1.25))} against {x(at(fixed[5.0], 1.0))}, a gain of "
               f"{per_cent(drop(at(fixed[20], 1.25), at(fixed[5.0], 1.0)))}",
               f"took {steps[0]:,}–{steps[1]:,} steps ({ips[0]:,.0f}–{ips[1]:,.0f} images/s in bf16, which `auto` timed "
               f"{pr['fp32'] / pr['bf16']:.2f}× faster than float32 here), "
               f"{r5['training']['step'] / card['training']['step']:.1f} times the card's",
               f"scored {x(at(r5, 0.75))} and {x(at(r5s1, 0.75))} for the two training seeds ({x(at(r5, 0.75, 1))} on a "
               f"second draw of the first); at guidance 1 the extra steps bought nothing ({x(at(r5, 1.0))} and "
               f"{x(at(r5s1, 1.0))}, against the card's {card['metrics']['frechet']['ratio_of_means']:.2f}×)",
               f"by {span(b0)}: {x(at(budget[20, 0], 0.75))} at 0.75 with "
               f"{pc(at(budget[20, 0], 0.75))} accuracy",
               f"the difference is gone: {seed1}."]
    workshop = [f"{r5['training']['step']:,} steps and {x(at(r5, 1.0))} class by class with today's code"]
    for rel, quoted in (('README.md', readme), ('nbs/09_mnist.ipynb', chapter), ('workshop/README.md', workshop)):
        text = _text(rel)
        missing = [q for q in quoted if q not in text]
        assert not missing, (rel, missing)
