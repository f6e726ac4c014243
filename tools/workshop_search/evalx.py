import torch, time, math
from ddpm_nb.diffusion import spaced_timesteps
def dpmpp2m(diff, model, shape, y, steps, guidance, g, clip_x0=True):
    d = diff.respace(spaced_timesteps(diff.T, steps))
    ab, abp = d.schedule.alpha_bar.double(), d.schedule.alpha_bar_prev.double()
    x = torch.randn(shape, generator=g)
    prev_x0 = prev_h = None
    with torch.no_grad():
        for i in range(d.T - 1, -1, -1):
            t = torch.full((shape[0],), i, dtype=torch.long)
            x0 = d.p_mean_var(model, x, t, y, guidance, clip_x0)['x0_hat']
            if i == 0: x = x0; break
            a, s, an, sn = ab[i].sqrt(), (1 - ab[i]).sqrt(), abp[i].sqrt(), (1 - abp[i]).sqrt()
            h = (an / sn).log() - (a / s).log()
            c = 0 if prev_x0 is None else float(h / (2 * prev_h))
            D = x0 if prev_x0 is None else (1 + c) * x0 - c * prev_x0
            x = (sn / s).float() * x - (an * torch.expm1(-h)).float() * D
            prev_x0, prev_h = x0, h
    return x
def balanced(diff, model, p, n, steps, guidance, sampler, seed=0, bs=250):
    g = torch.Generator().manual_seed(seed); y = torch.arange(n) % 10; out = []; t0 = time.time()
    for i in range(0, n, bs):
        yb = y[i:i+bs]; shape = (len(yb), p.channels, p.image_size, p.image_size)
        if sampler == 'dpm': out.append(dpmpp2m(diff, model, shape, yb, steps, guidance, g))
        else: out.append(diff.sample(model, shape, yb, steps=steps, sampler=sampler, guidance=guidance, generator=g))
    return torch.cat(out).clamp(-1, 1), y, time.time() - t0
