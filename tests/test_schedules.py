"Schedules in a fresh process: values at both ends of the timestep convention, invariants, bad input."
import pytest, torch
from ddpm_nb.schedules import Schedule, linear_betas, cosine_betas, sigmoid_betas, make_betas, extract, check_t
from ddpm_nb.presets import load_preset

@pytest.mark.parametrize('fn', [linear_betas, cosine_betas, sigmoid_betas])
@pytest.mark.parametrize('T', [1, 2, 10, 1000])
def test_betas_valid_float64(fn, T):
    if fn is linear_betas: b = fn(T)
    else: b = fn(T)
    assert b.dtype == torch.float64 and b.shape == (T,) and ((b > 0) & (b < 1)).all()
    s = Schedule(b)
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()
    assert torch.isfinite(s.log_beta_tilde_clipped).all() and (s.snr > 0).all()

def test_convention_at_both_ends():
    s = Schedule(linear_betas(1000))
    assert s.betas[0].item() == pytest.approx(1e-4, abs=1e-15)     # code index 0 = paper's t=1
    assert s.betas[999].item() == pytest.approx(0.02, abs=1e-15)   # code index T-1 = paper's t=T
    assert s.alpha_bar_prev[0].item() == 1.0 and s.beta_tilde[0].item() == 0.0
    assert s.alpha_bar[-1].item() == pytest.approx(torch.prod(1 - s.betas).item(), rel=1e-12)

def test_posterior_coefficients_definition():
    s = Schedule(cosine_betas(50))
    t = torch.arange(1, 50)
    c0 = s.betas[t] * s.alpha_bar[t - 1].sqrt() / (1 - s.alpha_bar[t])
    ct = (1 - s.alpha_bar[t - 1]) * s.alphas[t].sqrt() / (1 - s.alpha_bar[t])
    torch.testing.assert_close(s.posterior_coef_x0[1:], c0, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(s.posterior_coef_xt[1:], ct, rtol=1e-12, atol=1e-15)

def test_from_alpha_bar_roundtrip_and_monotonicity():
    s = Schedule(cosine_betas(100))
    torch.testing.assert_close(Schedule.from_alpha_bar(s.alpha_bar).betas, s.betas, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match='strictly decrease'): Schedule.from_alpha_bar(torch.tensor([0.9, 0.9]))

def test_bad_input():
    with pytest.raises(ValueError, match='T must be an integer >= 1'): cosine_betas(0)
    with pytest.raises(ValueError, match=r'betas\[0\]'): Schedule(torch.tensor([0.0, 0.1]))
    with pytest.raises(ValueError, match='unknown schedule'): make_betas('exp', 10)
    with pytest.raises(ValueError, match='0..9'): check_t(torch.tensor([10]), 10)
    with pytest.raises(ValueError, match='integer'): check_t(torch.tensor([1.0]), 10)

def test_extract_any_rank_and_device_dtype():
    s = Schedule(cosine_betas(10))
    t = torch.tensor([0, 9])
    assert extract(s.alpha_bar, t, (2, 3, 4, 5, 6)).shape == (2, 1, 1, 1, 1)
    assert s.to(dtype=torch.float32).alpha_bar.dtype == torch.float32

def test_from_preset():
    s = Schedule.from_preset(load_preset('cifar10'))
    assert s.T == 1000 and torch.equal(s.betas, linear_betas(1000))
    s = Schedule.from_preset(load_preset('mnist', T=100))      # linear preset at another T is rescaled by 1000/T
    assert s.betas[-1].item() == pytest.approx(0.2)
