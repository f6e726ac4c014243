"""Tests of ddpm_nb.elbo against closed forms, torch.distributions and the oracle model (fresh process, installed package)."""
import math
import pytest
import torch
from ddpm_nb.schedules import Schedule, linear_betas
from ddpm_nb.forward import q_sample, predict_eps_from_x0, q_posterior
from ddpm_nb.elbo import (normal_kl, discretized_gaussian_log_likelihood, prior_bpd, mean_flat, predict_v,
                          predict_x0_from_v, predict_eps_from_v, split_output, model_x0_eps, model_variance,
                          p_mean_var_from_output, loss_simple, vlb_terms, training_loss, mse_weight,
                          calc_bpd_loop, bpd_of_dataset)

F64 = torch.float64
D = torch.distributions


@pytest.fixture
def g(): return torch.Generator().manual_seed(0)

@pytest.fixture
def sched(): return Schedule.from_name('cosine', 50)

def images(g, B=4, C=1, H=6, W=6):
    "Random 8-bit images scaled to [-1, 1], both edge values present."
    x = torch.randint(0, 256, (B, C, H, W), generator=g).to(F64) / 255 * 2 - 1
    x[0, 0, 0, :2] = torch.tensor([-1.0, 1.0])
    return x

from ddpm_nb.testing import Oracle as oracle     # the book's fixture: a model_fn told x0


def test_normal_kl_matches_torch_distributions(g):
    m1, m2, lv2 = (torch.randn(3, 2, 4, 4, generator=g, dtype=F64) for _ in range(3))
    lv1 = torch.randn(3, 1, 1, 1, generator=g, dtype=F64)          # per-example log-variance broadcasts
    ref = D.kl_divergence(D.Normal(m1, (0.5 * lv1).exp()), D.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref, rtol=0, atol=1e-12)

def test_normal_kl_self_is_zero_and_positive_otherwise(g):
    m, lv = torch.randn(2, 3, 4, 4, generator=g, dtype=F64), torch.randn(2, 3, 4, 4, generator=g, dtype=F64)
    assert (normal_kl(m, lv, m, lv) == 0).all()
    assert (normal_kl(m, lv, m + 0.1, lv) > 0).all()

def test_normal_kl_shape_errors():
    with pytest.raises(ValueError, match=r'mean2 has shape \(2, 2\)'):
        normal_kl(torch.zeros(2, 3), torch.zeros(()), torch.zeros(2, 2), torch.zeros(()))
    with pytest.raises(ValueError, match=r'logvar2 has shape \(3,\), which does not broadcast'):
        normal_kl(torch.zeros(2, 1, 2, 2), 0.0, torch.zeros(2, 1, 2, 2), torch.zeros(3))


@pytest.mark.parametrize('mu,log_scale', [(0.0, -3.0), (0.41, -6.0), (-1.0, -4.0), (1.4, -1.0), (0.2, 1.5)])
def test_decoder_probabilities_sum_to_one(mu, log_scale):
    vals = torch.linspace(-1, 1, 256, dtype=F64)[:, None]
    lp = discretized_gaussian_log_likelihood(vals, torch.full_like(vals, mu), torch.tensor(log_scale))
    assert abs(lp.exp().sum().item() - 1) < 1e-9     # the 1e-12 mass floor can add at most 2.6e-10

def test_decoder_matches_normal_cdf_differences(g):
    x = images(g, B=2, C=3)
    mean = torch.randn(x.shape, generator=g, dtype=F64) * 0.3
    log_scale = torch.full((2, 1, 1, 1), -1.5, dtype=F64)
    N = D.Normal(mean, log_scale.exp())
    ref = torch.where(x == -1, N.cdf(x + 1 / 255), torch.where(x == 1, 1 - N.cdf(x - 1 / 255),
                      (N.cdf(x + 1 / 255) - N.cdf(x - 1 / 255)).clamp(min=1e-12)))
    torch.testing.assert_close(discretized_gaussian_log_likelihood(x, mean, log_scale).exp(), ref, rtol=0, atol=1e-12)

def test_decoder_bad_input(g):
    x = images(g)
    with pytest.raises(ValueError, match=r'scaled to \[-1, 1\]'):
        discretized_gaussian_log_likelihood(x * 1.1, x, torch.zeros(()))
    with pytest.raises(ValueError, match=r'log_scale has shape \(4, 2\)'):
        discretized_gaussian_log_likelihood(x, x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r'mean has shape'):
        discretized_gaussian_log_likelihood(x, x[:, :, :3], torch.zeros(()))
    with pytest.raises(TypeError, match='floating-point'):
        discretized_gaussian_log_likelihood(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, 1, 2, 2), 0.0)


def test_prior_bpd_is_small_and_matches_formula(g):
    s = Schedule(linear_betas(1000))
    x0 = images(g, B=3, C=3)
    ab = s.alpha_bar[-1]
    exact = mean_flat(0.5 * (ab * x0 ** 2 - ab - torch.log1p(-ab))) / math.log(2)
    torch.testing.assert_close(prior_bpd(s, x0), exact, rtol=1e-10, atol=0)
    assert prior_bpd(s, x0).shape == (3,) and prior_bpd(s, x0).max() < 1e-4


@pytest.mark.parametrize('C', [1, 3])
def test_conversions_round_trip(sched, g, C):
    B = sched.T
    t = torch.arange(B)
    x0, eps = images(g, B=B, C=C), torch.randn(B, C, 6, 6, generator=g, dtype=F64)
    xt = q_sample(sched, x0, t, eps=eps)
    v = predict_v(sched, x0, eps, t)
    torch.testing.assert_close(predict_x0_from_v(sched, xt, t, v), x0, rtol=0, atol=1e-8)
    torch.testing.assert_close(predict_eps_from_v(sched, xt, t, v), eps, rtol=0, atol=1e-8)
    for pred, target in [('eps', eps), ('x0', x0), ('v', v)]:
        x0_hat, eps_hat = model_x0_eps(sched, pred, xt, t, target)
        torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-8)
        torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-8)
        assert (loss_simple(sched, pred, target, x0, eps, t) == 0).all()

def test_eps_mean_is_eq11(sched, g):
    t = torch.arange(sched.T)
    x0, eps = images(g, B=sched.T), torch.randn(sched.T, 1, 6, 6, generator=g, dtype=F64)
    xt = q_sample(sched, x0, t, eps=eps)
    a, b, ab = (x[t].view(-1, 1, 1, 1) for x in (sched.alphas, sched.betas, sched.alpha_bar))
    eq11 = (xt - b / (1 - ab).sqrt() * eps) / a.sqrt()
    torch.testing.assert_close(p_mean_var_from_output(sched, eps, xt, t, 'eps', 'fixed_small')['mean'], eq11, rtol=0, atol=1e-10)


def test_variances(sched):
    t, x = torch.tensor([0, 1, sched.T - 1]), torch.zeros(3, 2, 4, 4, dtype=F64)
    var, log_var = model_variance(sched, 'fixed_large', t, x)
    assert var.shape == (3, 1, 1, 1)
    torch.testing.assert_close(var.flatten(), torch.stack([sched.beta_tilde[1], sched.betas[1], sched.betas[-1]]))
    torch.testing.assert_close(model_variance(sched, 'fixed_small', t, x)[1].flatten(), sched.log_beta_tilde_clipped[t])
    lo = model_variance(sched, 'learned', t, x, -torch.ones_like(x))[1]      # v = -1: beta_tilde (clipped)
    hi = model_variance(sched, 'learned', t, x, torch.ones_like(x))[1]       # v = +1: beta
    torch.testing.assert_close(lo[:, 0, 0, 0], sched.log_beta_tilde_clipped[t])
    torch.testing.assert_close(hi[:, 0, 0, 0], sched.betas[t].log())

def test_output_channel_errors(sched, g):
    x0 = images(g, B=2, C=3)
    t = torch.tensor([3, 7])
    with pytest.raises(ValueError, match='a learned variance needs out_channels = 2 x in_channels = 6'):
        p_mean_var_from_output(sched, torch.zeros_like(x0), x0, t, 'eps', 'learned')
    with pytest.raises(ValueError, match="variance='fixed_large' needs out_channels = in_channels = 3"):
        p_mean_var_from_output(sched, torch.zeros(2, 6, 6, 6, dtype=F64), x0, t, 'eps', 'fixed_large')
    with pytest.raises(ValueError, match="unknown prediction 'mu'"):
        p_mean_var_from_output(sched, torch.zeros_like(x0), x0, t, 'mu', 'fixed_small')
    with pytest.raises(ValueError, match="unknown variance 'small'"):
        split_output(torch.zeros_like(x0), 'small', 3)
    with pytest.raises(ValueError, match='only the channel count may differ'):
        p_mean_var_from_output(sched, torch.zeros(2, 3, 6, 5, dtype=F64), x0, t, 'eps', 'fixed_small')


def test_mse_weight_is_the_kl(g):
    "With a fixed variance, KL(noisy eps) - KL(true eps) = w_t * mean squared eps error (Eq. 12)."
    s = Schedule(linear_betas(200, rescale=True))
    t = torch.arange(1, 200)
    x0, eps = images(g, B=199), torch.randn(199, 1, 6, 6, generator=g, dtype=F64)
    err = 0.1 * torch.randn(eps.shape, generator=g, dtype=F64)
    xt = q_sample(s, x0, t, eps=eps)
    for var in ['fixed_small', 'fixed_large']:
        d = (vlb_terms(s, eps + err, x0, xt, t, 'eps', var) - vlb_terms(s, eps, x0, xt, t, 'eps', var)) * math.log(2)
        torch.testing.assert_close(d, mse_weight(s, 'eps', var)[t] * mean_flat(err ** 2), rtol=1e-8, atol=0)

def test_hybrid_stops_the_mean_gradient(sched, g):
    x0, eps = images(g, B=8, C=3), torch.randn(8, 3, 6, 6, generator=g, dtype=F64)
    t = torch.randint(0, sched.T, (8,), generator=g)
    t[0] = 0                                                            # include a decoder term
    xt = q_sample(sched, x0, t, eps=eps)
    out = torch.cat([eps + 0.1, torch.zeros_like(eps)], 1).requires_grad_()
    loss = training_loss(sched, out, x0, xt, eps, t, 'eps', 'learned', 'hybrid')
    assert loss.shape == (8,)
    loss.sum().backward()
    g_hybrid, out.grad = out.grad.clone(), None
    loss_simple(sched, 'eps', out[:, :3], x0, eps, t).sum().backward()
    torch.testing.assert_close(g_hybrid[:, :3], out.grad[:, :3], rtol=0, atol=0)
    assert g_hybrid[:, 3:].abs().sum() > 0

def test_training_loss_bad_combinations(sched, g):
    x0, eps = images(g, B=2), torch.randn(2, 1, 6, 6, generator=g, dtype=F64)
    t = torch.tensor([1, 2]); xt = q_sample(sched, x0, t, eps=eps)
    out2 = torch.zeros(2, 2, 6, 6, dtype=F64)
    with pytest.raises(ValueError, match="use loss='hybrid' or 'vlb'"):
        training_loss(sched, out2, x0, xt, eps, t, 'eps', 'learned', 'simple')
    with pytest.raises(ValueError, match="use loss='simple'"):
        training_loss(sched, eps, x0, xt, eps, t, 'eps', 'fixed_small', 'hybrid')
    with pytest.raises(ValueError, match="unknown loss 'kl'"):
        training_loss(sched, eps, x0, xt, eps, t, 'eps', 'fixed_small', 'kl')
    with pytest.raises(ValueError, match='a learned variance needs out_channels'):
        training_loss(sched, eps, x0, xt, eps, t, 'eps', 'learned', 'vlb')


@pytest.mark.parametrize('C', [1, 3])
def test_oracle_bound_is_prior_plus_decoder(sched, g, C):
    x0 = images(g, B=3, C=C)
    r = calc_bpd_loop(oracle(sched, x0), sched, x0, 'eps', 'fixed_small', batch_timesteps=7, progress=False, generator=g)
    assert r['vb'].shape == r['mse'].shape == r['x0_mse'].shape == (3, sched.T) and r['total_bpd'].shape == (3,)
    assert r['vb'][:, 1:].abs().max() < 1e-9                            # every KL term vanishes
    torch.testing.assert_close(r['total_bpd'], r['prior_bpd'] + r['vb'][:, 0], rtol=0, atol=1e-12)
    assert (r['vb'][:, 0] > 0).all() and r['mse'].max() < 1e-12

def test_untrained_model_is_worse_and_vlb_loss_agrees(sched, g):
    x0 = images(g, B=3)
    zeros = lambda xt, t: torch.zeros_like(xt)
    r = calc_bpd_loop(zeros, sched, x0, 'eps', 'fixed_small', batch_timesteps=50, progress=False, generator=g)
    r_oracle = calc_bpd_loop(oracle(sched, x0), sched, x0, 'eps', 'fixed_small', progress=False, generator=g)
    assert (r['total_bpd'] > 2 * r_oracle['total_bpd']).all()    # random images, coarse T=50: ~10 vs ~3.4 bits/dim
    t = torch.arange(sched.T).repeat_interleave(3); x0t = x0.repeat(sched.T, 1, 1, 1)
    xt = q_sample(sched, x0t, t, generator=g)
    out = torch.zeros_like(xt)
    vlb = training_loss(sched, out, x0t, xt, torch.zeros_like(xt), t, 'eps', 'fixed_small', 'vlb').view(sched.T, 3).mean(0)
    torch.testing.assert_close(vlb, vlb_terms(sched, out, x0t, xt, t, 'eps', 'fixed_small').view(sched.T, 3).sum(0))

def test_bpd_of_dataset_averages_batches(sched, g):
    x0 = images(g, B=6)
    batches = [(x0[:4], torch.zeros(4)), x0[4:]]                        # (images, labels) tuples or bare tensors
    s = bpd_of_dataset(lambda xt, t: torch.zeros_like(xt), sched, batches,
                       'eps', 'fixed_small', batch_timesteps=25, progress=False, generator=g)
    assert s['n'] == 6 and s['vb'].shape == (sched.T,)
    assert abs(s['vb'].sum().item() + s['prior_bpd'] - s['bpd']) < 1e-9
    r = calc_bpd_loop(lambda xt, t: torch.zeros_like(xt), sched, x0, 'eps', 'fixed_small', batch_timesteps=25, progress=True)
    assert r['vb'].shape == (6, sched.T)                                # the tqdm path runs too
    with pytest.raises(ValueError, match='no images'):
        bpd_of_dataset(lambda xt, t: xt, sched, [], 'eps', 'fixed_small', progress=False)

def test_float32_batch_works(sched, g):
    x0 = images(g, B=2, C=3).float()
    r = calc_bpd_loop(oracle(sched, x0), sched, x0, 'eps', 'fixed_large', batch_timesteps=10, progress=False)
    assert r['total_bpd'].dtype == torch.float32 and torch.isfinite(r['total_bpd']).all()
