"Diffusion in a fresh process: every option combination trains, samplers' shapes/seeds/call counts, errors."
import itertools, pytest, torch
from dataclasses import replace
from ddpm_nb.schedules import Schedule
from ddpm_nb.forward import q_sample, q_posterior, predict_eps_from_x0
from ddpm_nb.unet import UNet
from ddpm_nb.diffusion import Diffusion, spaced_timesteps, LossAwareSampler, SchedulerAdapter
from ddpm_nb.testing import Oracle

def tiny_unet(num_classes=3, learned=False):
    return UNet(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                num_classes=num_classes, out_channels=2 if learned else None)

COMBOS = [(p, v, l) for p, v, l in itertools.product(['eps', 'x0', 'v'], ['fixed_small', 'fixed_large', 'learned'], ['simple', 'vlb', 'hybrid'])
          if not (l == 'simple' and v == 'learned') and not (l == 'hybrid' and v != 'learned')]

@pytest.mark.parametrize('prediction, variance, loss', COMBOS)
def test_each_option_combination_learns_a_fixed_batch(prediction, variance, loss):
    torch.manual_seed(0)
    d = Diffusion(Schedule.from_name('cosine', 20), prediction, variance, loss, p_uncond=0.2)
    net = tiny_unet(learned=variance == 'learned')
    g = torch.Generator().manual_seed(0)
    x0, y = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1, torch.arange(8) % 3
    t, eps = torch.randint(0, 20, (8,), generator=g), torch.randn(8, 1, 8, 8, generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss_v = d.training_losses(net, x0, y, t=t, eps=eps)['loss'].mean()
        opt.zero_grad(); loss_v.backward(); opt.step()
        first = loss_v.item() if first is None else first
    assert torch.isfinite(loss_v) and loss_v.item() < first     # same batch, t and eps: the loss must fall

def test_incoherent_combinations_raise():
    d = Diffusion(Schedule.from_name('cosine', 10), variance='learned', loss_type='simple')
    with pytest.raises(ValueError, match='learned variance no gradient'):
        d.training_losses(tiny_unet(learned=True), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    d = Diffusion(Schedule.from_name('cosine', 10), variance='learned', loss_type='vlb')
    with pytest.raises(ValueError, match='2 x in_channels'):
        d.training_losses(tiny_unet(learned=False), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))

class Counting(torch.nn.Module):
    def __init__(self, net): super().__init__(); self.net, self.calls = net, []
    num_classes = property(lambda s: s.net.num_classes); null_class = property(lambda s: s.net.null_class)
    def forward(self, x, t, y=None): self.calls.append(x.shape[0]); return self.net(x, t, y)

@pytest.mark.parametrize('sampler', ['ancestral', 'ddim'])
def test_samplers_shape_dtype_seed_and_call_count(sampler):
    d = Diffusion(Schedule.from_name('cosine', 30))
    net = Counting(tiny_unet())
    y = torch.tensor([0, 1, 2, 0])
    a = d.sample(net, (4, 1, 8, 8), y, steps=6, sampler=sampler, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 1, 8, 8) and a.dtype == torch.float32 and net.calls == [4] * 6
    b = d.sample(net, (4, 1, 8, 8), y, steps=6, sampler=sampler, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    net.calls.clear()
    d.sample(net, (4, 1, 8, 8), y, steps=5, sampler=sampler, guidance=2.0)
    assert net.calls == [8] * 5                      # conditional + unconditional in one batch per step

def test_guidance_zero_is_the_conditional_model():
    d = Diffusion(Schedule.from_name('cosine', 10))
    net = tiny_unet()
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)         # the last conv starts at zero: make the output non-trivial
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([1, 5, 9]), torch.tensor([0, 1, 2])
    ref = net(x, t, y)
    assert ref.abs().max() > 0
    torch.testing.assert_close(d.model_out(net, x, t, y, guidance=0.0), ref)

def test_reverse_step_with_true_x0_is_the_posterior():
    d = Diffusion(Schedule.from_name('linear', 100))
    x0 = torch.rand(4, 1, 3, 3, dtype=torch.float64) * 2 - 1
    t = torch.tensor([1, 20, 50, 99]); xt = q_sample(d.schedule, x0, t)
    oracle = lambda x, tt, y=None: predict_eps_from_x0(d.schedule, x, tt, x0)
    p = d.p_mean_var(oracle, xt, t, clip_x0=False)
    mean, var, _ = q_posterior(d.schedule, x0, xt, t)
    torch.testing.assert_close(p['mean'], mean); torch.testing.assert_close(p['var'], var)

def test_scheduler_adapter_matches_sampler():
    d = Diffusion(Schedule.from_name('cosine', 40))
    net = tiny_unet(); y = torch.tensor([0, 2])
    sch = SchedulerAdapter(d); sch.set_timesteps(8)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 8, 8, generator=g)
    with torch.no_grad():
        for t in sch.timesteps: x = sch.step(net(x, torch.full((2,), int(t)), y), t, x, generator=g).prev_sample
    torch.testing.assert_close(x, d.sample(net, (2, 1, 8, 8), y, steps=8, generator=torch.Generator().manual_seed(3)))

@pytest.mark.parametrize('kwargs, msg', [
    (dict(guidance=1.0, y=None), 'needs a conditional model'),
    (dict(steps=31), 'integer in 1..30'),
    (dict(steps=0), 'integer in 1..30'),
    (dict(sampler='plms'), "unknown sampler 'plms'"),
])
def test_bad_sampling_input_unconditional(kwargs, msg):
    d = Diffusion(Schedule.from_name('cosine', 30))
    with pytest.raises(ValueError, match=msg): d.sample(tiny_unet(num_classes=None), (2, 1, 8, 8), **kwargs)

def test_bad_labels_and_batch():
    d = Diffusion(Schedule.from_name('cosine', 30))
    net = tiny_unet()
    with pytest.raises(ValueError, match='pass labels y'): d.sample(net, (2, 1, 8, 8))
    with pytest.raises(ValueError, match=r'shape \(2,\)'): d.sample(net, (2, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match='labels must lie in 0..3'): d.sample(net, (2, 1, 8, 8), torch.tensor([0, 9]))
    with pytest.raises(ValueError, match='B >= 1'): d.sample(net, (0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match='unconditional'): d.sample(tiny_unet(None), (2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='NaN or inf'): d.sample(net, (1, 1, 8, 8), torch.zeros(1, dtype=torch.long), x_T=torch.full((1, 1, 8, 8), float('nan')))


# ---- audit #19: ground truths the chapter-5 checks did not have
f64 = dict(dtype=torch.float64)


def test_respaced_betas_and_posterior_derived_independently():
    "Catches: betas not recomputed, a ratio to the original previous step, the network given the new index."
    d = Diffusion(Schedule.from_name('linear', 1000))
    ts = spaced_timesteps(1000, 37)
    r = d.respace(ts)
    edges = [-1] + ts.tolist()
    want = torch.stack([1 - d.schedule.alphas[a + 1:b + 1].prod() for a, b in zip(edges, edges[1:])])
    torch.testing.assert_close(r.schedule.betas, want, rtol=0, atol=1e-12)    # products of alphas, not ratios of alpha_bar
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(36, 1, 2, 2, generator=g, **f64) * 2 - 1
    i = torch.arange(1, 37)
    a_s, a_t = (d.schedule.alpha_bar[v].view(-1, 1, 1, 1) for v in (ts[i - 1], ts[i]))
    xt = q_sample(d.schedule, x0, ts[i], generator=g)
    p = r.p_mean_var(Oracle(d.schedule, x0), xt, i, clip_x0=False)
    cov = (a_t / a_s).sqrt() * (1 - a_s)                                      # Gaussian conditioning in the original chain
    torch.testing.assert_close(p['mean'], a_s.sqrt() * x0 + cov / (1 - a_t) * (xt - a_t.sqrt() * x0), rtol=0, atol=1e-10)
    torch.testing.assert_close(p['var'].expand_as(xt), (1 - a_s - cov ** 2 / (1 - a_t)).expand_as(xt), rtol=0, atol=1e-12)


def test_ddim_and_inversion_walk_q_path_with_exact_predictor():
    """With an exact predictor, eta=0 DDIM and its inversion stay on sqrt(ab) x0 + sqrt(1 - ab) eps (one eps).
    Catches: either DDIM coefficient at the wrong alpha_bar index, the inversion's alpha_bar_next off by one, the
    network called with the new index. (sample(invert(x0)) == x0 alone cannot fail: the last step returns x0_hat = x0.)"""
    d = Diffusion(Schedule.from_name('cosine', 50))
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 2, 2, generator=g, **f64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, **f64)
    on_path = lambda k: q_sample(d.schedule, x0, torch.full((3,), int(k)), eps=eps)
    for r in (d, d.respace(spaced_timesteps(50, 10))):
        oracle = Oracle(d.schedule, x0)
        z = r.ddim_invert(oracle, on_path(r.timestep_map[0]))
        torch.testing.assert_close(z, on_path(49), rtol=0, atol=1e-10)
        states = list(r.ddim_steps(oracle, x0.shape, x_T=z, clip_x0=False))
        assert [s['t'] for s in states] == list(range(r.T - 1, -1, -1))
        for s in states[:-1]:
            torch.testing.assert_close(s['x'], on_path(r.timestep_map[s['t'] - 1]), rtol=0, atol=1e-10)
        torch.testing.assert_close(states[-1]['x'], x0, rtol=0, atol=1e-10)


def test_ancestral_step_adds_sigma_z_and_nothing_at_the_end():
    """x_{t-1} - mu = sigma z with z ~ N(0, 1): on 4,096 scalars mean SE 0.016, variance SE 0.022 (4.5 SE allowed).
    Catches: noise scaled by the variance, noise at the last step, a loop that skips index 0."""
    d = Diffusion(Schedule.from_name('cosine', 100))
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(4096, 1, generator=g, **f64) * 2 - 1
    oracle = Oracle(d.schedule, 0.9 * x0)
    xT = torch.randn(4096, 1, generator=g, **f64)
    steps = list(d.p_sample_steps(oracle, xT.shape, x_T=xT, clip_x0=False, generator=g))
    assert [s['t'] for s in steps] == list(range(99, -1, -1))
    before = [xT] + [s['x'] for s in steps[:-1]]
    for t in (99, 50, 1):
        p = d.p_mean_var(oracle, before[99 - t], torch.full((4096,), t), clip_x0=False)
        z = (steps[99 - t]['x'] - p['mean']) / p['var'].sqrt()
        assert abs(z.mean()) < 0.07 and abs(z.var() - 1) < 0.1, (t, z.mean().item(), z.var().item())
    p = d.p_mean_var(oracle, before[99], torch.zeros(4096, dtype=torch.long), clip_x0=False)
    torch.testing.assert_close(steps[-1]['x'], p['mean'], rtol=0, atol=1e-12)


class TwoValued(torch.nn.Module):
    "Outputs (1, 10) for a class and (-2, 20) for the null class: a mean channel, then a learned-variance channel."
    num_classes, null_class = 3, 3
    def forward(self, x, t, y):
        v = torch.where((y == self.null_class)[:, None], torch.tensor([-2., 20.]), torch.tensor([1., 10.]))
        return v[:, :, None, None].expand(-1, -1, *x.shape[2:])


def test_guidance_sign_convention_and_variance_half():
    "(1 + w) eps(y) - w eps(null) = 1 + 3w here. Catches: the wrong sign, swapped halves, a variance from the null pass."
    d = Diffusion(Schedule.from_name('cosine', 10), variance='learned', loss_type='hybrid')
    x, t, y = torch.zeros(3, 1, 2, 2), torch.tensor([0, 4, 9]), torch.tensor([0, 1, 2])
    for w in (0.0, 0.5, 3.0):
        out = d.model_out(TwoValued(), x, t, y, guidance=w)
        torch.testing.assert_close(out[:, 0], torch.full((3, 2, 2), 1 + 3 * w))
        torch.testing.assert_close(out[:, 1], torch.full((3, 2, 2), 10.0))


class Spy(torch.nn.Module):
    num_classes, null_class = 4, 4
    def forward(self, x, t, y): self.t, self.y = t, y; return torch.zeros_like(x)


def test_label_dropout_rate():
    "Binomial(10,000, 0.2): SE 0.004 on the fraction, 0.02 allowed. Catches: dropping with 1 - p, loss() not dropping."
    spy, d, y = Spy(), Diffusion(Schedule.from_name('cosine', 10), p_uncond=0.2), torch.arange(10_000) % 4
    d.loss(spy, torch.zeros(10_000, 2), y, generator=torch.Generator().manual_seed(0))
    dropped = spy.y == spy.null_class
    assert abs(dropped.float().mean().item() - 0.2) < 0.02
    assert torch.equal(spy.y[~dropped], y[~dropped])
    assert set(spy.t.tolist()) == set(range(10))         # Algorithm 1's t: every code index 0..T-1
    replace(d, p_uncond=0.0).loss(spy, torch.zeros(8, 2), y[:8])
    assert torch.equal(spy.y, y[:8])


def test_loss_aware_sampler_uses_root_mean_square_of_a_rolling_window():
    "Losses 1 then 7 at one t: sqrt(E[L^2]) = 5, not E[L] = 4; a third loss 7 rolls the window to (7, 7)."
    s = LossAwareSampler(4, history=2)
    for L in ([1., 1., 1., 1.], [1., 1., 1., 7.]): s.update(torch.arange(4), torch.tensor(L))
    want = 0.999 * torch.tensor([1., 1., 1., 5.], **f64) / 8 + 0.001 / 4
    torch.testing.assert_close(s.weights(), want, rtol=0, atol=1e-12)
    s.update(torch.tensor([3]), torch.tensor([7.]))
    assert abs(s.weights()[3].item() - (0.999 * 7 / 10 + 0.001 / 4)) < 1e-12
    t, w = s.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert abs((w * (t == 3)).mean().item() - 0.25) < 0.01      # unbiased reweighting; SE 0.0012 at n = 20,000


def test_ddim_eta_one_is_the_ancestral_step():
    "DDIM Eq. 16 with eta = 1 gives sigma^2 = beta_tilde and DDPM's mean. Catches: a dropped factor in sigma, ab for ab_prev."
    d = Diffusion(Schedule.from_name('cosine', 200))
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(200, 1, 3, 3, generator=g, **f64) * 2 - 1
    t = torch.arange(200)
    xt = q_sample(d.schedule, x0, t, generator=g)
    p = d.p_mean_var(Oracle(d.schedule, 0.9 * x0), xt, t, clip_x0=False)
    mean, var = d.ddim_mean_var(xt, t, p['x0_hat'], eta=1.0)
    torch.testing.assert_close(mean, p['mean'], rtol=0, atol=1e-10)
    torch.testing.assert_close(var[1:].expand_as(xt[1:]), p['var'][1:].expand_as(xt[1:]), rtol=0, atol=1e-12)


def test_min_snr_weighted_v_loss_closed_form():
    "Zero network, v target: loss = min(SNR, 5) / (SNR + 1) * mean(v^2) (Hang et al. 2023). Catches: gamma not passed on."
    zero = lambda x, t, y=None: torch.zeros_like(x)
    g = torch.Generator().manual_seed(3)
    x0, eps, t = torch.rand(10, 1, 4, 4, generator=g) * 2 - 1, torch.randn(10, 1, 4, 4, generator=g), torch.arange(0, 100, 10)
    d = Diffusion(Schedule.from_name('cosine', 100), 'v', min_snr_gamma=5.0)
    ab = d.schedule.alpha_bar[t].float().view(-1, 1, 1, 1)
    snr, v = ab / (1 - ab), ab.sqrt() * eps - (1 - ab).sqrt() * x0
    assert (snr > 5).any() and (snr < 5).any()
    got = d.training_losses(zero, x0, t=t, eps=eps)['loss']
    torch.testing.assert_close(got, (snr.clamp(max=5.0) / (snr + 1) * v ** 2).mean((1, 2, 3)), rtol=0, atol=1e-6)
