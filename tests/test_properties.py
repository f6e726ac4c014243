"""Property tests (hypothesis) for chapters 1-3: schedules, the forward process, its posterior and the ELBO terms.

Hypothesis draws the schedule (name, T, linear rescaling), timesteps, image shapes, dtypes and data; every invariant the
chapters state must hold for each draw: finite outputs, positive variances, monotone alpha_bar, posterior variance
below beta, exact round trips, KL >= 0 with KL(p || p) = 0, decoder probabilities summing to one.

Tolerances. Float64 identities are checked to 1e-9 relative. Where a computation divides by a coefficient that can be
tiny (1/sqrt(alpha_bar_t) near t = T, 1/sqrt(1/alpha_bar_t - 1) near t = 0), the rounding error of the inputs is
amplified by exactly that factor, so the tolerance is `dtype eps x |inputs| x factor` with a constant of 64.
"""
import math
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck
from ddpm_nb.schedules import Schedule, make_betas, linear_betas, check_t, extract
from ddpm_nb.forward import q_sample, q_mean_var, q_posterior, predict_x0_from_eps, predict_eps_from_x0
from ddpm_nb.elbo import (normal_kl, prior_bpd, discretized_gaussian_log_likelihood, predict_v, predict_x0_from_v,
                          predict_eps_from_v, vlb_terms, loss_simple, mse_weight, model_variance)

F64 = torch.float64
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}


@st.composite
def schedules(draw, max_T=400):
    "A Schedule: linear (as given, or rescaled by 1000/T as presets do), cosine or sigmoid, with 1 <= T <= max_T."
    name = draw(st.sampled_from(['linear', 'linear_rescaled', 'cosine', 'sigmoid']))
    T = draw(st.integers(21 if name == 'linear_rescaled' else 1, max_T))   # rescaling needs beta_end * 1000 / T < 1
    if name == 'linear_rescaled': return Schedule(linear_betas(T, rescale=True))
    return Schedule(make_betas(name, T))

@st.composite
def batches(draw, schedule, unit=False):
    "(x0, eps, t, dtype) for `schedule`: a small (B, C, H, W) batch, x0 in [-1, 1] (8-bit levels if `unit`), t in 0..T-1."
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    B, C, H, W = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x0 = torch.randint(0, 256, (B, C, H, W), generator=g).to(dtype) / 255 * 2 - 1 if unit else torch.rand(B, C, H, W, generator=g, dtype=dtype) * 2 - 1
    eps = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    t = torch.tensor(draw(st.lists(st.integers(0, schedule.T - 1), min_size=B, max_size=B)))
    return x0, eps, t, dtype

def finite(*xs): return all(bool(torch.isfinite(x).all()) for x in xs)


# ---------------------------------------------------------------------------------------------------- chapter 1
@FAST
@given(schedules())
def test_schedule_invariants(s):
    assert all(torch.isfinite(v).all() for v in vars(s).values()), 'a non-finite coefficient'
    assert s.betas.dtype == F64 and ((s.betas > 0) & (s.betas < 1)).all()
    ab = s.alpha_bar
    assert ((ab > 0) & (ab < 1)).all() and (ab[1:] < ab[:-1]).all()                     # strictly decreasing in (0, 1)
    assert s.alpha_bar_prev[0] == 1 and torch.equal(s.alpha_bar_prev[1:], ab[:-1])
    torch.testing.assert_close(s.sqrt_alpha_bar ** 2 + s.sqrt_one_minus_alpha_bar ** 2, torch.ones_like(ab), rtol=0, atol=1e-12)
    assert (s.snr[1:] < s.snr[:-1]).all()                                                # signal-to-noise falls with t
    # posterior variance: 0 at t = 0 (x_0 is known), positive after, never above beta_t (Eq. 7)
    assert s.beta_tilde[0] == 0 and (s.beta_tilde[1:] > 0).all() and (s.beta_tilde <= s.betas * (1 + 1e-12)).all()
    assert (s.log_beta_tilde_clipped.exp() > 0).all()

@FAST
@given(schedules())
def test_posterior_coefficients_are_consistent(s):
    "Eq. 7 against the marginals: the posterior mean of a noiseless x_t is sqrt(alpha_bar_{t-1}) x_0, and variances add up."
    torch.testing.assert_close(s.posterior_coef_x0 + s.posterior_coef_xt * s.sqrt_alpha_bar, s.alpha_bar_prev.sqrt(), rtol=1e-9, atol=1e-12)
    # Var[x_{t-1} | x_0] = beta_tilde_t + coef_xt^2 Var[x_t | x_0]  (the law of total variance)
    torch.testing.assert_close(s.beta_tilde + s.posterior_coef_xt ** 2 * (1 - s.alpha_bar), 1 - s.alpha_bar_prev, rtol=1e-9, atol=1e-12)

@FAST
@given(st.data())
def test_from_alpha_bar_round_trip(data):
    s = data.draw(schedules())
    torch.testing.assert_close(Schedule.from_alpha_bar(s.alpha_bar).betas, s.betas, rtol=1e-9, atol=1e-15)

@FAST
@given(st.data())
def test_extract_and_check_t(data):
    s = data.draw(schedules(max_T=50))
    t = torch.tensor(data.draw(st.lists(st.integers(0, s.T - 1), min_size=1, max_size=5)))
    nd = data.draw(st.integers(1, 5))
    c = extract(s.betas, t, (len(t),) + (2,) * (nd - 1))
    assert c.shape == (len(t),) + (1,) * (nd - 1) and torch.equal(c.flatten(), s.betas[t])
    bad = data.draw(st.sampled_from([-1, s.T, s.T + 7]))
    with pytest.raises(ValueError, match=f'0..{s.T - 1}'): check_t(torch.tensor([bad]), s.T)


# ---------------------------------------------------------------------------------------------------- chapter 2
@FAST
@given(st.data())
def test_q_sample_moments_and_round_trips(data):
    s = data.draw(schedules()); x0, eps, t, dtype = data.draw(batches(s))
    xt = q_sample(s, x0, t, eps=eps)
    assert xt.dtype == dtype and xt.shape == x0.shape and finite(xt)
    mean, var, log_var = q_mean_var(s, x0, t)
    assert finite(mean, var, log_var) and (var > 0).all()
    torch.testing.assert_close(log_var.exp(), var, rtol=64 * EPS[dtype], atol=0)
    scale = (x0.abs() + eps.abs() + 1).amax(dim=(1, 2, 3), keepdim=True)
    ab = s.alpha_bar[t].to(dtype).view(-1, 1, 1, 1)
    # x0 back from (x_t, eps): divides by sqrt(alpha_bar_t)
    err = (predict_x0_from_eps(s, xt, t, eps) - x0).abs()
    assert (err <= 64 * EPS[dtype] * scale / ab.sqrt()).all(), err.max()
    # eps back from (x_t, x0): divides by sqrt(1/alpha_bar_t - 1)
    err = (predict_eps_from_x0(s, xt, t, x0) - eps).abs()
    assert (err <= 64 * EPS[dtype] * scale / (ab.sqrt() * (1 / ab - 1).sqrt())).all(), err.max()

@FAST
@given(st.data())
def test_q_posterior_by_conditioning(data):
    "Eqs. 6-7 against a second derivation: condition the joint Gaussian of (x_{t-1}, x_t) given x_0 on x_t."
    s = data.draw(schedules()); x0, eps, t, dtype = data.draw(batches(s))
    xt = q_sample(s, x0, t, eps=eps)
    mean, var, log_var = q_posterior(s, x0, xt, t)
    assert finite(mean, var, log_var) and (var >= 0).all() and (var <= s.betas[t].to(dtype).view(-1, 1, 1, 1) * (1 + 1e-6)).all()
    ab, abp, a = (v[t].view(-1, 1, 1, 1) for v in (s.alpha_bar, s.alpha_bar_prev, s.alphas))
    cov = a.sqrt() * (1 - abp)                                           # Cov[x_{t-1}, x_t | x_0]
    want_mean = abp.sqrt() * x0.double() + cov / (1 - ab) * (xt.double() - ab.sqrt() * x0.double())
    want_var = (1 - abp) - cov ** 2 / (1 - ab)
    scale = (x0.abs() + eps.abs() + 1).double().amax()
    torch.testing.assert_close(mean.double(), want_mean, rtol=0, atol=float(1e3 * EPS[dtype] * scale))
    torch.testing.assert_close(var.double().expand_as(want_var), want_var.expand_as(var.double()), rtol=0, atol=1e3 * EPS[dtype])


# ---------------------------------------------------------------------------------------------------- chapter 3
@FAST
@given(st.data())
def test_normal_kl_nonnegative_and_zero_on_itself(data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    n = data.draw(st.integers(1, 20))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    m1, m2 = (torch.randn(n, generator=g, dtype=dtype) * 3 for _ in range(2))
    lv1, lv2 = (torch.randn(n, generator=g, dtype=dtype) * 4 for _ in range(2))
    kl = normal_kl(m1, lv1, m2, lv2)
    assert finite(kl) and (kl >= -8 * EPS[dtype]).all()
    assert (normal_kl(m1, lv1, m1, lv1) == 0).all()                      # exactly: 0.5 (0 + 1 + 0 - 1)
    D = torch.distributions.Normal
    want = torch.distributions.kl_divergence(D(m1.double(), (0.5 * lv1.double()).exp()), D(m2.double(), (0.5 * lv2.double()).exp()))
    torch.testing.assert_close(kl.double(), want, rtol=1e-4 if dtype == torch.float32 else 1e-9, atol=1e-5 if dtype == torch.float32 else 1e-12)

@FAST
@given(st.data())
def test_prior_term_nonnegative(data):
    s = data.draw(schedules()); x0, _, _, dtype = data.draw(batches(s))
    bpd = prior_bpd(s, x0)
    assert bpd.shape == (x0.shape[0],) and finite(bpd) and (bpd >= -8 * EPS[dtype]).all()

@FAST
@given(st.data())
def test_decoder_probabilities_sum_to_one(data):
    "Eq. 13: over the 256 bins of [-1, 1], the discretized Gaussian's probabilities add up to 1 for any mean and scale."
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    mean = data.draw(st.floats(-1.5, 1.5))
    log_scale = data.draw(st.floats(-7.0, 1.0))                          # sigma from ~1e-3 (sharper than a bin) to e
    x = (torch.arange(256, dtype=dtype) / 255 * 2 - 1).view(1, 1, 1, 256)
    logp = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.tensor(log_scale, dtype=dtype))
    assert finite(logp) and (logp <= 1e-6).all()
    total = logp.double().exp().sum().item()
    assert abs(total - 1) < (1e-4 if dtype == torch.float32 else 1e-8), total   # + at most 254 x 1e-12 from the clamp

@FAST
@given(st.data())
def test_v_prediction_round_trips(data):
    "v is a rotation of (x0, eps): both come back from (x_t, v) with no amplification of rounding errors."
    s = data.draw(schedules()); x0, eps, t, dtype = data.draw(batches(s))
    xt, v = q_sample(s, x0, t, eps=eps), predict_v(s, x0, eps, t)
    tol = dict(rtol=0, atol=64 * EPS[dtype] * float((x0.abs() + eps.abs() + 1).max()))
    torch.testing.assert_close(predict_x0_from_v(s, xt, t, v), x0, **tol)
    torch.testing.assert_close(predict_eps_from_v(s, xt, t, v), eps, **tol)

@FAST
@given(st.data(), st.sampled_from(['eps', 'x0', 'v']), st.sampled_from(['fixed_small', 'fixed_large', 'learned']))
def test_vlb_terms_are_finite_and_nonnegative(data, prediction, variance):
    "Every L_t of Eq. 5 (a KL for t >= 1, the decoder NLL at t = 0) is finite and >= 0 for any model output."
    s = data.draw(schedules(max_T=200)); x0, eps, t, dtype = data.draw(batches(s, unit=True))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    C = x0.shape[1] * (2 if variance == 'learned' else 1)
    out = torch.randn((x0.shape[0], C, *x0.shape[2:]), generator=g, dtype=dtype)
    if variance == 'learned': out[:, x0.shape[1]:].clamp_(-1, 1)         # the interpolation weight v of Nichol & Dhariwal
    terms = vlb_terms(s, out, x0, q_sample(s, x0, t, eps=eps), t, prediction, variance)
    assert terms.shape == (x0.shape[0],) and finite(terms) and (terms >= -1e-4).all(), terms

@FAST
@given(st.data(), st.sampled_from(['eps', 'x0', 'v']))
def test_simple_loss_zero_at_the_target_and_weights_positive(data, prediction):
    s = data.draw(schedules()); x0, eps, t, dtype = data.draw(batches(s))
    target = {'eps': eps, 'x0': x0, 'v': predict_v(s, x0, eps, t)}[prediction]
    assert (loss_simple(s, prediction, target, x0, eps, t) == 0).all()
    assert (loss_simple(s, prediction, target + 0.1, x0, eps, t) > 0).all()
    for variance in ('fixed_small', 'fixed_large'):
        w = mse_weight(s, prediction, variance)
        assert w.shape == (s.T,) and finite(w) and (w > 0).all()
        var, log_var = model_variance(s, variance, t, x0)
        assert finite(var, log_var) and (var > 0).all()
