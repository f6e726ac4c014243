"""Solutions to the workshop's exercises: one function per exercise cell, with the name the exercise cell defines.

The handed-out notebooks hold no solution code. Stuck? Run `show_solution('alpha_bar_mine')` in the notebook (its
first cell defines it): it prints the function of that name from this file (next to the notebook, or from GitHub on
Colab), which you can paste over the exercise cell. Try first: the check's hint names the usual mistake.
`tests/test_workshop.py` runs every notebook with these functions in place of its exercise cells.
"""
import math
import torch
import torch.nn.functional as F
from ddpm_nb.schedules import Schedule, extract
from ddpm_nb.forward import q_posterior, predict_x0_from_eps
from ddpm_nb.elbo import mean_flat
from ddpm_nb.unet import ResBlock

# --- ex_01_schedules: exercise 1

def alpha_bar_mine(betas: torch.Tensor) -> torch.Tensor:
    "alpha_bar_t = prod_{s<=t} (1 - beta_s), one value per index t."
    return torch.cumprod(1 - betas.double(), 0)

def beta_tilde_mine(betas: torch.Tensor) -> torch.Tensor:
    "Posterior variance beta_tilde_t (Eq. 7), one value per index t; alpha_bar before the first step is 1."
    ab = torch.cumprod(1 - betas.double(), 0)
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    return betas.double() * (1 - ab_prev) / (1 - ab)

# --- ex_02_forward: exercise 2

def q_sample_mine(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Eq. 4), with one t per example."
    a = extract(schedule.sqrt_alpha_bar, t, x0.shape).to(x0)
    b = extract(schedule.sqrt_one_minus_alpha_bar, t, x0.shape).to(x0)
    return a * x0 + b * eps

# --- ex_03_elbo: exercise 3

def kl_gauss_mine(mean1, var1, mean2, var2):
    "Elementwise KL(N(mean1, var1) || N(mean2, var2)) in nats, for diagonal Gaussians (variances, not stds)."
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)

def l_t_minus_1_mine(schedule: Schedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                     eps_hat: torch.Tensor) -> torch.Tensor:
    "L_{t-1} per example in bits/dim: KL(q(x_{t-1}|x_t,x0) || p_theta(x_{t-1}|x_t)), sigma_t^2 = beta_tilde_t."
    mean_q, var_q, _ = q_posterior(schedule, x0, xt, t)
    mean_p, var_p, _ = q_posterior(schedule, predict_x0_from_eps(schedule, xt, t, eps_hat), xt, t)
    return mean_flat(kl_gauss_mine(mean_q, var_q, mean_p, var_p)) / math.log(2)

# --- ex_04_unet: exercise 4

def resblock_forward_mine(block: ResBlock, x, emb, y):
    "ResBlock with 'bias' conditioning: GN -> SiLU -> conv -> + time bias + class bias -> GN -> SiLU -> conv, plus skip."
    h = block.conv1(F.silu(block.norm1(x)))                 # (B, C, H, W)
    c = block.time_proj(emb)                                 # (B, C): the time bias
    c = (c + block.class_emb(y))[:, :, None, None]           # (B, C, 1, 1): one value per channel
    h = block.norm2(h + c)
    return block.skip(x) + block.conv2(block.drop(F.silu(h)))

# --- ex_05_diffusion: exercise 5

def l_simple_mine(schedule: Schedule, eps_model, x0: torch.Tensor) -> torch.Tensor:
    "One draw of L_simple (Algorithm 1, Eq. 14): t uniform per image, eps ~ N(0, I), mean (eps - eps_model(x_t, t))^2."
    t = torch.randint(0, schedule.T, (x0.shape[0],))
    eps = torch.randn_like(x0)
    xt = extract(schedule.sqrt_alpha_bar, t, x0.shape).to(x0) * x0 + \
        extract(schedule.sqrt_one_minus_alpha_bar, t, x0.shape).to(x0) * eps
    return ((eps - eps_model(xt, t)) ** 2).mean()

def ddim_step_mine(schedule: Schedule, xt: torch.Tensor, t: torch.Tensor, eps_hat: torch.Tensor) -> torch.Tensor:
    "x_{t-1} from x_t and the predicted noise, deterministic DDIM (eta = 0, DDIM Eq. 12)."
    x0_hat = predict_x0_from_eps(schedule, xt, t, eps_hat)
    ab_prev = extract(schedule.alpha_bar_prev, t, xt.shape).to(xt)
    return ab_prev.sqrt() * x0_hat + (1 - ab_prev).sqrt() * eps_hat

# --- ex_05b_score: exercise 5b

def langevin_step_mine(x: torch.Tensor, score: torch.Tensor, sigma: float, sigma_L: float, step_size: float,
                       z: torch.Tensor) -> torch.Tensor:
    "One annealed-Langevin step at level sigma: x + e score + sqrt(2 e) z with e = step_size sigma^2 / sigma_L^2."
    e = step_size * (sigma / sigma_L) ** 2
    return x + e * score + math.sqrt(2 * e) * z
