"""Training-side variant of the workshop recipe: which noise levels Algorithm 1 trains on. Is t's distribution the limit?

    python tools/workshop_search/tsampling.py NAME --steps 4685 [--seed 0]
                                              [--results tools/workshop_search/tsampling-MACHINE-DATE.json]

NAME is one of
- `uniform`: the recipe as it is (t uniform on 0..T-1), trained here for a fixed step count, the control;
- `logitnormal:M:S`: t = floor(T * sigmoid(M + S z)), z standard normal (the logit-normal of Esser et al. 2024,
  arXiv:2403.03206, Sec. 3.1, which puts more steps at middle noise levels);
- `edm:PM:PS`: the noise level sigma = exp(PM + PS z) of Karras et al. 2022 (arXiv:2206.00364, Table 1, "Training":
  P_mean = -1.2, P_std = 1.2 for their CIFAR-10 models), mapped to the first timestep whose
  sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) reaches it.
In both the loss is not reweighted by 1/p(t): the point is to change which noise levels the network practises,
on top of the recipe's own min-SNR-5 weights. This script replaces `Diffusion.draw` in its own process only; it
is an experiment knob, not a library option. Training is `ddpm-nb train --preset workshop --steps N` in-process
(a fixed step count, so that the result does not depend on what else the machine runs), then evaluation as
`search.py run` does it (DDIM 20 at the recipe's guidance 1, class by class, held-out fifth, 10 halvings).
The `command` a row records ran under this script's replacement of the draw: on its own it trains uniformly.
"""
import argparse, json, sys, time
from pathlib import Path
import torch
import ddpm_nb.diffusion as D
from ddpm_nb.cli import main as ddpm_main
from ddpm_nb.precision import cpu_info

sys.path.insert(0, str(Path(__file__).parent))
from search import ROOT, evaluate            # noqa: E402  (search.py's evaluation, unchanged)

_draw = D.Diffusion.draw
KNOB = dict(kind='uniform', a=0.0, b=1.0)
N = 1000                                     # samples per evaluation, as search.py run

def parse(name: str) -> dict:
    kind, *ab = name.split(':')
    if kind == 'uniform' and not ab: return dict(kind=kind, a=0.0, b=1.0)
    if kind in ('logitnormal', 'edm') and len(ab) == 2:
        a, b = map(float, ab)
        if b > 0: return dict(kind=kind, a=a, b=b)
    raise ValueError(f"bad variant {name!r}: want uniform, logitnormal:M:S or edm:PM:PS with S, PS > 0")

def draw_t(self, B, generator, device):
    "Timesteps for one batch under KNOB (generator-driven, so runs are reproducible)."
    z = torch.randn(B, generator=generator, device=device)
    if KNOB['kind'] == 'logitnormal':
        return (torch.sigmoid(KNOB['a'] + KNOB['b'] * z) * self.T).long().clamp(0, self.T - 1)
    ab = self.schedule.alpha_bar.to(device)
    log_sigma = 0.5 * torch.log((1 - ab) / ab)                       # increasing in t
    want = KNOB['a'] + KNOB['b'] * z
    return torch.bucketize(want, log_sigma).clamp(0, self.T - 1)     # the first t whose sigma_t reaches it

def _patched(self, shape, generator=None, t_sampler=None, device=None, dtype=torch.float32):
    d = _draw(self, shape, generator, t_sampler, device, dtype)
    if KNOB['kind'] == 'uniform' or t_sampler is not None: return d
    gdev = generator.device if generator is not None else torch.device(device or 'cpu')
    t = draw_t(self, shape[0], generator, gdev).to(d.t.device)
    return D.NoiseDraw(t, d.weight, d.eps, d.drop)

def histogram(T=1000, n=200_000):
    "Share of drawn t in each tenth of 0..T-1 under KNOB (what the variant practises)."
    from ddpm_nb.presets import load_preset
    diff = D.Diffusion.from_preset(load_preset('workshop', ROOT / 'settings.ini'))
    g = torch.Generator().manual_seed(0)
    t = draw_t(diff, n, g, torch.device('cpu')) if KNOB['kind'] != 'uniform' else torch.randint(0, T, (n,), generator=g)
    return [round(float(c) / n, 3) for c in torch.bincount(t * 10 // T, minlength=10)]

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('name')
    ap.add_argument('--steps', type=int, required=True)
    ap.add_argument('--seed', type=int, default=0, help='the training seed')
    ap.add_argument('--data-root', type=Path, default=ROOT.parent / 'shared' / 'data' / 'mnist')
    ap.add_argument('--results', type=Path, required=True, help='the JSON file to append to (one per machine)')
    a = ap.parse_args()
    KNOB.update(parse(a.name))
    D.Diffusion.draw = _patched
    out = ROOT / 'outputs' / 'search' / 'tsampling' / f"{a.name.replace(':', '_')}-s{a.seed}-n{a.steps}"
    args = ['train', '--preset', 'workshop', '--presets', str(ROOT / 'settings.ini'), '--data-root', str(a.data_root),
            '--allow-test-as-train', '--out', str(out), '--no-progress', '--log-every', '100', '--ckpt-every', '0',
            '--steps', str(a.steps), f'seed={a.seed}']
    t0 = time.time()
    if ddpm_main(args) != 0: sys.exit('training failed')
    card = json.loads((out / 'card.json').read_text())
    row = dict(variant=a.name, **KNOB, seed=a.seed, n=N, t_tenths=histogram(), command='ddpm-nb ' + ' '.join(args),
               training=card['training'], precision=card['precision'], wall_s=round(time.time() - t0, 1))
    row['evals'] = evaluate(out / 'ckpt.pt', ['20:1.0'], N, a.data_root)
    doc = json.loads(a.results.read_text()) if a.results.exists() else {}
    doc.setdefault('runs', []).append(dict(machine=cpu_info(), date=time.strftime('%Y-%m-%d %H:%M'), rows=[row]))
    a.results.write_text(json.dumps(doc, indent=1) + '\n')
    print(json.dumps(row), flush=True)
