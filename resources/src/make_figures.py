"""Figures and measured numbers for the talk and the report, made by `ddpm_nb` itself.

Writes PNGs and `facts.json` into resources/src/figures/ (the Typst sources read both). Seeded and CPU-only;
about a minute on two cores. Run from the repository root:  python resources/src/make_figures.py [--only book|slides]

Results of real training runs are picked up when they exist and never invented when they do not:
  resources/<run>/samples.png   sample grids of recorded runs (make record-demo, make record-workshop) -> figures/run_samples_<run>.png
  resources/<run>/card.json     their run cards (chapter 7's write_card) -> summarised in facts.json['runs']
  tools/workshop_search/results*.json   the workshop recipe's search runs, one file per machine -> facts.json['recipe_machines']
  tools/workshop_search/classwise-*.json   the class-mix check of the Fréchet floor -> facts.json['classwise']
"""
from __future__ import annotations
import json, math, shutil, sys, time
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from ddpm_nb.schedules import Schedule, linear_betas
from ddpm_nb.forward import noise_sequence, predict_eps_from_x0, q_sample
from ddpm_nb.elbo import calc_bpd_loop, mse_weight
from ddpm_nb.unet import UNet, param_count, timestep_embedding, ResBlock, AttentionBlock
from ddpm_nb.testing import toy_data, ToyNet, Oracle   # the book's fixtures (chapter 5's toy problem)
from ddpm_nb.diffusion import Diffusion
from ddpm_nb.data import load_digits
from ddpm_nb.analytic import GaussianMixture
from ddpm_nb.checkpoint import load_model, chosen_guidance
from ddpm_nb.viz import image_grid
from ddpm_nb.metrics import pick_guidance

RES = Path(__file__).resolve().parents[1]          # resources/
FIG = RES / 'src' / 'figures'
SCHEDULES = ('linear', 'cosine', 'sigmoid')
plt.rcParams.update({'font.size': 9, 'axes.titlesize': 9, 'legend.fontsize': 7, 'savefig.dpi': 150,
                     'axes.spines.top': False, 'axes.spines.right': False})


def save(fig, name: str) -> str:
    "Save `fig` as figures/<name>.png with no timestamp/version metadata (so reruns give the same bytes)."
    fig.savefig(FIG / f'{name}.png', bbox_inches='tight', metadata={'Software': None})
    plt.close(fig)
    return f'{name}.png'


def schedule_of(name: str, T: int = 1000) -> Schedule:
    return Schedule(linear_betas(T)) if name == 'linear' else Schedule.from_name(name, T)


# ---------------------------------------------------------------- chapters 1-2: schedules and the forward process
def fig_schedules(facts):
    fig, axs = plt.subplots(1, 2, figsize=(7.5, 2.5))
    u = torch.arange(1, 1001) / 1000
    for name in SCHEDULES:
        s = schedule_of(name)
        axs[0].plot(u, s.alpha_bar, label=name); axs[1].plot(u, s.log_snr, label=name)
        facts['alpha_bar_T'][name] = float(s.alpha_bar[-1])
    axs[0].set(xlabel='t / T', ylabel=r'$\bar\alpha_t$', title=r'signal kept, $\bar\alpha_t$')
    axs[1].set(xlabel='t / T', ylabel=r'$\log \mathrm{SNR}(t)$', title=r'$\log\,\bar\alpha_t/(1-\bar\alpha_t)$')
    axs[0].legend()
    return save(fig, 'schedules')


def fig_forward(digit: torch.Tensor):
    ts = [0, 50, 100, 200, 300, 400, 500, 600, 800, 999]
    fig, axs = plt.subplots(2, len(ts), figsize=(8, 1.9))
    for row, name in zip(axs, ('linear', 'cosine')):
        seq = noise_sequence(schedule_of(name), digit.double(), ts, generator=torch.Generator().manual_seed(1))
        for ax, t, img in zip(row, ts, seq):
            ax.imshow(img[0], cmap='gray', vmin=-2, vmax=2); ax.set_axis_off()
            ax.set_title(f'{name[:3]} t={t}', fontsize=7)
    return save(fig, 'forward')


def fig_posterior_std():
    fig, ax = plt.subplots(figsize=(4.2, 2.5))
    for k, name in enumerate(('linear', 'cosine')):
        s = schedule_of(name)
        ax.plot(s.beta_tilde.sqrt(), color=f'C{k}', label=rf'{name}: $\sqrt{{\tilde\beta_t}}$')
        ax.plot(s.betas.sqrt(), '--', color=f'C{k}', label=rf'{name}: $\sqrt{{\beta_t}}$')
    ax.set(xscale='symlog', yscale='log', xlabel='t (code index, symlog)', title='reverse-step standard deviations')
    ax.legend(ncol=2)
    return save(fig, 'posterior_std')


def fig_eq12_weight():
    fig, ax = plt.subplots(figsize=(4.2, 2.5))
    for name in SCHEDULES: ax.plot(mse_weight(schedule_of(name), 'eps', 'fixed_small'), label=name)
    ax.axhline(1, color='k', lw=0.8, ls=':', label=r'$L_\mathrm{simple}$ (weight 1)')
    ax.set(yscale='log', xlabel='t (code index)', ylabel='weight', title=r'Eq. 12 weight on $\|\epsilon-\epsilon_\theta\|^2$')
    ax.legend()
    return save(fig, 'eq12_weight')


# ---------------------------------------------------------------- chapter 3: where the bits go
def oracle(schedule, x0, noise=0.0, generator=None):
    "A model_fn told x0 that returns the exact noise in x_t, plus optional Gaussian error (a stand-in for a good network)."
    def model_fn(xt, t):
        e = predict_eps_from_x0(schedule, xt, t, x0.repeat(len(xt) // len(x0), 1, 1, 1))
        return e + noise * torch.randn(e.shape, generator=generator, dtype=e.dtype)
    return model_fn


def bits_runs(cache={}):
    "calc_bpd_loop for an oracle and a noisy oracle on 16 8-bit digits, linear T = 1000 (computed once per process)."
    if not cache:
        import sklearn.datasets
        X = torch.tensor(sklearn.datasets.load_digits().images[:16], dtype=torch.float64)[:, None]
        x0 = torch.round(X / 16 * 255) / 255 * 2 - 1                     # 8-bit grid in [-1, 1], as in chapter 3
        lin, g = schedule_of('linear'), torch.Generator().manual_seed(0)
        kw = dict(prediction='eps', variance='fixed_small', batch_timesteps=100, progress=False, generator=g)
        cache.update({'oracle': calc_bpd_loop(oracle(lin, x0), lin, x0, **kw),
                      'noisy oracle (error 0.1)': calc_bpd_loop(oracle(lin, x0, 0.1, g), lin, x0, **kw)})
    return cache


def fig_bits(facts):
    runs = bits_runs()
    fig, axs = plt.subplots(1, 2, figsize=(7.5, 2.6))
    for name, r in runs.items():
        axs[0].plot(r['vb'].mean(0).clamp(min=1e-7), label=f"{name}: {r['total_bpd'].mean():.2f} bits/dim")
    axs[0].set(xscale='symlog', yscale='log', xlabel='t (code index)', ylabel='$L_t$ (bits/dim)', title='per-timestep terms, linear T=1000')
    axs[0].legend()
    r = runs['noisy oracle (error 0.1)']
    axs[1].plot(*rate_distortion(r), '.-', ms=2)
    axs[1].set(xscale='log', xlabel='rate (bits/dim sent so far, log scale)', ylabel=r'RMSE of $\hat x_0$ (0..255)',
               title='rate-distortion, noisy oracle')
    vb = r['vb'].mean(0)
    facts['bits'] = dict(oracle_bpd=float(runs['oracle']['total_bpd'].mean()), noisy_bpd=float(r['total_bpd'].mean()),
                         noisy_last10_share=float(vb[:10].sum() / vb.sum()), noisy_decoder_share=float(vb[0] / vb.sum()),
                         n_images=len(r['total_bpd']))
    return save(fig, 'bits_per_t')


def rate_distortion(r):
    "Rate (bits/dim sent once x_t is received: prior + L_T-1 .. L_t) and the RMSE (0..255) of x0_hat at each code t."
    return r['prior_bpd'].mean() + r['vb'].mean(0).flip(0).cumsum(0).flip(0), r['x0_mse'].mean(0).sqrt() * 127.5


# ---------------------------------------------------------------- chapter 4: the network
def unet_parts(preset: str):
    "The UNet of a preset and its parameters by part: residual blocks, attention, time embedding, the rest."
    m = UNet.from_preset(preset)
    kinds = {'residual blocks': ResBlock, 'attention': AttentionBlock}
    parts = {k: sum(param_count(x) for x in m.modules() if isinstance(x, cls)) for k, cls in kinds.items()}
    parts['time embedding'] = param_count(m.time_embed)
    parts['other (convs, resampling)'] = param_count(m) - sum(parts.values())
    return m, parts


def bar_parts(ax, presets, fontsize) -> list:
    "One stacked bar of parameters by part per preset on `ax`, its total written at the end; the UNets."
    models = []
    for i, p in enumerate(presets):
        m, parts = unet_parts(p)
        left = 0
        for k, (name, n) in enumerate(parts.items()):
            ax.barh(i, n / 1e6, left=left, color=f'C{k}', label=name if i == 0 else None); left += n / 1e6
        ax.text(left, i, f' {param_count(m) / 1e6:.2f}M', va='center', fontsize=fontsize)
        models.append(m)
    return models


def fig_unet_params(facts):
    presets = ('digits', 'mnist', 'cifar10')
    fig, ax = plt.subplots(figsize=(6, 1.9))
    for p, m in zip(presets, bar_parts(ax, presets, fontsize=8)): facts['params'][p] = param_count(m)
    ax.set(yticks=range(len(presets)), yticklabels=presets, xscale='log', xlim=(0.1, 80), xlabel='parameters (millions, log scale)')
    ax.legend(ncol=4, loc='lower center', bbox_to_anchor=(0.5, 1.0), frameon=False)
    from ddpm_nb.presets import load_preset
    facts['params']['cifar10_unconditional'] = param_count(UNet.from_preset(load_preset('cifar10', num_classes=0)))
    keep = ('image_size', 'T', 'schedule', 'base_channels', 'channel_mults', 'batch_size', 'steps', 'lr', 'p_uncond', 'ema_decay')
    facts['presets'] = {p: {k: getattr(load_preset(p), k) for k in keep} for p in presets}
    return save(fig, 'unet_params')


# ---------------------------------------------------------------- chapter 5: samplers and guidance on a 2-D toy
def train_toy(steps=2000):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data, labels = toy_data(4000, g)
    diff, net = Diffusion(Schedule.from_name('cosine', 100), p_uncond=0.2), ToyNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(data), (256,), generator=g)
        loss = diff.loss(net, data[idx], labels[idx], generator=g)
        opt.zero_grad(); loss.backward(); opt.step()
    return diff, net.eval(), data, labels


def arc_stats(x, y):
    "Share of points nearest (in angle) to their requested arc, mean radius, and spread of angle about the arc centre."
    ang = torch.atan2(x[:, 1], x[:, 0])
    right = ((ang / (math.pi / 2)).round().long() % 4 == y).float().mean().item()
    d = ang - y * (math.pi / 2)
    return dict(right_arc=right, radius=x.norm(dim=1).mean().item(), spread=torch.atan2(d.sin(), d.cos()).std().item())


def fig_toy(facts):
    diff, net, data, labels = train_toy()
    y = torch.arange(4).repeat_interleave(250)
    runs = {'ancestral, 100 steps': dict(sampler='ancestral'), 'DDIM, 20 steps': dict(sampler='ddim', steps=20),
            'DDIM, 5 steps': dict(sampler='ddim', steps=5), 'ancestral, 5 steps': dict(sampler='ancestral', steps=5)}
    facts['toy'] = dict(data=arc_stats(data, labels), samplers={}, guidance={})
    fig, axs = plt.subplots(1, 5, figsize=(10, 2.3), sharex=True, sharey=True)
    axs[0].scatter(*data[:1000].T, c=labels[:1000], s=1, cmap='tab10', vmax=9); axs[0].set_title('data')
    for ax, (name, kw) in zip(axs[1:], runs.items()):
        x = diff.sample(net, (1000, 2), y, generator=torch.Generator().manual_seed(1), **kw)
        st = facts['toy']['samplers'][name] = arc_stats(x, y)
        ax.scatter(*x.T, c=y, s=1, cmap='tab10', vmax=9)
        ax.set_title(f"{name}\nright arc {st['right_arc']:.0%}, radius {st['radius']:.2f}", fontsize=8)
    for ax in axs: ax.set_aspect('equal'); ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6))
    name_samplers = save(fig, 'toy_samplers')
    fig, axs = plt.subplots(1, 4, figsize=(8, 2.3), sharex=True, sharey=True)
    for ax, w in zip(axs, (0.0, 1.0, 3.0, None)):
        yy = torch.full_like(y, net.null_class) if w is None else y
        x = diff.sample(net, (1000, 2), yy, sampler='ddim', steps=20, guidance=w or 0.0, generator=torch.Generator().manual_seed(2))
        if w is None: ax.scatter(*x.T, c='gray', s=1); ax.set_title('null class (unconditional)', fontsize=8)
        else:
            st = facts['toy']['guidance'][f'{w:g}'] = arc_stats(x, y)
            ax.scatter(*x.T, c=y, s=1, cmap='tab10', vmax=9); ax.set_title(f"w = {w:g}: angle spread {st['spread']:.2f}", fontsize=8)
        ax.set_aspect('equal'); ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6))
    return name_samplers, save(fig, 'toy_guidance')


# ---------------------------------------------------------------- background: (annealed) Langevin dynamics, exact scores
def mixture_score(x, sigma, mus, weights, s0=0.1):
    "Score of a 2-D Gaussian mixture (component std s0) convolved with N(0, sigma^2 I), by autograd."
    x = x.detach().requires_grad_()
    var = s0 ** 2 + sigma ** 2
    logp = torch.logsumexp(weights.log() - ((x[:, None] - mus) ** 2).sum(-1) / (2 * var), dim=1)
    return torch.autograd.grad(logp.sum(), x)[0]


def fig_langevin(facts):
    r = langevin_runs()
    mus, w, plain, annealed = r['mus'], r['w'], r['plain'], r['annealed']
    fig, axs = plt.subplots(1, 3, figsize=(8, 2.6), sharex=True, sharey=True)
    grid = torch.stack(torch.meshgrid(torch.linspace(-3, 3, 15), torch.linspace(-3, 3, 15), indexing='xy'), -1).reshape(-1, 2)
    sc = mixture_score(grid, 0.01, mus, w)
    sc = sc / sc.norm(dim=1, keepdim=True).clamp(min=1e-8)
    axs[0].quiver(*grid.T, *sc.T, color='gray', scale=25); axs[0].set_title('mixture 0.8 / 0.2:\ndirection of the score', fontsize=8)
    for ax, x, name in [(axs[1], plain, 'Langevin, exact score'), (axs[2], annealed, 'annealed Langevin')]:
        share = (x.sum(1) < 0).float().mean().item()
        ax.scatter(*x.T, s=1); ax.set_title(f'{name}\n{share:.0%} in the 80% mode', fontsize=8)
        facts['langevin'][name] = share
    for ax in axs: ax.set_aspect('equal'); ax.set(xlim=(-3, 3), ylim=(-3, 3))
    return save(fig, 'langevin')


# ---------------------------------------------------------------- recorded runs: only what exists
def sample_settings(card: dict) -> str:
    "How a run's samples.png was drawn: the card's `sample` command, with the recipe's keys for what it left out."
    p = card.get('preset', {})
    cmd = next((c.split() for c in card.get('commands', []) if ' sample ' in f' {c} '), None)
    if cmd is None: return 'sampler settings not recorded in its card'
    get = lambda flag, default: cmd[cmd.index(flag) + 1] if flag in cmd else default
    sampler = get('--sampler', p.get('sampler') or 'ddim')
    chosen = tuned_guidance(card)                      # what load_model puts in the recipe, unless --guidance overrides
    w = float(get('--guidance', (p.get('guidance') or 0) if chosen is None else chosen))
    how = " (tune's choice)" if chosen is not None and '--guidance' not in cmd else ''
    steps = get('--steps', p.get('sample_steps'))
    return (f"{'DDIM' if sampler == 'ddim' else sampler} {steps} steps, guidance {w:g}{how}, "
            f"{'raw weights' if '--raw-weights' in cmd else 'EMA'}")

def tuned_guidance(card: dict) -> float | None:
    "The weight `ddpm-nb tune` stored for the card's final step (load_model applies it only then), else None."
    return chosen_guidance(card.get('guidance_choice'), card.get('training', {}).get('step'))

def machine(card: dict) -> str:
    env = card.get('environment', {})
    cpu = env.get('cpu', {}).get('model')
    return f"{cpu}, {env['cpu']['cores']} cores" if cpu else f"{env.get('device', '?')} (CPU model not recorded)"

def guidance_choice(facts):
    """`ddpm-nb tune`'s choice on three fixed-step models (tools/workshop_search/references-, rule- and tune-*.json):
    the weight the training digits pick, the one they pick among weights at 99% accuracy or more (`pick_guidance`, the
    library's rule), and the held-out best, each with its held-out score; and tune's own record."""
    d = RES.parent / 'tools' / 'workshop_search'
    files = ['references-epyc-avx2-2026-12-03.json', 'rule-epyc-avx2-2026-12-03.json', 'tune-epyc-avx2-2026-12-03.json']
    if not all((d / f).exists() for f in files): return
    docs = [json.loads((d / f).read_text()) for f in files]
    rows = {r['variant']: r['rows'] for doc in docs[:2] for blk in doc['references'] for r in blk['rows']}
    models = []
    for v, es in sorted(rows.items(), key=lambda kv: int(kv[0].split('-n')[1])):
        es = [e for e in es if e['guidance'] in (0.5, 0.75, 1.0, 1.5)]          # the weights tune tries
        t = [dict(guidance=e['guidance'], accuracy=e['accuracy'], ratio_of_means=e['train']['ratio_of_means']) for e in es]
        held = {e['guidance']: e for e in es}
        ws = dict(plain=pick_guidance(t, None)['guidance'], floor=pick_guidance(t, 0.99)['guidance'],
                  best=min(held, key=lambda w: held[w]['heldout']['ratio_of_means']))
        models.append(dict(steps=int(v.split('-n')[1]), **{k: dict(guidance=w, heldout=held[w]['heldout']['ratio_of_means'],
                                                                      accuracy=held[w]['accuracy']) for k, w in ws.items()}))
    m = docs[0]['references'][0]['machine']
    tune = docs[2]
    facts['guidance_choice'] = dict(
        machine=f"{short_cpu(m['model'])}, {bf16_units(m['flags'])}, {m['cores']} cores", models=models,
        tune_wall_s=[r['tune_wall_s'] for r in tune['runs']], eval_after=tune['runs'][-1]['eval_after_tune'])

def short_cpu(model: str) -> str: return ' '.join(model.replace('(R)', '').replace('Processor', '').split())

def bf16_units(flags) -> str:
    "What a CPU's flags say about bf16: AMX tiles, AVX-512 BF16 instructions, or neither."
    return 'AMX bf16' if 'amx_bf16' in flags else 'AVX-512 BF16, no AMX' if 'avx512_bf16' in flags else 'no bf16 units'

def recipe_machines(facts):
    """The workshop recipe (search variant `w8-b64`, 8 minutes) on each machine that `search.py` ran it on: precision
    chosen, steps, images/s, and accuracy and Fréchet ratio of means of each draw at guidance 1 and 0.75 (DDIM 20)."""
    rows = []
    for f in sorted((RES.parent / 'tools' / 'workshop_search').glob('results*.json')):
        for blk in json.loads(f.read_text()).get('runs', []):
            r = next((r for r in blk.get('rows', []) if r.get('variant') == 'w8-b64'), None)   # 2026-11-29: other format
            if r is None or any(x['file'] == f.name for x in rows): continue     # the first run of it in each file
            def ev(w):   # each draw (seed) of the samples at guidance w, DDIM 20, scored over 10 halvings
                es = [e for e in r['evals'] if (e['sampler'], e['guidance']) == ('DDIM 20', w) and 'ratio_of_means' in e]
                return sorted([dict(seed=e.get('seed', 0), accuracy=e['accuracy'], ratio_of_means=e['ratio_of_means'])
                               for e in es], key=lambda e: e['seed'])
            m = blk['machine']
            rows.append(dict(file=f.name, date=blk['date'][:10], precision=r['precision']['chosen'],
                             machine=f"{short_cpu(m['model'])}, {bf16_units(m['flags'])}, {m['cores']} cores",
                             steps=r['training']['step'], images_per_s=r['training']['images_per_s'],
                             g1=ev(1.0), g075=ev(0.75)))
    facts['recipe_machines'] = sorted(rows, key=lambda x: x['steps'])

def classwise(facts):
    """The class-mix check (tools/workshop_search/classwise-*.json): real digits a retrained classifier never saw,
    scored as a perfect generator's samples, and the recipe (`w8-b64`), each measured against class-by-class halves
    of the held-out digits and against random halves (the protocol until 2026-12-02)."""
    files = sorted((RES.parent / 'tools' / 'workshop_search').glob('classwise-*.json'))
    f = next((f for f in files if 'yardstick' in json.loads(f.read_text())), None)    # the file with the yardstick
    if f is None: return
    doc = json.loads(f.read_text())
    ys = [d for blk in doc.get('yardstick', []) for d in blk['rows'][0]['draws']]
    r = next(r for blk in doc['runs'] for r in blk['rows'] if r['variant'] == 'w8-b64')
    pick = lambda key: [d[key] for d in ys]
    m = doc['runs'][0]['machine']
    facts['classwise'] = dict(
        file=f.name, machine=f"{short_cpu(m['model'])}, {bf16_units(m['flags'])}, {m['cores']} cores",
        draws=len(ys), unseen=[d['ratio_of_means'] for d in pick('unseen')],
        unseen_random_halves=[d['ratio_of_means_classes_ignored'] for d in pick('unseen')],
        unseen_accuracy=[d['accuracy'] for d in pick('unseen')], held_out_accuracy=pick('held_out_accuracy'),
        null=[d['ratio_of_means'] for d in pick('seen_against_seen')], steps=r['training']['step'],
        recipe=sorted([dict(guidance=e['guidance'], seed=e.get('seed', 0), accuracy=e['accuracy'],
                            classwise=e['ratio_of_means'], random_halves=e['ratio_of_means_classes_ignored'])
                       for e in r['evals'] if e['sampler'] == 'DDIM 20'], key=lambda e: (-e['guidance'], e['seed'])))

def runs_of(facts):
    "Copy sample grids of recorded runs (resources/<run>/samples.png, enlarged to read) and summarise their cards."
    from PIL import Image
    for old in FIG.glob('run_samples_*.png'): old.unlink()
    for png in sorted(RES.glob('*/samples.png')):
        run = png.parent.name
        img = Image.open(png)
        k = max(1, round(600 / img.width))                     # small grids (8x8 digits) drawn at a size that reads
        img.resize((img.width * k, img.height * k), Image.NEAREST).save(FIG / f'run_samples_{run}.png')
        card = json.loads((png.parent / 'card.json').read_text()) if (png.parent / 'card.json').exists() else {}
        facts['run_samples'].append(dict(file=f'run_samples_{run}.png', name=run, settings=sample_settings(card),
                                         machine=machine(card)))
    for card in sorted(RES.glob('*/card.json')):
        c = json.loads(card.read_text())
        tr, m, p = c.get('training', {}), c.get('metrics', {}), c.get('preset', {})
        budget = f" (time budget {tr['budget_minutes']:g} min)" if tr.get('budget_minutes') else ''
        rows = [('preset', f"{p.get('name')} ({p.get('dataset')}, {p.get('image_size')}x{p.get('image_size')}, T={p.get('T')}, {p.get('schedule')}, {p.get('prediction')})"),
                ('parameters', f"{c.get('parameters', 0):,}"), ('machine', machine(c)),
                ('training', f"{tr.get('step')} steps in {tr.get('wall_time_s', 0) / 60:.1f} min{budget}, {tr.get('images_per_s')} images/s ({tr.get('status')})")]
        if 'accuracy' in m:
            a = m['accuracy']; smp = a['samples']
            if tuned_guidance(c) is not None:
                rows.append(('guidance', f"{tuned_guidance(c):g}, chosen by ddpm-nb tune on the training images"))
            rows.append(('conditioning accuracy', f"{a['overall']:.1%} ({smp['n']} samples, {smp['sampler']} {smp['steps']} steps, guidance {smp['guidance']}, {smp['sampling_time_s']:.0f} s)"))
        if 'frechet' in m:
            f = m['frechet']
            halves = ', halved class by class' if f.get('halves', '').startswith('class by class') else ''
            rows.append(('Frechet distance / floor', f"{f['fd']:.2f} / {f['floor']:.2f} = {f['fd'] / f['floor']:.2f}x; reference: {f.get('reference', '?')}{halves}"))
            if 'splits' in f:                                             # chapter 8: means over halvings of the reference
                old = f" (random halves: {f['classes_ignored']['ratio_of_means']:.2f}x)" if 'classes_ignored' in f else ''
                rows.append((f"the same over {f['splits']} halvings", f"{f['fd_mean']:.2f} / {f['floor_mean']:.2f} = {f['ratio_of_means']:.2f}x{old}"))
        if 'memorisation' in m:
            rows.append(('memorisation ratio', f"{m['memorisation']['median_ratio']:.2f} (nearest training image: samples vs held-out images)"))
        facts['runs'].append(dict(file=str(card.relative_to(RES)), fields=[[k, str(v)] for k, v in rows]))
        if card.parent.name == 'demo':                                    # what `make demo` trained (slide 28)
            facts['demo_recipe'] = {k: p.get(k) for k in ('minutes', 'lr_schedule', 'warmup_fraction', 'ema_fraction',
                                                          'batch_size', 'lr')} | dict(steps=tr.get('step'))


def measured_speed(facts):
    "The patch comparison (resources/patches/results.json) and the CPU peer benchmark (bench/results/cpu.json), when present."
    pat, bench = RES / 'patches' / 'results.json', RES.parent / 'bench' / 'results' / 'cpu.json'
    if pat.exists():
        facts['patches'] = [{k: r[k] for k in ('run', 'parameters', 'images_per_s', 'train_steps', 'train_minutes', 'accuracy',
                                               'fd_over_floor', 'sampling_time_s')} for r in json.loads(pat.read_text())['rows']]
    if bench.exists():
        b = json.loads(bench.read_text())
        facts['bench'] = [dict(size=t['size'], mode=t['mode'],
                               p2_over_diffusers_train=t['contenders']['diffusers']['train_ratio_p2_over'],
                               p2_over_diffusers_eval=t['contenders']['diffusers']['eval_ratio_p2_over'],
                               ours_over_diffusers_train=t['contenders']['diffusers']['train_ratio_ours_over'])
                          for t in b['peers'] if 'ddpm_nb-p2' in t['contenders']]


# ================================================================ the talk's figures, drawn at the size they are shown
# Each is `width` inches wide on a 10-inch-wide slide body and shown at exactly that width (facts['slide_fig']), so
# a font of 13 pt in matplotlib is 13 pt on the slide. Pictures of samples state their settings in the slide caption.
SLIDE_RC = {'font.size': 14, 'axes.titlesize': 14, 'axes.labelsize': 14, 'legend.fontsize': 12.5,
            'xtick.labelsize': 12.5, 'ytick.labelsize': 12.5, 'savefig.dpi': 150, 'lines.linewidth': 2}
WS_CKPT = RES / 'workshop' / 'ckpt.pt'


def slide(name: str, w: float, h: float, facts, nrows=1, ncols=1, **kw):
    "A figure for the talk, about `w` x `h` inches (`ssave` records the width it was saved at)."
    fig, axs = plt.subplots(nrows, ncols, figsize=(w, h), layout='constrained', **kw)
    return fig, axs


SLIDE_W = {}                # name -> width in inches as saved; the talk shows each at exactly that width


def ssave(fig, name: str) -> str:
    from PIL import Image
    fig.savefig(FIG / f'{name}.png', bbox_inches='tight', pad_inches=0.04, metadata={'Software': None})
    plt.close(fig)
    SLIDE_W[name] = round(Image.open(FIG / f'{name}.png').width / SLIDE_RC['savefig.dpi'], 3)
    return f'{name}.png'


def gray(ax, img, **kw):
    ax.imshow(img.squeeze(0) if img.ndim == 3 else img, cmap='gray', vmin=-1, vmax=1, interpolation='nearest', **kw)
    ax.set_xticks([]); ax.set_yticks([])
    for s in ax.spines.values(): s.set_visible(False)


def mix1d():
    "The 1-D data of the talk's pictures of densities: three Gaussian bumps in [-1, 1]."
    return GaussianMixture([[-0.65], [0.1], [0.7]], std=[0.08, 0.1, 0.06], weights=[0.3, 0.5, 0.2])


def ring(K=8, std=0.07):
    "2-D data: K small Gaussians on the unit circle (class k = component k)."
    a = torch.arange(K, dtype=torch.float64) * 2 * math.pi / K
    return GaussianMixture(torch.stack([a.cos(), a.sin()], 1), std=std)


def arcs4():
    "2-D data: four elongated Gaussians, one per class, placed like chapter 5's arcs (tangent std 0.25, radial 0.05)."
    a = torch.arange(4, dtype=torch.float64) * math.pi / 2
    u, v = torch.stack([a.cos(), a.sin()], 1), torch.stack([-a.sin(), a.cos()], 1)       # radial and tangent
    covs = 0.05 ** 2 * u[:, :, None] * u[:, None, :] + 0.25 ** 2 * v[:, :, None] * v[:, None, :]
    return GaussianMixture(0.75 * u, covs=covs)


def density_image(ax, mix, extent=1.6, n=200, alpha_bar=1.0, add_var=0.0):
    "log-density of a 2-D mixture (after Eq. 4 at alpha_bar, or with extra variance add_var) as a grey background."
    g = torch.linspace(-extent, extent, n, dtype=torch.float64)
    xy = torch.stack(torch.meshgrid(g, g, indexing='xy'), -1).reshape(-1, 2)
    m = mix.marginal(alpha_bar) if alpha_bar < 1 else mix
    if add_var: m = GaussianMixture(m.means, covs=m.covs + add_var * torch.eye(2, dtype=torch.float64), weights=m.weights)
    lp = m.log_prob(xy).reshape(n, n)
    ax.imshow(lp.clamp(min=lp.max() - 12), extent=(-extent, extent, -extent, extent), origin='lower', cmap='Greys')
    ax.set_aspect('equal'); ax.set_xticks([]); ax.set_yticks([])


def workshop_states(cache={}):
    "The workshop run's ancestral sampling over all T steps, classes 0..9, seed 0: the states of its recorded GIF."
    if 'states' not in cache:
        model, diffusion, p = load_model(WS_CKPT)
        t0 = time.time()
        cache['states'] = list(diffusion.sample_steps(model, (10, p.channels, p.image_size, p.image_size),
                                                      torch.arange(10), generator=torch.Generator().manual_seed(0)))
        cache['x_T'] = torch.randn((10, p.channels, p.image_size, p.image_size), generator=torch.Generator().manual_seed(0))
        cache['model'], cache['diffusion'], cache['preset'], cache['seconds'] = model, diffusion, p, time.time() - t0
    return cache


def sfig_idea(facts):
    "Slide 3: a real MNIST test digit noised by q; the workshop model's reverse chain for the same class."
    from ddpm_nb.data import load_mnist
    real = load_mnist(RES.parents[1] / 'shared' / 'data' / 'mnist', train=False)
    digit, label = real.images[0], int(real.labels[0])                       # test image 0 (held out by the run)
    ws = workshop_states()
    by_t = {s['t']: s['x'][label] for s in ws['states']}
    ts = [0, 50, 100, 200, 300, 400, 500, 600, 800, 1000]                    # the paper's t; code index t - 1
    fwd = noise_sequence(ws['diffusion'].schedule, digit, [t - 1 for t in ts[1:]], generator=torch.Generator().manual_seed(1))
    rev = [by_t[0]] + [by_t[t] for t in ts[1:-1]] + [ws['x_T'][label]]
    fig, axs = slide('slide_idea', 10, 2.55, facts, 2, len(ts))
    for j, t in enumerate(ts):
        gray(axs[0, j], digit if t == 0 else fwd[j - 1]); gray(axs[1, j], rev[j])
        axs[0, j].set_title(f't = {t}', fontsize=13)
    axs[0, 0].set_ylabel('q: data', fontsize=13); axs[1, 0].set_ylabel(r'$p_\theta$: model', fontsize=13)
    facts['slides']['idea'] = dict(label=label, seconds=round(ws['seconds'], 1))
    return ssave(fig, 'slide_idea')


def sfig_progressive(facts):
    "Slide 18: the network's guess x0_hat along the workshop model's ancestral chain (progressive decoding)."
    ws = workshop_states()
    idx = [999, 900, 800, 700, 600, 500, 400, 300, 200, 100, 50, 0]          # code index the step is taken from
    st = {s['t']: s for s in ws['states']}
    rows = (2, 8)
    fig, axs = slide('slide_progressive', 10, 1.85, facts, len(rows), len(idx))
    for r, c in enumerate(rows):
        for j, i in enumerate(idx):
            gray(axs[r, j], st[i]['x0_hat'][c])
            if r == 0: axs[r, j].set_title(f't = {i + 1}', fontsize=13)
    return ssave(fig, 'slide_progressive')


def sfig_ddim(facts):
    "Slide 21: the workshop model, same seed, ancestral over 1000 steps and DDIM over 50, 20, 10 (no guidance)."
    ws = workshop_states()
    model, diffusion, p = ws['model'], ws['diffusion'], ws['preset']
    rows = [('ancestral, 1000 steps', ws['states'][-1]['x'])]         # the slide's caption says: no guidance
    for k in (50, 20, 10):
        x = diffusion.sample(model, (10, p.channels, p.image_size, p.image_size), torch.arange(10), sampler='ddim', steps=k,
                             generator=torch.Generator().manual_seed(0))
        rows.append((f'DDIM, {k} steps', x))
    card_row = {'ancestral, 1000 steps': 'ancestral 1000 steps, guidance 0'} | {f'DDIM, {k} steps': f'DDIM {k}, guidance 0'
                                                                           for k in (50, 20, 10)}   # record_workshop's rows
    secs = json.loads((RES / 'workshop' / 'card.json').read_text())['renders']['sampler_comparison']['seconds']
    fig, axs = slide('slide_ddim', 5.4, 2.95, facts, len(rows), 1)
    for ax, (name, x) in zip(axs, rows):
        gray(ax, image_grid(x, 10)[..., 0] / 127.5 - 1)
        ax.set_title(f"{name}: {secs[card_row[name]]:.1f} s for 10 (recorded)", fontsize=13, loc='left')
    return ssave(fig, 'slide_ddim')


def sfig_dsm(facts):
    "Slide 4: denoising score matching in 1-D: the regression targets scatter around the exact score of q_sigma."
    g, sigma = torch.Generator().manual_seed(0), 0.3
    m = mix1d()
    q = GaussianMixture(m.means, covs=m.covs + sigma ** 2, weights=m.weights)       # p convolved with N(0, sigma^2)
    x, _ = m.sample(3000, g)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    xt, target = x + sigma * z, -z / sigma                                          # -(x~ - x) / sigma^2
    grid = torch.linspace(-1.6, 1.6, 400, dtype=torch.float64)[:, None].requires_grad_()
    lq = q.log_prob(grid)
    score, = torch.autograd.grad(lq.sum(), grid)
    fig, axs = slide('slide_dsm', 10, 1.6, facts, 1, 2)
    gx = grid.detach()[:, 0]
    axs[0].plot(gx, m.log_prob(grid.detach()).exp(), label='data $p(x)$')
    axs[0].plot(gx, lq.detach().exp(), label=rf'noised $q_\sigma$, $\sigma$ = {sigma:g}')
    axs[0].set(xlabel='x', ylabel='density', ylim=(0, 2.9)); axs[0].legend(frameon=False, loc='upper left', ncol=2)
    axs[1].scatter(xt[:, 0], target[:, 0], s=2, alpha=0.25, color='C1', label=r'targets $-(\tilde x - x)/\sigma^2$')
    bins = torch.linspace(-1.4, 1.4, 29)
    k = torch.bucketize(xt[:, 0], bins)
    mids = [(bins[i - 1] + bins[i]) / 2 for i in range(1, len(bins)) if (k == i).sum() > 20]
    means = [target[k == i, 0].mean() for i in range(1, len(bins)) if (k == i).sum() > 20]
    axs[1].plot(mids, means, 'o', color='k', ms=5, label='their mean per bin')
    axs[1].plot(gx, score[:, 0], color='C0', label=r'exact score $\nabla \log q_\sigma$')
    axs[1].set(xlabel=r'$\tilde x$', ylim=(-12, 12), xlim=(-1.6, 1.6))
    axs[1].legend(fontsize=11.5, loc='upper right', framealpha=0.95)        # the upper right holds no points
    return ssave(fig, 'slide_dsm')


def langevin_runs(snapshots=()):
    "The Langevin experiment of fig_langevin (same seeds, same order of draws); states after the levels in `snapshots`."
    g = torch.Generator().manual_seed(0)
    mus, w = torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), torch.tensor([0.8, 0.2])
    sigmas = torch.logspace(0, -2, 10)                     # 1.0 -> 0.01, geometric as in NCSN
    snaps = {}
    def langevin(x, levels, n=100, eps=2e-5):
        for i, s in enumerate(levels):
            a = eps * (s / levels[-1]) ** 2                   # step size proportional to sigma^2 (NCSN, Alg. 1)
            for _ in range(n): x = x + a / 2 * mixture_score(x, s, mus, w) + a.sqrt() * torch.randn(x.shape, generator=g)
            if len(levels) > 1 and i in snapshots: snaps[i] = (float(s), x)
        return x
    x0 = torch.rand(1000, 2, generator=g) * 8 - 4
    plain, annealed = langevin(x0, sigmas[-1:], n=1000, eps=1e-3), langevin(x0, sigmas)
    return dict(mus=mus, w=w, plain=plain, annealed=annealed, snaps=snaps, sigmas=sigmas)


def sfig_langevin(facts):
    "Slides 5 and 6: plain vs annealed Langevin with exact scores; the annealed run after some of its levels."
    r = langevin_runs(snapshots=(0, 3, 6, 9))
    mus, w = r['mus'], r['w']
    mix = GaussianMixture(mus.double(), std=0.1, weights=w.double())
    fig, axs = slide('slide_langevin', 6.3, 2.9, facts, 1, 3, sharex=True, sharey=True)
    g = torch.stack(torch.meshgrid(torch.linspace(-3, 3, 13), torch.linspace(-3, 3, 13), indexing='xy'), -1).reshape(-1, 2)
    sc = mixture_score(g, 0.01, mus, w)
    sc = sc / sc.norm(dim=1, keepdim=True).clamp(min=1e-8)
    axs[0].quiver(*g.T, *sc.T, color='gray', scale=18); axs[0].set_title('score directions', fontsize=13)
    for ax, x, name in [(axs[1], r['plain'], 'plain'), (axs[2], r['annealed'], 'annealed')]:
        ax.scatter(*x.T, s=2); ax.set_title(name, fontsize=13)
        ax.set_xlabel(f"{(x.sum(1) < 0).float().mean():.0%} in the\n80% mode", fontsize=13)
    for ax in axs: ax.set_aspect('equal'); ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[-2, 0, 2], yticks=[-2, 0, 2])
    out = [ssave(fig, 'slide_langevin')]
    fig, axs = slide('slide_ncsn', 8, 1.75, facts, 1, 4)
    for ax, (i, (s, x)) in zip(axs, sorted(r['snaps'].items())):
        density_image(ax, mix, extent=2.2, add_var=s ** 2)
        ax.scatter(*x.T, s=1.5, color='C1')
        ax.set_title(rf'level {i + 1}: $\sigma$ = {s:.2g}', fontsize=13); ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2))
    return [*out, ssave(fig, 'slide_ncsn')]


def sfig_chain(facts):
    "Slide 7: the forward chain turns 2-D data into a Gaussian; the reverse chain, with the exact eps*, turns it back."
    from ddpm_nb.analytic import AnalyticEps
    cos, mix, g = Schedule.from_name('cosine', 1000), ring(), torch.Generator().manual_seed(0)
    ts = [0, 50, 150, 300, 1000]                                                   # the paper's t
    fig, axs = slide('slide_chain', 5.8, 2.35, facts, 2, len(ts), sharex=True, sharey=True)
    for ax, t in zip(axs[0], ts):
        x = mix.sample(2000, g)[0] if t == 0 else mix.marginal(cos.alpha_bar[t - 1]).sample(2000, g)[0]
        ax.scatter(*x.T, s=1, color='C0'); ax.set_title(f't = {t}', fontsize=13)
    x_T = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    states = {s['t']: s['x'] for s in Diffusion(cos).sample_steps(AnalyticEps(mix, cos, conditional=False), x_T.shape, x_T=x_T,
                                                                   generator=g, clip_x0=False)}
    for ax, t in zip(axs[1], ts):
        ax.scatter(*(x_T if t == 1000 else states[t]).T, s=1, color='C1')
    for ax in axs.flat: ax.set_aspect('equal'); ax.set(xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), xticks=[], yticks=[])
    axs[0, 0].set_ylabel('forward q →', fontsize=13); axs[1, 0].set_ylabel(r'← reverse $p$', fontsize=13)
    return ssave(fig, 'slide_chain')


def density_over_t(ax, schedule, mix, n=300, lim=2.6):
    "q(x_t) of 1-D mixture data for every t (Eq. 4 per component) as an image: t across, x up."
    xs = torch.linspace(-lim, lim, n, dtype=torch.float64)[:, None]
    cols = [mix.log_prob(xs)] + [mix.marginal(schedule.alpha_bar[t]).log_prob(xs) for t in range(0, schedule.T, 4)]
    lp = torch.stack(cols, 1)
    ax.imshow(lp.exp().clamp(max=2).sqrt(), extent=(0, schedule.T, -lim, lim), origin='lower', aspect='auto', cmap='Blues')
    ax.set(xlabel='t', ylabel='$x_t$')


def sfig_forward_density(facts):
    "Slide 8: q(x_t) in closed form for 1-D data, with paths that walk the chain one step at a time; one jump vs walking."
    lin, mix, g = schedule_of('linear'), mix1d(), torch.Generator().manual_seed(0)
    fig, axs = slide('slide_forward_density', 10, 1.85, facts, 1, 2, width_ratios=(1.7, 1))
    density_over_t(axs[0], lin, mix)
    n, t_show = 20_000, 300
    x = mix.sample(n, g)[0][:, 0]
    path, walked = [x[:6].clone()], None
    for t in range(lin.T):
        x = (1 - lin.betas[t]).sqrt() * x + lin.betas[t].sqrt() * torch.randn(n, generator=g, dtype=torch.float64)
        path.append(x[:6].clone())
        if t == t_show - 1: walked = x.clone()
    axs[0].plot(torch.arange(lin.T + 1), torch.stack(path), color='k', lw=0.8)
    axs[0].axvline(t_show, color='C3', ls='--', lw=1.2)
    jump = q_sample(lin, mix.sample(n, g)[0], torch.full((n,), t_show - 1), generator=g)[:, 0]
    xs = torch.linspace(-2.2, 2.2, 300, dtype=torch.float64)
    axs[1].hist(walked, bins=80, density=True, alpha=0.5, label='walking 300 steps')
    axs[1].hist(jump, bins=80, density=True, alpha=0.5, label='one jump (Eq. 4)')
    axs[1].plot(xs, mix.marginal(lin.alpha_bar[t_show - 1]).log_prob(xs[:, None]).exp(), 'k', lw=1.5, label='exact $q(x_t)$')
    axs[1].set(title=f't = {t_show}, {n:,} draws each', xlabel='$x_t$', ylim=(0, 0.75))
    axs[1].legend(frameon=False, fontsize=11.5, loc='upper left')
    return ssave(fig, 'slide_forward_density')


def sfig_schedule_plots(facts):
    "Slides 9, 10, 14: the schedules, the two fixed reverse variances, Eq. 12's weight: the book's plots at slide size."
    fig, axs = slide('slide_schedules', 9, 2.75, facts, 1, 2)
    u = torch.arange(1, 1001) / 1000
    for name in SCHEDULES:
        s = schedule_of(name)
        axs[0].plot(u, s.alpha_bar, label=name); axs[1].plot(u, s.log_snr, label=name)
    axs[0].set(xlabel='t / T', title=r'signal kept, $\bar\alpha_t$'); axs[0].legend(frameon=False)
    axs[1].set(xlabel='t / T', title=r'$\log \mathrm{SNR}(t) = \log\,\bar\alpha_t/(1-\bar\alpha_t)$')
    out = [ssave(fig, 'slide_schedules')]
    fig, ax = slide('slide_posterior_std', 4.6, 3.3, facts)
    for k, name in enumerate(('linear', 'cosine')):
        s = schedule_of(name)
        ax.plot(torch.arange(1, 1001), s.beta_tilde.sqrt(), color=f'C{k}', label=rf'{name} $\sqrt{{\tilde\beta_t}}$')
        ax.plot(torch.arange(1, 1001), s.betas.sqrt(), '--', color=f'C{k}', label=rf'{name} $\sqrt{{\beta_t}}$')
    ax.set(xscale='log', yscale='log', xlabel='t (log scale)', title='reverse-step std')
    ax.legend(frameon=False, fontsize=11.5)
    out.append(ssave(fig, 'slide_posterior_std'))
    fig, ax = slide('slide_eq12_weight', 4.8, 3.2, facts)
    for name in SCHEDULES: ax.plot(torch.arange(1, 1001), mse_weight(schedule_of(name), 'eps', 'fixed_small'), label=name)
    ax.axhline(1, color='k', lw=1, ls=':', label=r'$L_\mathrm{simple}$: 1')
    ax.set(yscale='log', xlabel='t', title=r'weight on $\|\epsilon-\epsilon_\theta\|^2$ (Eq. 12)')
    ax.legend(frameon=False, ncol=2)
    out.append(ssave(fig, 'slide_eq12_weight'))
    return out


def discrete_1d():
    "1-D 8-bit data on 8 levels with unequal probabilities (chapter 5b's `discrete_data`): its exact NLL is known."
    return torch.tensor([0., 40, 80, 120, 150, 190, 230, 255]), torch.tensor([1., 2, 4, 6, 5, 3, 2, 1])


def sfig_terms(facts):
    "Slides 11 and 26: the bound's terms for the exact eps* on 1-D 8-bit data (quadrature); MMSE against log SNR."
    from ddpm_nb.analytic import expected_bound_bpd, exact_discrete_nll_bpd
    levels, probs = discrete_1d()
    nll = exact_discrete_nll_bpd(probs)
    res = {name: expected_bound_bpd(levels, probs, schedule_of(name)) for name in SCHEDULES}
    fig, ax = slide('slide_terms', 10, 1.95, facts)
    for name in ('linear', 'cosine'):
        r = res[name]
        ax.plot(torch.arange(2, 1001), r['kl'], label=f"{name}: total {r['total']:.3f},\ndecoder {r['decoder']:.2f}, prior {r['prior']:.0e}")
    ax.set(yscale='log', xscale='log', xlabel='t (log scale)', ylabel='bits', ylim=(1e-6, None),
           title=f'$L_{{t-1}}$ of the exact $\\epsilon^*$ (bits); true NLL {nll:.3f} bits')
    ax.legend(frameon=False, loc='upper left', bbox_to_anchor=(1.0, 1.05), fontsize=11.5)
    facts['slides']['terms'] = dict(nll=nll, **{n: dict(total=r['total'], prior=r['prior'], decoder=r['decoder'])
                                                for n, r in res.items()})
    out = [ssave(fig, 'slide_terms')]
    fig, ax = slide('slide_vdm', 5.2, 3.0, facts)
    for k, name in enumerate(SCHEDULES):
        s, r = schedule_of(name), res[name]
        snr_prev = s.alpha_bar_prev / (1 - s.alpha_bar_prev)
        mmse = 2 * math.log(2) * r['kl'] / (snr_prev[1:] - s.snr[1:])         # VDM Eq. 13 solved for the MMSE
        ax.plot(s.log_snr[1:], mmse, color=f'C{k}', lw=[5, 3, 1.5][k], alpha=0.8, label=f"{name}: {r['total']:.3f} bits")
        ax.plot(s.log_snr[1::100], mmse[::100], 'o', color=f'C{k}', ms=5)
    ax.set(yscale='log', xlabel=r'$\log \mathrm{SNR}$', ylabel=r'MMSE of $\hat x_0$', xlim=(-12, 12), ylim=(1e-5, 1))
    ax.legend(frameon=False, title='schedule: its bound', fontsize=11.5)
    return [*out, ssave(fig, 'slide_vdm')]


def sfig_elbo_terms(facts):
    "Slide 12: each term of the bound, computed exactly: L_T per pixel, one KL of two Gaussians, the decoder's bins."
    from ddpm_nb.elbo import prior_bpd, normal_kl, discretized_gaussian_log_likelihood
    from ddpm_nb.forward import q_posterior
    fig, axs = slide('slide_elbo_terms', 10, 1.45, facts, ncols=3, width_ratios=(1, 1, 1.15))
    x0 = torch.linspace(0.02, 1, 50, dtype=torch.float64)[:, None]
    prior = {}
    for k, name in enumerate(SCHEDULES):            # L_T: no parameters, the schedule alone sets it
        s = schedule_of(name)
        axs[0].plot(x0[:, 0], prior_bpd(s, x0), color=f'C{k}')
        axs[0].plot(x0[:, 0], 0.5 * s.alpha_bar[-1] * x0[:, 0] ** 2 / math.log(2), ':', color='k', lw=1.2)
        prior[name] = prior_bpd(s, torch.ones(1, 1, dtype=torch.float64)).item()
        axs[0].text(1.03, prior[name], name, color=f'C{k}', fontsize=11.5, va='center')
    axs[0].spines['bottom'].set_bounds(0, 1)
    axs[0].set(yscale='log', xlabel='$|x_0|$', ylabel='$L_T$ (bits)', ylim=(1e-12, 1e-3), xlim=(0, 1.5),
               xticks=[0, 0.5, 1], yticks=[1e-12, 1e-9, 1e-6, 1e-3], title=r'$L_T$; dotted: $\frac{1}{2}\bar\alpha_T x_0^2 / \ln 2$')
    s, t, x_0, x_hat = schedule_of('linear'), torch.tensor([9]), torch.tensor([[0.5]], dtype=torch.float64), 0.3
    xt = s.sqrt_alpha_bar[9] * x_0                     # the noise-free x_t; code index 9 is the paper's t = 10
    m_q, _, lv_q = q_posterior(s, x_0, xt, t)
    m_p, lv_p = q_posterior(s, torch.full_like(x_0, x_hat), xt, t)[0], torch.log(s.betas[9])
    kl = normal_kl(m_q, lv_q, m_p, lv_p).item() / math.log(2)
    grid = torch.linspace(m_p.item() - 0.06, m_q.item() + 0.06, 400, dtype=torch.float64)
    for m, lv, c, lab in ((m_q, lv_q, 'C0', '$q(x_{t-1}|x_t,x_0)$'), (m_p, lv_p, 'C3', r'$p_\theta(x_{t-1}|x_t)$')):
        var = math.exp(float(lv))
        dens = torch.exp(-0.5 * (grid - m.item()) ** 2 / var) / math.sqrt(2 * math.pi * var)
        axs[1].fill_between(grid, dens, color=c, alpha=0.3, lw=0); axs[1].plot(grid, dens, color=c, label=lab)
    axs[1].set_ylim(0, 1.9 * axs[1].get_ylim()[1])            # room for the legend above the curves
    axs[1].set(xlabel='$x_{t-1}$', yticks=[], title=f'$L_{{t-1}}$ at t = 10: {kl:.2f} bits')
    axs[1].legend(frameon=False, fontsize=11, loc='upper left', bbox_to_anchor=(-0.02, 1.06), handlelength=1, ncol=2,
                  columnspacing=0.8)
    sigma_px = 127.5 * math.exp(0.5 * s.log_beta_tilde_clipped[0].item())   # the decoder's sigma_1, in pixel levels
    mu_px, levels = 254.2, torch.arange(256, dtype=torch.float64)
    mass = discretized_gaussian_log_likelihood((levels / 127.5 - 1)[:, None], torch.full((256, 1), mu_px / 127.5 - 1,
                                               dtype=torch.float64), math.log(sigma_px / 127.5)).exp()[:, 0]
    v = torch.linspace(250.5, 258, 600, dtype=torch.float64)
    dens = torch.exp(-0.5 * ((v - mu_px) / sigma_px) ** 2) / (sigma_px * math.sqrt(2 * math.pi))
    for k in range(251, 256):                        # each level's bin [k - 1/2, k + 1/2]; level 255's runs to +inf
        inside = (v >= k - 0.5) & ((v < k + 0.5) | (k == 255))
        color = 'C2' if k == 255 else ('C0' if k % 2 else 'C9')
        axs[2].fill_between(v[inside], dens[inside], color=color, alpha=0.45, lw=0)
        axs[2].bar(k, mass[k], width=0.9, fill=False, edgecolor='k', lw=1.2)
        axs[2].text(k, mass[k] + 0.04, f'{mass[k]:.2f}', ha='center', fontsize=10.5)
    axs[2].plot(v, dens, color='k', lw=1)
    axs[2].annotate(r'$\to +\infty$', (257.2, 0.03), fontsize=12, color='C2')
    axs[2].set(xlabel='pixel level', xticks=range(251, 256), xlim=(250.5, 258), ylim=(0, 0.72), yticks=[0, 0.5],
               title=rf'$L_0$: bins of N($\mu$ = {mu_px}, $\sigma_1$ = {sigma_px:.2f})')
    facts['slides']['elbo_terms'] = dict(prior_x0_1=prior, kl_t=10, kl_bits=kl, x0=0.5, x0_hat=x_hat, mu_px=mu_px,
                                         sigma1_px=sigma_px, p_edge=mass[255].item(), mass_sum=mass.sum().item())
    assert abs(mass.sum().item() - 1) < 1e-9, 'the 256 bins of the decoder must hold all the mass'
    return ssave(fig, 'slide_elbo_terms')


def sfig_weights(facts):
    "Slide 13: what predicting eps, v or x0 does to the loss, written as a weight on ||x0_hat - x0||^2 per t."
    from ddpm_nb.analytic import x0_loss_weights
    wts = x0_loss_weights(schedule_of('cosine'))
    fig, ax = slide('slide_weights', 10, 1.6, facts)
    names = {'bound': 'the bound (VDM Eq. 13)', 'eps': r'$\epsilon$-loss: SNR', 'v': '$v$-loss: SNR + 1',
             'x0': '$x_0$-loss: 1', 'min-SNR-5': 'min-SNR-5'}
    for k, (key, lab) in enumerate(names.items()): ax.plot(torch.arange(1, 1001), wts[key], label=lab, ls='-' if k < 4 else '--')
    ax.set(yscale='log', xlabel='t (cosine schedule, T = 1000)', title=r'weight on $\|\hat x_0 - x_0\|^2$', ylim=(1e-6, 1e6))
    ax.legend(frameon=False, loc='upper left', bbox_to_anchor=(1.0, 1.05))
    return ssave(fig, 'slide_weights')


def sfig_score_field(facts):
    "Slide 15: the exact score of q(x_t) = -eps*/sqrt(1 - alpha_bar) for ring data, coarse at large t, sharp at small t."
    from ddpm_nb.analytic import AnalyticEps
    cos, mix = Schedule.from_name('cosine', 1000), ring()
    e = AnalyticEps(mix, cos, conditional=False)
    g = torch.linspace(-1.8, 1.8, 17, dtype=torch.float64)
    xy = torch.stack(torch.meshgrid(g, g, indexing='xy'), -1).reshape(-1, 2)
    fig, axs = slide('slide_score_field', 10, 2.15, facts, 1, 4)
    for ax, t in zip(axs, (800, 400, 150, 30)):
        density_image(ax, mix, extent=1.9, alpha_bar=float(cos.alpha_bar[t - 1]))
        s = e.score(xy, torch.full((len(xy),), t - 1))
        s = s / s.norm(dim=1, keepdim=True).clamp(min=1e-9)
        ax.quiver(*xy.T, *s.T, color='C3', scale=22, width=0.006)
        ax.set_title(f't = {t}', fontsize=13)
    return ssave(fig, 'slide_score_field')


def plain_log_ticks(ax):
    "Major ticks of a log y axis as plain numbers, no labels on the minor ones."
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}')); ax.yaxis.set_minor_formatter(NullFormatter())


def log_of(run):
    import csv
    rows = list(csv.DictReader((RES / run / 'log.csv').open()))
    return {k: torch.tensor([float(r[k]) for r in rows]) for k in ('step', 'loss', 'elapsed_s')}


def sfig_logs(facts):
    "Slides 16 and 30: training losses of the recorded runs (their log.csv), against steps and against wall time."
    fig, ax = slide('slide_loss', 10, 1.95, facts)
    for run, lab in [('demo', 'demo (digits 8×8, ε-loss)'), ('workshop', 'workshop (MNIST 28×28, v-loss)'),
                     ('cifar10-cpu', 'cifar10-cpu (CIFAR-10 32×32, v-loss)')]:
        L = log_of(run)
        ax.plot(L['step'], L['loss'], label=lab)
    ax.set(yscale='log', xscale='log', xlabel='training step (Algorithm 1)', ylabel='loss', ylim=(0.02, 3))
    plain_log_ticks(ax)
    ax.legend(frameon=False, loc='upper right', ncol=2)
    out = [ssave(fig, 'slide_loss')]
    fig, ax = slide('slide_patches', 4.9, 1.85, facts)
    for run, lab in [('patches/workshop_p1', 'no patches'), ('patches/workshop_p2', '2×2 patches')]:
        L = log_of(run)
        ax.plot(L['elapsed_s'] / 60, L['loss'], label=f"{lab}: {int(L['step'][-1]):,} steps")
    ax.set(yscale='log', xlabel='training minutes', ylabel='loss'); plain_log_ticks(ax); ax.legend(frameon=False)
    return [*out, ssave(fig, 'slide_patches')]


def sfig_bits(facts):
    "Slide 17: fig_bits' measurement at slide size, the rate on a log axis so that the steep part of the curve shows."
    runs = bits_runs()
    fig, axs = slide('slide_bits', 10, 2.75, facts, 1, 2)
    for name, r in runs.items():
        axs[0].plot(torch.arange(1, 1001), r['vb'].mean(0).clamp(min=1e-7), label=f"{name}: {r['total_bpd'].mean():.2f} bits/dim")
    axs[0].set(xscale='log', yscale='log', xlabel='t (log scale)', ylabel='$L_{t-1}$ (bits/dim)', title='per-timestep terms')
    axs[0].legend(frameon=False, fontsize=11.5, loc='upper right')
    rate, rmse = rate_distortion(runs['noisy oracle (error 0.1)'])
    k = int((rmse > 0.1 * rmse[-1]).nonzero().min())                        # lowest code t whose error is still > 10% of x_T's
    facts['slides']['bits'] = dict(rate_at_10pct=float(rate[k]), t_at_10pct=k + 1, rmse_T=float(rmse[-1]))
    axs[1].plot(rate, rmse, '-', color='C1')
    for t in (1000, 600, 300, 1):
        axs[1].plot(rate[t - 1], rmse[t - 1], 'o', color='k', ms=4)
        axs[1].annotate(f't={t}', (rate[t - 1], rmse[t - 1]), textcoords='offset points', xytext=(4, 4), fontsize=11.5)
    axs[1].set(xscale='log', xlabel='rate: bits/dim sent so far (log)', ylabel=r'RMSE of $\hat x_0$ (0..255)',
               title='rate–distortion, noisy oracle')
    return ssave(fig, 'slide_bits')


def sfig_unet(facts):
    "Slide 19: parameters per part of the book's presets (the cifar10 preset with its 10-class embedding)."
    presets = ('digits', 'mnist', 'cifar10')
    fig, ax = slide('slide_unet', 5.6, 3.2, facts)
    bar_parts(ax, presets, fontsize=12.5)
    ax.set(yticks=range(3), yticklabels=['digits', 'mnist', 'cifar10\n+ classes'], xscale='log', xlim=(0.1, 300),
           xlabel='parameters (millions, log)')
    ax.legend(ncol=2, loc='lower center', bbox_to_anchor=(0.45, 1.0), frameon=False, fontsize=12)
    return ssave(fig, 'slide_unet')


def sfig_variances(facts):
    "Slide 20: the range learned variances interpolate over, for all 1000 steps and for a 50-step subsequence."
    from ddpm_nb.diffusion import spaced_timesteps
    cos = Schedule.from_name('cosine', 1000)
    d50 = Diffusion(cos).respace(spaced_timesteps(1000, 50))
    fig, ax = slide('slide_variances', 10, 1.8, facts)
    t = torch.arange(1, 1001)
    ax.fill_between(t, cos.beta_tilde, cos.betas, color='C0', alpha=0.25)
    ax.plot(t, cos.betas, color='C0', label=r'$\beta_t$, 1000 steps'); ax.plot(t, cos.beta_tilde, '--', color='C0', label=r'$\tilde\beta_t$')
    t50 = d50.timestep_map + 1
    s50 = d50.schedule
    ax.fill_between(t50, s50.beta_tilde, s50.betas, color='C1', alpha=0.25)
    ax.plot(t50, s50.betas, 'o-', color='C1', ms=3, label=r"$\beta'_i$, 50 strided steps")
    ax.plot(t50, s50.beta_tilde, 'o--', color='C1', ms=3, label=r"$\tilde\beta'_i$")
    ax.set(yscale='log', xlabel='t (cosine schedule)', ylabel='variance', ylim=(1e-6, 1.5))
    ax.legend(frameon=False, ncol=2, loc='lower right')
    return ssave(fig, 'slide_variances')


def cluster_stats(x, y, mix):
    "Per class: share whose most likely component is its own, and sample std / data std along each arc and across it."
    from ddpm_nb.analytic import responsibilities
    lw = mix.weights.log().expand(len(x), mix.K)
    r, _ = responsibilities(x.double(), mix.means, torch.linalg.inv(mix.covs).expand(len(x), -1, -1, -1),
                            torch.linalg.slogdet(mix.covs)[1].expand(len(x), -1), lw)
    right = (r.argmax(1) == y).double().mean().item()
    a = y.double() * math.pi / 2
    u, v = torch.stack([a.cos(), a.sin()], 1), torch.stack([-a.sin(), a.cos()], 1)
    d = x.double() - mix.means[y]
    tang = torch.stack([(d * v)[y == k].sum(1).std() for k in range(mix.K)]).mean().item() / 0.25
    rad = torch.stack([(d * u)[y == k].sum(1).std() for k in range(mix.K)]).mean().item() / 0.05
    return dict(right=right, along=tang, across=rad)


def sfig_toy_exact(facts):
    "Slides 22-24: samplers, classifier guidance and classifier-free guidance on 2-D data with the exact eps*."
    from ddpm_nb.analytic import AnalyticEps, exact_classifier
    cos, mix = Schedule.from_name('cosine', 1000), arcs4()
    e, diff, n = AnalyticEps(mix, cos), Diffusion(cos), 1000
    y = torch.arange(4).repeat_interleave(n // 4)
    def run(model=e, yy=y, seed=1, **kw):
        g = torch.Generator().manual_seed(seed)
        x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)
        return diff.sample(model, (n, 2), yy, x_T=x_T, generator=g, clip_x0=False, **kw)
    def scatter(ax, x, c=None, title=''):
        ax.scatter(*x.T, **(dict(c=y, cmap='tab10', vmin=0, vmax=9) if c is None else dict(c=c)), s=1.5)
        ax.set_aspect('equal'); ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), xticks=[], yticks=[]); ax.set_title(title, fontsize=13)
    S = facts['slides']['toy'] = dict(samplers={}, classifier={}, cfg={})
    runs = {'ancestral 1000': dict(sampler='ancestral'), 'DDIM 20': dict(sampler='ddim', steps=20),
            'ancestral 20': dict(sampler='ancestral', steps=20), 'DDIM 5': dict(sampler='ddim', steps=5),
            'ancestral 5': dict(sampler='ancestral', steps=5)}
    fig, axs = slide('slide_toy_samplers', 10, 2.6, facts, 1, 6)
    scatter(axs[0], mix.sample(n, torch.Generator().manual_seed(0), y=y)[0], title='data')
    for ax, (name, kw) in zip(axs[1:], runs.items()):
        x = run(**kw)
        st = S['samplers'][name] = cluster_stats(x, y, mix)
        scatter(ax, x, title=name)
        ax.set_xlabel(f"along ×{st['along']:.2f}\nacross ×{st['across']:.2f}", fontsize=12.5)
    out = [ssave(fig, 'slide_toy_samplers')]

    class ClassifierGuided:
        "eps*(x_t) - s sqrt(1 - alpha_bar_t) grad log q(y | x_t), the exact classifier (Dhariwal & Nichol's Alg. 1)."
        num_classes = null_class = mix.K
        def __init__(self, s): self.s = s
        def __call__(self, x, t, yy):
            with torch.enable_grad():
                xg = x.detach().double().requires_grad_()
                lp = exact_classifier(e, xg, t).clamp(min=1e-300).log().gather(1, yy[:, None]).sum()
                grad, = torch.autograd.grad(lp, xg)
            null = torch.full_like(yy, mix.K)
            return e(x, t, null) - self.s * (1 - cos.alpha_bar[t])[:, None].sqrt() * grad
    fig, axs = slide('slide_toy_classifier', 10, 2.6, facts, 1, 4)
    for ax, s in zip(axs, (0.0, 1.0, 3.0, 10.0)):
        x = run(ClassifierGuided(s), sampler='ddim', steps=50, seed=2)
        st = S['classifier'][f'{s:g}'] = cluster_stats(x, y, mix)
        scatter(ax, x, title=f's = {s:g}' + (': unconditional' if s == 0 else ''))
        ax.set_xlabel(f"own class {st['right']:.0%}" + ('\n(chance: 25%)' if s == 0 else f"\nalong ×{st['along']:.2f}"),
                      fontsize=12.5)
    out.append(ssave(fig, 'slide_toy_classifier'))
    fig, axs = slide('slide_toy_cfg', 10, 2.6, facts, 1, 4)
    for ax, w in zip(axs, (0.0, 1.0, 3.0, None)):
        if w is None:
            x = run(yy=torch.full_like(y, mix.K), sampler='ddim', steps=20, seed=2)
            scatter(ax, x, c='gray', title='null class'); ax.set_xlabel('the whole mixture', fontsize=12.5)
            continue
        x = run(sampler='ddim', steps=20, guidance=w, seed=2)
        st = S['cfg'][f'{w:g}'] = cluster_stats(x, y, mix)
        scatter(ax, x, title=f'w = {w:g}')
        ax.set_xlabel(f"along ×{st['along']:.2f}\nacross ×{st['across']:.2f}", fontsize=12.5)
    return [*out, ssave(fig, 'slide_toy_cfg')]


def sfig_ode_sde(facts):
    "Slide 25: reverse-time paths from the same x_T: the SDE (ancestral steps) and the probability-flow ODE (DDIM, eta = 0)."
    from ddpm_nb.analytic import AnalyticEps
    lin, mix = schedule_of('linear'), mix1d()
    e, diff = AnalyticEps(mix, lin, conditional=False), Diffusion(lin)
    x_T = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    fig, axs = slide('slide_ode_sde', 10, 1.65, facts, 1, 2, sharey=True)
    for ax, sampler, name in [(axs[0], 'ancestral', 'reverse SDE (ancestral steps)'),
                              (axs[1], 'ddim', r'probability-flow ODE (DDIM, $\eta$ = 0)')]:
        density_over_t(ax, lin, mix)
        st = list(diff.sample_steps(e, x_T.shape, x_T=x_T, sampler=sampler, generator=torch.Generator().manual_seed(0),
                                    clip_x0=False))
        path = torch.stack([x_T[:, 0]] + [s['x'][:, 0] for s in st])           # t = 1000 .. 0
        ax.plot(torch.arange(1000, -1, -1), path, color='k', lw=1)
        ax.set_title(name, fontsize=13)
    axs[1].set_ylabel('')
    return ssave(fig, 'slide_ode_sde')


def sfig_audio(facts):
    "Slide 27: a 1-D signal under the same forward process (a synthetic chirp, not speech)."
    cos = Schedule.from_name('cosine', 1000)
    tau = torch.linspace(0, 1, 1600, dtype=torch.float64)
    x0 = 0.7 * torch.sin(2 * math.pi * (3 + 20 * tau) * tau) * torch.exp(-((tau - 0.5) / 0.3) ** 2)
    ts = [0, 100, 300, 600, 1000]
    seq = noise_sequence(cos, x0[None, None], [t - 1 for t in ts[1:]], generator=torch.Generator().manual_seed(0))
    fig, ax = slide('slide_audio', 10, 2.0, facts)
    for k, (t, x) in enumerate(zip(ts, [x0] + [s.flatten() for s in seq])):
        ax.plot(tau + 1.08 * k, x, lw=0.8, color=f'C{k}'); ax.text(1.08 * k + 0.5, 3.9, f't = {t}', ha='center', fontsize=13)
    ax.set_axis_off(); ax.set(ylim=(-3.8, 4.6))
    return ssave(fig, 'slide_audio')


SLIDE_FIGS = (sfig_idea, sfig_progressive, sfig_ddim, sfig_dsm, sfig_langevin, sfig_chain, sfig_forward_density,
              sfig_schedule_plots, sfig_bits, sfig_terms, sfig_elbo_terms, sfig_weights, sfig_score_field, sfig_logs,
              sfig_unet, sfig_variances, sfig_toy_exact, sfig_ode_sde, sfig_audio)


def flatten(d, prefix=''):
    "A nested JSON object as dotted keys -> short strings (lists of numbers summarised by their length)."
    out = {}
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict): out.update(flatten(v, key + '.'))
        elif isinstance(v, list): out[key] = f'[{len(v)} values]'
        elif isinstance(v, float): out[key] = f'{v:.4g}'
        else: out[key] = str(v)
    return out


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description='Remake the figures and facts.json of the talk and the report.')
    ap.add_argument('--only', choices=('book', 'slides'), help="only the book's figures (report and talk) or only the "
                    "talk's own slide_*.png (keeping the rest of facts.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1); torch.manual_seed(0)   # tiny models: threads only add contention
    FIG.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    facts = dict(alpha_bar_T={}, params={}, langevin={}, run_samples=[], runs=[], slide_fig={}, slides={})
    if args.only == 'slides':
        facts = {**json.loads((FIG / 'facts.json').read_text()), 'slide_fig': {}, 'slides': {}}
    files = []
    if args.only != 'slides':
        digit = load_digits(image_size=16).images[3]          # one handwritten 8x8 digit, upsampled to 16x16, in [-1, 1]
        files += [fig_schedules(facts), fig_forward(digit), fig_posterior_std(), fig_eq12_weight(), fig_bits(facts),
                  fig_unet_params(facts), *fig_toy(facts), fig_langevin(facts)]
        runs_of(facts)
        recipe_machines(facts)
        classwise(facts)
        guidance_choice(facts)
        measured_speed(facts)
    if args.only != 'book':
        with plt.rc_context(SLIDE_RC):
            for f in SLIDE_FIGS:
                out = f(facts)
                files += out if isinstance(out, list) else [out]
        facts['slide_fig'] = dict(SLIDE_W)
    (FIG / 'facts.json').write_text(json.dumps(facts, indent=1, sort_keys=True) + '\n')
    print(f'wrote {len(files)} figures + facts.json to {FIG.relative_to(RES.parent)} in {time.time() - t0:.0f}s;',
          f"{len(facts['run_samples'])} recorded sample grids, {len(facts['runs'])} run cards")


if __name__ == '__main__':
    sys.exit(main())
