"""Sampling-side variants of one trained checkpoint, scored with chapter 8's held-out metrics: is the sampler the limit?

    python tools/workshop_search/sampling.py CKPT --variants 1:0:1:0,1:0.1:1:0,1:0:1:1 [--raw] [--seed S]
                                             [--results tools/workshop_search/sampling-MACHINE-DATE.json]

Each variant is `guidance:lo:hi:eta`: classifier-free guidance of that weight applied only while the original
timestep t satisfies lo*T <= t < hi*T (guidance in a limited interval, Kynkäänniemi et al. 2024, arXiv:2404.07724;
0:1 is ordinary constant guidance), with DDIM's eta (0: deterministic, 1: DDPM's noise) at the checkpoint's
recipe steps. `--raw` scores the raw weights instead of the EMA. Everything else is the recipe's and
evaluate_checkpoint's own (class-balanced samples, class-by-class halving of the held-out reference, 10 halvings).

The interval and eta are experiment knobs, not library options: this script wraps `Diffusion.model_out` and
`Diffusion.sample` for its own process only. Quality figures depend only on the seed (the same seed draws the same
samples); `sampling_s` is wall time and needs an otherwise idle machine.
"""
import argparse, functools, json, time
from pathlib import Path
import ddpm_nb.diffusion as D
import ddpm_nb.metrics as M
from ddpm_nb.checkpoint import load_model, load_checkpoint
from ddpm_nb.precision import cpu_info

KNOBS = dict(lo=0.0, hi=1.0, eta=0.0)
_model_out, _sample = D.Diffusion.model_out, D.Diffusion.sample

def _limited(self, eps_model, xt, t, y=None, guidance=0.0):
    "Guidance only inside [lo, hi) of the original steps (the respaced diffusion maps its index back)."
    frac = int(self.timestep_map[int(t)]) / KNOBS['T']
    return _model_out(self, eps_model, xt, t, y, guidance if KNOBS['lo'] <= frac < KNOBS['hi'] else 0.0)

def _with_eta(self, *args, **kw): return _sample(self, *args, **{**kw, 'eta': KNOBS['eta']})

def parse(v: str) -> dict:
    g, lo, hi, eta = map(float, v.split(':'))
    if not (0 <= lo < hi <= 1 and eta >= 0 and g >= 0):
        raise ValueError(f"bad variant {v!r}: want guidance:lo:hi:eta with 0 <= lo < hi <= 1, eta >= 0")
    return dict(guidance=g, lo=lo, hi=hi, eta=eta)

def score(ckpt, variants, data_root, raw=False, seed=0, n=1000):
    D.Diffusion.model_out, D.Diffusion.sample = _limited, _with_eta
    if raw: M.load_model = functools.partial(load_model, use_ema=False)
    KNOBS['T'] = load_model(ckpt)[1].T
    rows = []
    for v in variants:
        k = parse(v)
        KNOBS.update(lo=k['lo'], hi=k['hi'], eta=k['eta'])
        r = M.evaluate_checkpoint(ckpt, ('accuracy', 'frechet'), n=n, data_root=data_root, allow_test_as_train=True,
                                  guidance=k['guidance'], seed=seed, write=False, progress=False)
        s, f = r['accuracy']['samples'], r['frechet']
        rows.append(dict(**k, weights='raw' if raw else 'EMA', sampler=f"DDIM {s['steps']}", seed=seed,
                         accuracy=r['accuracy']['overall'], ratio_of_means=round(f['ratio_of_means'], 3),
                         fd=round(f['fd'], 4), floor=round(f['floor'], 4), sampling_s=s['sampling_time_s'],
                         precision=s['precision']))
        print(json.dumps(rows[-1]), flush=True)
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('ckpt', type=Path)
    ap.add_argument('--variants', required=True, help='comma-separated guidance:lo:hi:eta')
    ap.add_argument('--raw', action='store_true', help='the raw weights instead of the EMA')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--data-root', type=Path, default=Path('../shared/data/mnist'))
    ap.add_argument('--results', type=Path, required=True, help='the JSON file to append to (one per machine)')
    a = ap.parse_args()
    vs = a.variants.split(',')
    for v in vs: parse(v)                                                     # fail before any sampling
    ckpt_step = load_checkpoint(a.ckpt).get('step')
    rows = score(a.ckpt, vs, a.data_root, a.raw, a.seed)
    doc = json.loads(a.results.read_text()) if a.results.exists() else {}
    doc.setdefault('runs', []).append(dict(machine=cpu_info(), date=time.strftime('%Y-%m-%d %H:%M'),
                                           ckpt=str(a.ckpt), step=ckpt_step, rows=rows))
    a.results.write_text(json.dumps(doc, indent=1) + '\n')
