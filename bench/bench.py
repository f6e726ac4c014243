"""ddpm_nb against diffusers' UNet2DModel and lucidrains' denoising-diffusion-pytorch Unet, at matched sizes.

    python bench/bench.py                 # CPU: both sizes, fp32 and bf16, four contenders, then end-to-end sampling
    python bench/bench.py --book          # also time `nbdev-test` of the whole book
Writes bench/results/<device>.json (with the machine) and prints a table of ratios ours/peer (> 1: ours faster).
"""
from __future__ import annotations
import argparse, statistics, subprocess, sys, time
import torch
from common import (CONTENDERS, SIZES, alternate, build, eval_chunk, flops_per_image, machine, param_count, quiet,
                    ratio, saved_activation_mb, train_chunk, write, sync)

MODES = {'fp32': dict(amp=None, channels_last=False),                       # everyone's defaults
         'bf16+cl': dict(amp=torch.bfloat16, channels_last=True),           # the same levers for everyone
         'bf16': dict(amp=torch.bfloat16, channels_last=False)}             # bf16 alone (the faster of the two on AMX CPUs)


def peer_table(size, batch, mode, rounds, device):
    "Training and sampling images/s of the three contenders at one size and mode, alternated; activation MB."
    s, cfg = SIZES[size], MODES[mode]
    fmt = torch.channels_last if cfg['channels_last'] else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, s.channels, s.image_size, s.image_size, generator=g).to(device, memory_format=fmt)
    t = torch.randint(0, 1000, (batch,), generator=g).to(device)
    train, evals, rows = {}, {}, {}
    for kind in CONTENDERS:
        torch.manual_seed(0)
        model, call = build(kind, s)
        model.to(device, memory_format=fmt).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        rows[kind] = dict(params=param_count(model), gflops_per_image=round(flops_per_image(call, s) / 1e9, 3),
                          activations_mb=round(saved_activation_mb(model, call, x, t, cfg['amp']), 1))
        if torch.device(device).type == 'cuda':
            torch.cuda.reset_peak_memory_stats(); train_chunk(call, model, x, t, opt, cfg['amp'])(); sync(device)
            rows[kind]['peak_mem_mb'] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
        train[kind] = train_chunk(call, model, x, t, opt, cfg['amp'], steps=1 if device == 'cpu' else 10)
        evals[kind] = eval_chunk(call, x, t, cfg['amp'], evals=2 if device == 'cpu' else 20)
        train[kind](); evals[kind]()                                     # warm-up (allocator, oneDNN/cuDNN plans)
    tr, ev = alternate(train, rounds, device), alternate(evals, rounds, device)
    for kind in CONTENDERS:   # ratios of each of our two networks over every contender (ddpm_nb: the same network as diffusers)
        rows[kind].update(train_img_s=round(statistics.median(tr[kind]), 2), eval_img_s=round(statistics.median(ev[kind]), 2),
                          train_ratio_ours_over=round(ratio(tr, 'ddpm_nb', kind), 3),
                          eval_ratio_ours_over=round(ratio(ev, 'ddpm_nb', kind), 3),
                          train_ratio_p2_over=round(ratio(tr, 'ddpm_nb-p2', kind), 3),
                          eval_ratio_p2_over=round(ratio(ev, 'ddpm_nb-p2', kind), 3))
    return dict(size=size, batch=batch, mode=mode, rounds=rounds, contenders=rows)


def end_to_end(device, n=100):
    "Seconds to sample n images with ancestral-1000, DDIM-50 and DDIM-20 (the digits preset's model, unconditional)."
    from ddpm_nb.diffusion import Diffusion
    from ddpm_nb.presets import load_preset
    from ddpm_nb.schedules import Schedule
    from ddpm_nb.unet import UNet
    torch.manual_seed(0)
    p = load_preset('digits', num_classes=0)
    model = UNet.from_preset(p).to(device).eval()
    d = Diffusion(Schedule.from_name('linear', 1000))
    def run(sampler, steps):
        sync(device); t0 = time.perf_counter()
        d.sample(model, (n, p.channels, p.image_size, p.image_size), sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(0))
        sync(device); return time.perf_counter() - t0
    run('ddim', 5)                                                       # warm-up
    # DDIM runs on both sides of the long ancestral run, so a change of machine load shows in the ratio.
    before = {k: run('ddim', k) for k in (50, 20)}
    anc = run('ancestral', None)
    after = {k: run('ddim', k) for k in (50, 20)}
    ddim = {k: (before[k] + after[k]) / 2 for k in (50, 20)}
    return dict(images=n, model=f'digits preset, unconditional, {p.image_size}x{p.image_size}x{p.channels}', params=param_count(model),
                seconds={'ancestral-1000': round(anc, 2), 'ddim-50': round(ddim[50], 2), 'ddim-20': round(ddim[20], 2)},
                speedup_over_ancestral={'ddim-50': round(anc / ddim[50], 1), 'ddim-20': round(anc / ddim[20], 1)})


def book_time():
    "Wall seconds of `nbdev-test --n-workers 1` over the whole book (run in a subprocess)."
    t0 = time.perf_counter()
    p = subprocess.run([str(__import__('pathlib').Path(sys.executable).parent / 'nbdev-test'), '--n-workers', '1'],
                       capture_output=True, text=True)
    return dict(seconds=round(time.perf_counter() - t0, 1), returncode=p.returncode, tail=p.stdout[-300:] + p.stderr[-300:])


def print_table(res):
    print(f"\n{res['machine']['cpu']}, {res['machine']['cores']} cores, torch {res['machine']['versions']['torch']}, "
          f"device {res['machine']['device']}\n(ratios = ddpm_nb / contender and ddpm_nb-p2 / contender, medians of "
          f"alternated rounds; > 1: ours faster)")
    print(f"{'size':<9}{'batch':>6} {'mode':<8}{'contender':<12}{'params':>11}{'GFLOP':>7}{'train img/s':>13}{'p1/x':>6}{'p2/x':>6}"
          f"{'eval img/s':>12}{'p1/x':>6}{'p2/x':>6}{'act MB':>8}")
    for tbl in res['peers']:
        for kind, r in tbl['contenders'].items():
            print(f"{tbl['size']:<9}{tbl['batch']:>6} {tbl['mode']:<8}{kind:<12}{r['params']:>11,}{r.get('gflops_per_image', 0):>7.2f}"
                  f"{r['train_img_s']:>13.1f}{r['train_ratio_ours_over']:>6.2f}{r.get('train_ratio_p2_over', 0):>6.2f}"
                  f"{r['eval_img_s']:>12.1f}{r['eval_ratio_ours_over']:>6.2f}{r.get('eval_ratio_p2_over', 0):>6.2f}"
                  f"{r['activations_mb']:>8.0f}")
    if 'end_to_end' in res:
        e = res['end_to_end']
        print(f"\nsampling {e['images']} images ({e['model']}): " +
              ', '.join(f'{k} {v:.1f} s' for k, v in e['seconds'].items()) +
              f"; DDIM-50 is {e['speedup_over_ancestral']['ddim-50']}x faster than ancestral-1000")
    if 'book' in res: print(f"nbdev-test of the whole book: {res['book']['seconds']:.0f} s (rc {res['book']['returncode']})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--sizes', default=','.join(SIZES))
    ap.add_argument('--modes', default=None, help=f"comma-separated, from {','.join(MODES)} (default: fp32,bf16 on CPU, "
                    "where channels_last under bf16 loses; all three on a GPU)")
    ap.add_argument('--batch', type=int, default=None, help='default: 32 on CPU, 128 on GPU')
    ap.add_argument('--rounds', type=int, default=None, help='alternation rounds (default: 5 on CPU, 10 on GPU)')
    ap.add_argument('--threads', type=int, default=None, help='torch threads on CPU (default: torch decides)')
    ap.add_argument('--no-e2e', action='store_true', help='skip the end-to-end sampling times')
    ap.add_argument('--e2e-images', type=int, default=100, help='images per end-to-end sampling run')
    ap.add_argument('--book', action='store_true', help='also time nbdev-test of the whole book')
    ap.add_argument('--out', default=None, help='results file name (default: the device type)')
    a = ap.parse_args(argv)
    quiet()
    if a.threads: torch.set_num_threads(a.threads)
    gpu = a.device.startswith('cuda')
    batch, rounds = a.batch or (128 if gpu else 32), a.rounds or (10 if gpu else 5)
    modes = a.modes or (','.join(MODES) if gpu else 'fp32,bf16')
    res = dict(machine=machine(a.device), command='python bench/bench.py ' + ' '.join(argv or sys.argv[1:]), peers=[])
    name = a.out or ('gpu' if gpu else 'cpu')
    for mode in modes.split(','):
        if mode not in MODES: raise SystemExit(f"unknown mode {mode!r}: choose from {', '.join(MODES)}")
        for size in filter(None, a.sizes.split(',')):
            print(f'[{size} {mode}] ...', flush=True)
            res['peers'].append(peer_table(size, batch, mode, rounds, a.device))
            write(name, res)                                         # partial results survive an interrupted run
    if not a.no_e2e: print('[end-to-end sampling] ...', flush=True); res['end_to_end'] = end_to_end(a.device, a.e2e_images)
    if a.book: print('[nbdev-test] ...', flush=True); res['book'] = book_time()
    print_table(res)
    print('wrote', write(name, res))


if __name__ == '__main__': main()
