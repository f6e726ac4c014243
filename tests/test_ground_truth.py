"""Ground truth for the library (chapter 05b): with the exact noise prediction of Gaussian-mixture data as the network,
the samplers must return the data's moments and the bound must match its exact value. Imports the package only.

Tolerances: moment z-scores use exact standard errors (`moment_zscores`, from the mixture's fourth moments) and must
be below 5 in size. The samplers' own discretisation bias with the exact score (chapter 05b, section 4: the fixed
reverse variances are O(1/steps) approximations) is at most 1.3% of the variance for 1000 ancestral/DDIM-eta=1 steps,
1.5% for 250 respaced fixed_large steps and 1.8% for 250 DDIM-eta=0 steps at these component variances (0.09-0.16):
under one standard error (~2.2%) at n = 4000."""
import math
import pytest, torch
from ddpm_nb.schedules import Schedule, linear_betas
from ddpm_nb.forward import q_sample, predict_x0_from_eps
from ddpm_nb.elbo import vlb_terms, loss_simple, calc_bpd_loop
from ddpm_nb.diffusion import Diffusion, spaced_timesteps
from ddpm_nb.analytic import (GaussianMixture, AnalyticEps, moment_zscores, ve_score, annealed_langevin,
                              x0_loss_weights, gaussian_flow, exact_classifier, discrete_data, exact_discrete_nll_bpd,
                              expected_bound_bpd)

COS = Schedule.from_name('cosine', 1000)
MIX = GaussianMixture([[-0.6, 0.3], [0.5, -0.2]], covs=[[[0.09, 0.03], [0.03, 0.16]], [[0.16, -0.04], [-0.04, 0.09]]],
                      weights=[0.4, 0.6])
MIX1 = GaussianMixture([[-0.4], [0.5]], std=[0.2, 0.3], weights=[0.4, 0.6])
N = 4000

def f64(*shape, g): return torch.randn(*shape, generator=g, dtype=torch.float64)

def sample_exact(d, mixture=MIX, n=N, y=None, seed=0, **kw):
    "n seeded float64 samples from diffusion d with the exact eps* of `mixture` (class y; None: the null class)."
    g, model = torch.Generator().manual_seed(seed), AnalyticEps(mixture, COS)
    y = torch.full((n,), model.null_class if y is None else y)
    return d.sample(model, (n, mixture.D), y, x_T=f64(n, mixture.D, g=g), generator=g, clip_x0=False, **kw)

def test_score_is_autograd_of_the_log_density_and_eps_is_minus_sigma_score():
    model, x = AnalyticEps(MIX, COS), f64(7, 2, g=torch.Generator().manual_seed(0))
    for t in [0, 1, 250, 600, 999]:
        tt, ab = torch.full((7,), t), COS.alpha_bar[t]
        for y, data in [(2, MIX), (0, MIX.component(0)), (1, MIX.component(1))]:
            xg = x.clone().requires_grad_()
            grad, = torch.autograd.grad(data.marginal(ab).log_prob(xg).sum(), xg)
            torch.testing.assert_close(model.score(x, tt, torch.full((7,), y)), grad, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(model(x, tt, torch.full((7,), y)), -(1 - ab).sqrt() * grad, rtol=1e-9, atol=1e-9)

def test_tweedie_two_routes_and_the_library_inversion():
    model, x = AnalyticEps(MIX, COS), 2 * f64(50, 2, g=torch.Generator().manual_seed(1))
    for t in [0, 100, 500, 900]:
        tt, ab = torch.full((50,), t), COS.alpha_bar[t]
        tweedie = (x + (1 - ab) * model.score(x, tt)) / ab.sqrt()
        torch.testing.assert_close(model.x0_mean(x, tt), tweedie, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(predict_x0_from_eps(COS, x, tt, model(x, tt)), tweedie, rtol=1e-8, atol=1e-8)

def test_eps_star_is_the_average_noise_of_forward_draws():
    "E[eps - eps*(x_t) | x_t in a bin] = 0 with no binning bias; a coarse schedule makes an off-by-one t visible."
    g, cos20, n, t = torch.Generator().manual_seed(2), Schedule.from_name('cosine', 20), 200_000, 8
    model = AnalyticEps(MIX1, cos20, conditional=False)
    x0, _ = MIX1.sample(n, g)
    noise = f64(n, 1, g=g)
    xt = q_sample(cos20, x0, torch.full((n,), t), eps=noise)
    bins = torch.bucketize(xt[:, 0], torch.linspace(-1.6, 1.6, 17, dtype=torch.float64))
    tt = torch.full((n,), t)
    for v in [noise[:, 0] - model(xt, tt)[:, 0], x0[:, 0] - model.x0_mean(xt, tt)[:, 0]]:
        for b in range(1, 17):
            s = v[bins == b]
            assert abs(s.mean() / (s.std() / len(s) ** 0.5)) < 5

def test_l_simple_of_eps_star_is_the_closed_form_minimum():
    one, n = GaussianMixture([[0.3]], std=[0.4]), 50_000
    g = torch.Generator().manual_seed(3)
    x0, _ = one.sample(n, g)
    noise, model = f64(n, 1, g=g), AnalyticEps(one, COS, conditional=False)
    for t in [0, 50, 300, 700]:
        loss = Diffusion(COS).training_losses(model, x0, t=torch.full((n,), t), eps=noise)['loss']
        ab = COS.alpha_bar[t].item()
        assert abs(loss.mean().item() - ab * 0.16 / (ab * 0.16 + 1 - ab)) < 5 * loss.std().item() / n ** 0.5

def test_vlb_term_is_the_snr_weighted_x0_error():
    g, T = torch.Generator().manual_seed(4), COS.T
    x0 = torch.rand(T - 1, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.arange(1, T)
    xt = q_sample(COS, x0, t, generator=g)
    x0_hat = x0 + 0.1 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    kl_nats = vlb_terms(COS, x0_hat, x0, xt, t, 'x0', 'fixed_small') * math.log(2)
    w = x0_loss_weights(COS)['bound'][t] / T
    # normal_kl returns what is left of 1 + KL - 1 here (equal variances): absolute round-off ~1e-16 nats
    torch.testing.assert_close(kl_nats, w * ((x0_hat - x0) ** 2).mean((1, 2, 3)), rtol=1e-9, atol=1e-15)

def test_l_simple_weights_on_the_x0_error():
    g, t = torch.Generator().manual_seed(5), torch.arange(1000)
    x0, eps = torch.rand(1000, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1, f64(1000, 1, 2, 2, g=g)
    xt = q_sample(COS, x0, t, eps=eps)
    a, s = (v[t].view(-1, 1, 1, 1) for v in (COS.sqrt_alpha_bar, COS.sqrt_one_minus_alpha_bar))
    eps_hat = eps + 0.1 * f64(1000, 1, 2, 2, g=g)
    x0_hat = (xt - s * eps_hat) / a
    dx0, wt = ((x0_hat - x0) ** 2).mean((1, 2, 3)), x0_loss_weights(COS)
    torch.testing.assert_close(loss_simple(COS, 'eps', eps_hat, x0, eps, t), wt['eps'] * dx0, rtol=1e-6, atol=0)
    v_hat = a * eps_hat - s * x0_hat
    torch.testing.assert_close(loss_simple(COS, 'v', v_hat, x0, eps, t), wt['v'] * dx0, rtol=1e-6, atol=0)

CASES = {'ancestral-1000-fixed_small': (dict(), {}),
         'ancestral-250-respaced-fixed_large': (dict(variance='fixed_large'), dict(steps=250)),
         'ddim-eta0-250': (dict(), dict(sampler='ddim', steps=250)),
         'ddim-eta1-1000': (dict(), dict(sampler='ddim', eta=1.0))}

@pytest.mark.parametrize('name', CASES)
def test_samplers_reproduce_the_data_moments(name):
    dkw, skw = CASES[name]
    z = moment_zscores(sample_exact(Diffusion(COS, **dkw), **skw), MIX)
    assert z.abs().max() < 5, (name, z)

@pytest.mark.parametrize('y', [0, 1])
def test_each_class_is_its_component(y):
    z = moment_zscores(sample_exact(Diffusion(COS), y=y, seed=y + 1, sampler='ddim', steps=250), MIX.component(y))
    assert z.abs().max() < 5, z

def test_guidance_is_classifier_guidance_with_the_exact_classifier():
    "The book's (1 + w) eps_c - w eps_u is D&N's guidance with scale s = 1 + w on the unconditional model."
    model, d, x = AnalyticEps(MIX1, COS), Diffusion(COS), torch.linspace(-2, 2, 11, dtype=torch.float64)[:, None]
    for t, w, k in [(50, 1.0, 0), (400, 3.0, 1), (800, 0.5, 0)]:
        tt, y = torch.full((11,), t), torch.full((11,), k)
        xg = x.clone().requires_grad_()
        grad, = torch.autograd.grad(exact_classifier(model, xg, tt)[:, k].log().sum(), xg)
        uncond = model(x, tt, torch.full((11,), model.null_class))
        expect = uncond - (1 + w) * (1 - COS.alpha_bar[t]).sqrt() * grad
        torch.testing.assert_close(d.model_out(model, x, tt, y, guidance=w), expect, rtol=1e-9, atol=1e-9)

def test_guidance_concentrates_on_the_class_and_overshoots_its_mean():
    model, d, n = AnalyticEps(MIX1, COS), Diffusion(COS), 4000
    conf = []
    for w in [0.0, 1.0, 3.0, 8.0]:
        g = torch.Generator().manual_seed(3)
        x = d.sample(model, (n, 1), torch.zeros(n, dtype=torch.long), steps=50, sampler='ddim', guidance=w, generator=g,
                     x_T=f64(n, 1, g=g), clip_x0=False)
        p = exact_classifier(model, x, torch.zeros(n, dtype=torch.long))[:, 0]
        conf.append((p.mean().item(), p.std().item() / n ** 0.5))
    for (a, sa), (b, sb) in zip(conf, conf[1:]): assert b - a > 4 * (sa ** 2 + sb ** 2) ** 0.5, conf
    assert (x.mean() + 0.4) / (x.std() / n ** 0.5) < -5 and x.std() < 0.2     # w = 8: past mu_0 = -0.4, narrower

def test_ddim_is_a_first_order_solver_of_the_probability_flow():
    gauss = MIX.component(0)
    model, x_T = AnalyticEps(gauss, COS, conditional=False), f64(1000, 2, g=torch.Generator().manual_seed(6))
    exact = gaussian_flow(gauss, x_T, COS.alpha_bar[-1], 1.0)
    err = {k: (Diffusion(COS).sample(model, x_T.shape, steps=k, sampler='ddim', x_T=x_T, clip_x0=False) - exact)
              .norm(dim=1).mean().item() for k in [20, 50, 100]}
    assert abs(err[20] / err[50] / 2.5 - 1) < 0.3 and abs(err[50] / err[100] / 2 - 1) < 0.3, err
    assert err[100] < 0.015, err

def test_gaussian_flow_solves_the_ode():
    gauss, x = MIX.component(0), f64(20, 2, g=torch.Generator().manual_seed(7))
    for ab, h in [(0.05, 1e-5), (0.5, 1e-5), (0.95, 1e-5)]:
        dx = (gaussian_flow(gauss, x, ab, ab + h) - gaussian_flow(gauss, x, ab, ab - h)) / (2 * h)
        xg = x.clone().requires_grad_()
        score, = torch.autograd.grad(gauss.marginal(ab).log_prob(xg).sum(), xg)
        torch.testing.assert_close(dx, (x + score) / (2 * ab), rtol=0, atol=1e-7)

def test_ddim_inversion_round_trip():
    model, x0 = AnalyticEps(MIX, COS, conditional=False), MIX.sample(500, torch.Generator().manual_seed(8))[0]
    trip = {}
    for k in [20, 50, 100]:
        d = Diffusion(COS).respace(spaced_timesteps(1000, k))
        z = d.ddim_invert(model, x0)
        trip[k] = (d.sample(model, x0.shape, sampler='ddim', x_T=z, clip_x0=False) - x0).norm(dim=1).mean().item()
        assert moment_zscores(z, MIX.marginal(COS.alpha_bar[-1])).abs().max() < 5
    assert abs(trip[20] / trip[50] / 2.5 - 1) < 0.3 and abs(trip[50] / trip[100] / 2 - 1) < 0.3, trip
    assert trip[100] < 0.03, trip

def test_one_ddim_step_keeps_the_marginals():
    point, n, g = GaussianMixture([[0.4]], std=0.0), 40_000, torch.Generator().manual_seed(9)
    xt = q_sample(COS, torch.full((n, 1), 0.4, dtype=torch.float64), torch.full((n,), 600), generator=g)
    step = Diffusion(COS).respace([450, 600])
    for eta in [0.0, 0.5, 1.0]:
        x = next(step.ddim_steps(AnalyticEps(point, COS, conditional=False), xt.shape, eta=eta, x_T=xt, generator=g,
                                 clip_x0=False))['x']
        assert moment_zscores(x, point.marginal(COS.alpha_bar[450])).abs().max() < 5, eta

def test_ddim_eta_sets_the_step_noise_of_eq_16():
    "All etas keep the marginals; the spread of one step from a FIXED x_t pins sigma_t(eta) (DDIM Eq. 16)."
    point, n, g = GaussianMixture([[0.4]], std=0.0), 40_000, torch.Generator().manual_seed(12)
    xt = torch.full((n, 1), 0.1, dtype=torch.float64)
    ab, ab_to = COS.alpha_bar[600], COS.alpha_bar[450]
    for eta in [0.5, 1.0]:
        x = next(Diffusion(COS).respace([450, 600]).ddim_steps(AnalyticEps(point, COS, conditional=False), xt.shape,
                                                               eta=eta, x_T=xt, generator=g, clip_x0=False))['x']
        var = (eta ** 2 * (1 - ab_to) / (1 - ab) * (1 - ab / ab_to)).item()
        assert abs(x.var().item() - var) < 5 * var * (2 / (n - 1)) ** 0.5, (eta, x.var().item(), var)

def test_annealed_langevin_with_the_exact_score():
    g, model = torch.Generator().manual_seed(10), AnalyticEps(MIX1, COS)
    score_fn, sigmas = ve_score(model, COS, torch.logspace(math.log10(3.0), -2, 10), y=torch.full((4000,), 2))
    x = annealed_langevin(score_fn, sigmas, 50, 1e-4, sigmas[0] * f64(4000, 1, g=g), generator=g)
    z = moment_zscores(x, GaussianMixture(MIX1.means, MIX1.covs + sigmas[-1] ** 2, weights=MIX1.weights))
    assert z.abs().max() < 5, z

LEVELS, PROBS = [0, 96, 160, 255], [0.1, 0.4, 0.3, 0.2]

def test_bound_gap_is_positive_and_shrinks_with_T():
    H = exact_discrete_nll_bpd(PROBS)
    assert abs(H - 1.8464393446710154) < 1e-12
    gaps = [expected_bound_bpd(LEVELS, PROBS, Schedule.from_name('cosine', T))['total'] - H
            for T in [100, 300, 1000, 3000]]
    assert all(g > 0 for g in gaps) and all(a > b for a, b in zip(gaps, gaps[1:])), gaps

@pytest.mark.parametrize('T, n', [(300, 400), (1000, 200)])
def test_calc_bpd_loop_matches_the_exact_expected_bound(T, n):
    sched, g = Schedule.from_name('cosine', T), torch.Generator().manual_seed(11)
    pix = discrete_data(LEVELS, PROBS, D=2)
    model, x0 = AnalyticEps(pix, sched, conditional=False), pix.sample(n, g)[0]
    r = calc_bpd_loop(lambda x, t: model(x, t), sched, x0, 'eps', 'fixed_small', progress=False, generator=g)
    q = expected_bound_bpd(LEVELS, PROBS, sched)
    se = r['total_bpd'].std().item() / n ** 0.5
    assert abs(r['total_bpd'].mean().item() - q['total']) < 4 * se, (r['total_bpd'].mean().item(), q['total'], se)
    assert abs(r['vb'][:, 0].mean().item() - q['decoder']) < 4 * r['vb'][:, 0].std().item() / n ** 0.5
    assert r['total_bpd'].mean().item() > exact_discrete_nll_bpd(PROBS)

def test_calc_bpd_loop_counts_the_prior_term():
    "A short unrescaled linear schedule leaves alpha_bar_T ~ 0.6: its prior term (~0.4 bits/dim) must be in the total."
    sched, g = Schedule(linear_betas(50)), torch.Generator().manual_seed(13)
    pix = discrete_data(LEVELS, PROBS, D=2)
    model, x0 = AnalyticEps(pix, sched, conditional=False), pix.sample(400, g)[0]
    r = calc_bpd_loop(lambda x, t: model(x, t), sched, x0, 'eps', 'fixed_small', progress=False, generator=g)
    q = expected_bound_bpd(LEVELS, PROBS, sched)
    assert q['prior'] > 0.3
    assert abs(r['total_bpd'].mean().item() - q['total']) < 4 * r['total_bpd'].std().item() / 400 ** 0.5
