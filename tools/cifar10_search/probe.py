"""Throughput of four candidate cifar10-cpu UNets (chapter 10): training images/s and sampling evaluations/s, fp32.

Run on an otherwise idle machine: python tools/cifar10_search/probe.py (results were copied into probe.json)."""
import time, torch
from ddpm_nb.presets import load_preset
from ddpm_nb.unet import UNet, param_count
from ddpm_nb.diffusion import Diffusion
torch.manual_seed(0)
base = dict(schedule='cosine', conditioning='film', prediction='v', variance='fixed_small', min_snr_gamma=5.0,
            attention_resolutions=(), dropout=0.0, lr_schedule='cosine', precision='fp32')
for name, kw in [('A b32 r2 p2', dict(base_channels=32, channel_mults=(2, 4), num_res_blocks=2, patch_size=2)),
                 ('C b32 r1 p2', dict(base_channels=32, channel_mults=(2, 4), num_res_blocks=1, patch_size=2)),
                 ('B b24 r1 p2', dict(base_channels=24, channel_mults=(2, 4), num_res_blocks=1, patch_size=2)),
                 ('D b32 124 r1 p2', dict(base_channels=32, channel_mults=(1, 2, 4), num_res_blocks=1, patch_size=2))]:
    p = load_preset('cifar10', **base, **kw, batch_size=64)
    m, d = UNet.from_preset(p), Diffusion.from_preset(p)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x, y = torch.rand(64, 3, 32, 32) * 2 - 1, torch.randint(0, 10, (64,))
    ts = []
    for i in range(5):
        t0 = time.time(); loss = d.loss(m, x, y); opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.time() - t0)
    with torch.no_grad():
        xs, tt, yy = torch.randn(250, 3, 32, 32), torch.randint(0, 1000, (250,)), torch.randint(0, 10, (250,))
        m(xs, tt, yy); t0 = time.time(); m(xs, tt, yy); se = time.time() - t0
    tr = 64 / sorted(ts[1:])[1]
    print(f"{name}: {param_count(m):,} params, train {tr:.0f} img/s, sample {250 / se:.0f} evals/s -> 60 min ~{tr * 3600 / 64:.0f} steps of 64; 1000 guided DDIM20 ~{2 * 20 * 1000 / (250 / se):.0f} s", flush=True)
