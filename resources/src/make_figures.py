"""Figures and measured numbers for the talk and the report, made by `ddpm_nb` itself.

Writes PNGs and `facts.json` into resources/src/figures/ (the Typst sources read both). Seeded and CPU-only;
about half a minute on two cores. Run from the repository root:  python resources/src/make_figures.py

Results of real training runs are picked up when they exist and never invented when they do not:
  resources/<run>/samples.png   sample grids of recorded runs (make record-demo, make record-workshop) -> figures/run_samples_<run>.png
  resources/<run>/card.json     their run cards (chapter 7's write_card) -> summarised in facts.json['runs']
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
from ddpm_nb.forward import noise_sequence, predict_eps_from_x0
from ddpm_nb.elbo import calc_bpd_loop, mse_weight
from ddpm_nb.unet import UNet, param_count, timestep_embedding, ResBlock, AttentionBlock
from ddpm_nb.testing import toy_data, ToyNet, Oracle   # the book's fixtures (chapter 5's toy problem)
from ddpm_nb.diffusion import Diffusion
from ddpm_nb.data import load_digits

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


def fig_bits(facts):
    import sklearn.datasets
    X = torch.tensor(sklearn.datasets.load_digits().images[:16], dtype=torch.float64)[:, None]
    x0 = torch.round(X / 16 * 255) / 255 * 2 - 1                     # 8-bit grid in [-1, 1], as in chapter 3
    lin, g = schedule_of('linear'), torch.Generator().manual_seed(0)
    kw = dict(prediction='eps', variance='fixed_small', batch_timesteps=100, progress=False, generator=g)
    runs = {'oracle': calc_bpd_loop(oracle(lin, x0), lin, x0, **kw),
            'noisy oracle (error 0.1)': calc_bpd_loop(oracle(lin, x0, 0.1, g), lin, x0, **kw)}
    fig, axs = plt.subplots(1, 2, figsize=(7.5, 2.6))
    for name, r in runs.items():
        axs[0].plot(r['vb'].mean(0).clamp(min=1e-7), label=f"{name}: {r['total_bpd'].mean():.2f} bits/dim")
    axs[0].set(xscale='symlog', yscale='log', xlabel='t (code index)', ylabel='$L_t$ (bits/dim)', title='per-timestep terms, linear T=1000')
    axs[0].legend()
    r = runs['noisy oracle (error 0.1)']
    rate = r['prior_bpd'].mean() + r['vb'].mean(0).flip(0).cumsum(0).flip(0)
    axs[1].plot(rate, r['x0_mse'].mean(0).sqrt() * 127.5, '.-', ms=2)
    axs[1].set(xlabel='rate (bits/dim sent so far)', ylabel=r'RMSE of $\hat x_0$ (0..255)', title='rate-distortion, noisy oracle')
    vb = r['vb'].mean(0)
    facts['bits'] = dict(oracle_bpd=float(runs['oracle']['total_bpd'].mean()), noisy_bpd=float(r['total_bpd'].mean()),
                         noisy_last10_share=float(vb[:10].sum() / vb.sum()), noisy_decoder_share=float(vb[0] / vb.sum()),
                         n_images=len(x0))
    return save(fig, 'bits_per_t')


# ---------------------------------------------------------------- chapter 4: the network
def fig_unet_params(facts):
    presets = ('digits', 'mnist', 'cifar10')
    kinds = {'residual blocks': ResBlock, 'attention': AttentionBlock}
    fig, ax = plt.subplots(figsize=(6, 1.9))
    for i, p in enumerate(presets):
        m = UNet.from_preset(p)
        parts = {k: sum(param_count(x) for x in m.modules() if isinstance(x, cls)) for k, cls in kinds.items()}
        parts['time embedding'] = param_count(m.time_embed)
        parts['other (convs, resampling)'] = param_count(m) - sum(parts.values())
        left = 0
        for k, (name, n) in enumerate(parts.items()):
            ax.barh(i, n / 1e6, left=left, color=f'C{k}', label=name if i == 0 else None); left += n / 1e6
        ax.text(left, i, f' {param_count(m) / 1e6:.2f}M', va='center', fontsize=8)
        facts['params'][p] = param_count(m)
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
    g = torch.Generator().manual_seed(0)
    mus, w = torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), torch.tensor([0.8, 0.2])
    sigmas = torch.logspace(0, -2, 10)                     # 1.0 -> 0.01, geometric as in NCSN
    def langevin(x, levels, n=100, eps=2e-5):
        for s in levels:
            a = eps * (s / levels[-1]) ** 2                   # step size proportional to sigma^2 (NCSN, Alg. 1)
            for _ in range(n): x = x + a / 2 * mixture_score(x, s, mus, w) + a.sqrt() * torch.randn(x.shape, generator=g)
        return x
    x0 = torch.rand(1000, 2, generator=g) * 8 - 4
    # plain: 1000 steps at the smallest noise level, with a step (1e-3) large enough to settle into a mode
    plain, annealed = langevin(x0, sigmas[-1:], n=1000, eps=1e-3), langevin(x0, sigmas)
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
    steps, w = get('--steps', p.get('sample_steps')), float(get('--guidance', p.get('guidance') or 0))
    return (f"{'DDIM' if sampler == 'ddim' else sampler} {steps} steps, guidance {w:g}, "
            f"{'raw weights' if '--raw-weights' in cmd else 'EMA'}")

def machine(card: dict) -> str:
    env = card.get('environment', {})
    cpu = env.get('cpu', {}).get('model')
    return f"{cpu}, {env['cpu']['cores']} cores" if cpu else f"{env.get('device', '?')} (CPU model not recorded)"

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
            rows.append(('conditioning accuracy', f"{a['overall']:.1%} ({smp['n']} samples, {smp['sampler']} {smp['steps']} steps, guidance {smp['guidance']}, {smp['sampling_time_s']:.0f} s)"))
        if 'frechet' in m:
            f = m['frechet']
            rows.append(('Frechet distance / floor', f"{f['fd']:.2f} / {f['floor']:.2f} = {f['fd'] / f['floor']:.2f}x; reference: {f.get('reference', '?')}"))
        if 'memorisation' in m:
            rows.append(('memorisation ratio', f"{m['memorisation']['median_ratio']:.2f} (nearest training image: samples vs held-out images)"))
        facts['runs'].append(dict(file=str(card.relative_to(RES)), fields=[[k, str(v)] for k, v in rows]))


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


def main():
    torch.set_num_threads(1); torch.manual_seed(0)   # tiny models: threads only add contention
    FIG.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    facts = dict(alpha_bar_T={}, params={}, langevin={}, run_samples=[], runs=[])
    digit = load_digits(image_size=16).images[3]          # one real handwritten digit, 16x16 in [-1, 1]
    files = [fig_schedules(facts), fig_forward(digit), fig_posterior_std(), fig_eq12_weight(), fig_bits(facts),
             fig_unet_params(facts), *fig_toy(facts), fig_langevin(facts)]
    runs_of(facts)
    measured_speed(facts)
    (FIG / 'facts.json').write_text(json.dumps(facts, indent=1, sort_keys=True) + '\n')
    print(f'wrote {len(files)} figures + facts.json to {FIG.relative_to(RES.parent)} in {time.time() - t0:.0f}s;',
          f"{len(facts['run_samples'])} recorded sample grids, {len(facts['runs'])} run cards")


if __name__ == '__main__':
    sys.exit(main())
