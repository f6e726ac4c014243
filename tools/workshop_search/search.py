"""Choose the workshop recipe by measurement, on the machine at hand (chapter 9).

    python tools/workshop_search/search.py probe [--variants a,b]      # training / sampling images/s, fp32 and bf16
    python tools/workshop_search/search.py run NAME [--minutes 8 | --steps N] [--evals 20:0.5,20:1.0]

`probe` times each variant's real training step and sampling call on this machine (run it on an otherwise idle
machine). `run` trains one variant with `ddpm-nb train` (a time budget, or a fixed step count so that runs can be
compared without caring what else the machine is doing), evaluates it on held-out digits with chapter 8's metrics
for each sampler setting in --evals (steps:guidance), and appends everything, with the machine, to
tools/workshop_search/results.json. Variants are preset overrides of [workshop], listed in VARIANTS below.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import torch
from ddpm_nb.presets import load_preset
from ddpm_nb.unet import UNet, param_count
from ddpm_nb.diffusion import Diffusion
from ddpm_nb.precision import cpu_info, time_calls
from ddpm_nb.metrics import evaluate_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name('results.json')
VARIANTS = {                                              # name: overrides of the [workshop] preset
    'w16': {},                                            # base 16, mults 2,4, 2x2 patches, FiLM (as recorded before)
    'w16-b64': dict(batch_size=64),
    'w12': dict(base_channels=12),
    'w24': dict(base_channels=24),
    'w16-r2': dict(num_res_blocks=2),
    'w32-124': dict(base_channels=32, channel_mults=(1, 2, 4), patch_size=1),     # no patches, 28 -> 14 -> 7
    'w16-p4': dict(base_channels=16, channel_mults=(4,), patch_size=4),          # 4x4 patches: one 7x7 level
    'w24-p4': dict(base_channels=24, channel_mults=(4,), patch_size=4),
    'w12-b64': dict(base_channels=12, batch_size=64),
    'w16-p4-b64': dict(base_channels=16, channel_mults=(4,), patch_size=4, batch_size=64),
    'w16-b64-lr3': dict(batch_size=64, lr=0.003),
    'w16-b64-noema': dict(batch_size=64, ema_fraction=0.0),
}

def preset(name: str, **more):
    return load_preset('workshop', ROOT / 'settings.ini', **{**VARIANTS[name], **more})

def probe(names):
    "Training and sampling images/s of each variant in fp32 and bf16 (median of a few calls, after a warm-up)."
    rows = []
    for name in names:
        p = preset(name)
        model, d = UNet.from_preset(p), Diffusion.from_preset(p)
        opt = torch.optim.Adam(model.parameters())
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(p.batch_size, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (p.batch_size,), generator=g)
        xs, ts = torch.randn(500, 1, 28, 28, generator=g), torch.randint(0, 1000, (500,), generator=g)
        ys = torch.randint(0, 10, (500,), generator=g)
        def step(bf16):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): loss = d.loss(model, x, y, generator=g)
            opt.zero_grad(); loss.backward(); opt.step()
        @torch.no_grad()
        def call(bf16):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): model(xs, ts, ys)
        tr = time_calls({'fp32': lambda: step(False), 'bf16': lambda: step(True)}, rounds=4, clear=3.0)
        sa = time_calls({'fp32': lambda: call(False), 'bf16': lambda: call(True)}, rounds=3, clear=3.0)
        row = dict(variant=name, overrides=VARIANTS[name], parameters=param_count(model), batch=p.batch_size,
                   train_images_per_s={k: round(p.batch_size / v) for k, v in tr.items()},
                   sample_evals_per_s={k: round(500 / v) for k, v in sa.items()})
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows

def run(name, minutes, steps, evals, data_root):
    "Train `name` with ddpm-nb train, then evaluate each sampler setting on held-out digits."
    out = ROOT / 'outputs' / 'search' / name
    budget = ['--steps', str(steps)] if steps else ['--minutes', str(minutes)]
    over = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in VARIANTS[name].items()]
    cmd = [str(Path(sys.executable).parent / 'ddpm-nb'), 'train', '--preset', 'workshop', '--presets',
           str(ROOT / 'settings.ini'), '--data-root', str(data_root), '--allow-test-as-train', '--out', str(out),
           '--no-progress', '--log-every', '100', '--ckpt-every', '0', *budget, *over]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    card = json.loads((out / 'card.json').read_text())
    res = dict(variant=name, overrides=VARIANTS[name], command=' '.join(cmd[1:]), training=card['training'],
               precision=card['precision'], wall_s=round(time.time() - t0, 1), evals=[])
    for ev in evals:
        s, w = ev.split(':')
        r = evaluate_checkpoint(out / 'ckpt.pt', ['accuracy', 'frechet', 'memorisation'], n=1000, data_root=data_root,
                                steps=int(s), guidance=float(w), progress=False)
        res['evals'].append(dict(sampler=f"DDIM {s}", guidance=float(w), accuracy=r['accuracy']['overall'],
                                 fd=round(r['frechet']['fd'], 4), floor=round(r['frechet']['floor'], 4),
                                 ratio=round(r['frechet']['fd'] / r['frechet']['floor'], 3),
                                 memorisation_ratio=r['memorisation']['median_ratio'],
                                 sampling_s=r['accuracy']['samples']['sampling_time_s'],
                                 precision=r['accuracy']['samples']['precision']))
        print(json.dumps(res['evals'][-1]), flush=True)
    return res

def save(kind, rows):
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc.setdefault(kind, []).append(dict(machine=cpu_info(), date=time.strftime('%Y-%m-%d %H:%M'), rows=rows))
    RESULTS.write_text(json.dumps(doc, indent=1) + '\n')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('what', choices=['probe', 'run'])
    ap.add_argument('name', nargs='?', help='the variant to run')
    ap.add_argument('--variants', default=','.join(VARIANTS), help='probe: comma-separated variants')
    ap.add_argument('--minutes', type=float, default=8.0)
    ap.add_argument('--steps', type=int, default=None, help='a fixed step count instead of the budget')
    ap.add_argument('--evals', default='20:0.5,20:1.0,10:0.5', help='comma-separated steps:guidance')
    ap.add_argument('--data-root', type=Path, default=ROOT.parent / 'shared' / 'data' / 'mnist')
    a = ap.parse_args()
    if a.what == 'probe': save('probe', probe(a.variants.split(',')))
    else: save('runs', [run(a.name, a.minutes, a.steps, a.evals.split(','), a.data_root)])
