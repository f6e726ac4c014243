"Forward process in a fresh process: closed form vs draws, posterior vs an independent derivation, errors."
import pytest, torch
from ddpm_nb.schedules import Schedule, linear_betas, cosine_betas
from ddpm_nb.forward import q_sample, q_mean_var, q_posterior, predict_x0_from_eps, predict_eps_from_x0, noise_sequence

S = Schedule(linear_betas(1000))

def test_q_sample_moments():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((50_000, 1, 2, 2), 0.7, dtype=torch.float64)
    t = torch.full((50_000,), 400)
    xt = q_sample(S, x0, t, generator=g)
    mean, var, _ = q_mean_var(S, x0[:1], t[:1])
    # standard error of the mean ~ sqrt(var/n) < 0.005; tolerance ~ 4 standard errors
    assert (xt.mean(0) - mean[0]).abs().max() < 0.02 and (xt.var(0) - var[0]).abs().max() < 0.02

@pytest.mark.parametrize('shape', [(3, 1, 8, 8), (3, 3, 32, 32), (3, 5)])
def test_shapes_dtypes_roundtrip(shape):
    x0 = torch.rand(shape, dtype=torch.float64) * 2 - 1
    eps = torch.randn(shape, dtype=torch.float64)
    t = torch.tensor([0, 500, 999])
    xt = q_sample(S, x0, t, eps=eps)
    assert xt.shape == shape and xt.dtype == torch.float64
    torch.testing.assert_close(predict_x0_from_eps(S, xt, t, eps), x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(predict_eps_from_x0(S, xt, t, x0), eps, rtol=0, atol=1e-9)
    assert q_sample(S, x0.float(), t).dtype == torch.float32

def test_posterior_matches_joint_gaussian_conditioning():
    s = Schedule(cosine_betas(100))
    t = torch.arange(1, 100)
    x0 = torch.randn(99, 1, 3, 3, dtype=torch.float64); xt = torch.randn(99, 1, 3, 3, dtype=torch.float64)
    mean, var, logvar = q_posterior(s, x0, xt, t)
    v = lambda a: a[t].view(-1, 1, 1, 1)
    s11, s22 = 1 - v(s.alpha_bar_prev), 1 - v(s.alpha_bar)
    s12 = v(s.alphas).sqrt() * s11
    torch.testing.assert_close(mean, v(s.alpha_bar_prev).sqrt() * x0 + s12 / s22 * (xt - v(s.alpha_bar).sqrt() * x0))
    torch.testing.assert_close(var, s11 - s12 ** 2 / s22)
    torch.testing.assert_close(logvar.exp(), var)

def test_noise_sequence_uses_one_noise():
    x0 = torch.zeros(1, 4, 4)
    seq = noise_sequence(S, x0, [10, 999], generator=torch.Generator().manual_seed(0))
    assert seq.shape == (2, 1, 4, 4)
    # with x0 = 0 both frames are the same eps scaled by sqrt(1 - alpha_bar_t)
    torch.testing.assert_close(seq[0] / S.sqrt_one_minus_alpha_bar[10].float(), seq[1] / S.sqrt_one_minus_alpha_bar[999].float())

def test_bad_input():
    x = torch.zeros(2, 1, 4, 4)
    t = torch.zeros(2, dtype=torch.long)
    with pytest.raises(TypeError, match='floating-point'): q_sample(S, x.long(), t)
    with pytest.raises(ValueError, match='t has 3 entries'): q_sample(S, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match='eps has shape'): q_sample(S, x, t, eps=torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match='0..999'): q_sample(S, x, torch.tensor([0, 1000]))
    with pytest.raises(ValueError, match='xt has shape'): q_posterior(S, x, torch.zeros(2, 1, 4), t)
