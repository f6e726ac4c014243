"""The GPU check, one prepared script (NOT YET RUN ON A GPU: none has been lent to this project so far).

    python bench/gpu.py --pack-data     # here, once: 12,000 CIFAR-10 training images -> bench/data/ (37 MB, git-ignored)
    python bench/gpu.py                 # on the GPU machine (device tool: carry ["bench/data"]): ~6 minutes on an H200
    python bench/gpu.py --tiny          # the same code on the CPU at toy size, ~30 s (tests/test_bench.py runs it)

Two parts, each written to bench/results/ as soon as it is done (`--out` elsewhere):
1. Throughput (`gpu-paper.json`): the paper's CIFAR-10 network (35,746,307 parameters, unconditional) at batch 128,
   training images/s in fp32 eager and in bf16 autocast + channels_last + torch.compile (fused AdamW), alternated;
   model-FLOPs utilisation (forward + backward FLOPs from torch's FlopCounterMode, over the GPU's dense bf16 peak);
   sampling evaluations/s eager and with CUDA graphs (compile mode 'reduce-overhead'). Reference: the paper's TPU
   v3-8 ran 21 steps/s x 128 = 2,688 images/s (Ho et al. 2020, Appendix B). Target: >= 10,000 training images/s.
2. A short real run (`gpu-run/`: card.json, log.csv, ckpt.pt, samples.png; `gpu-run.json`): the `cifar10` preset
   (the paper's config with the book's class bias) trained with the library's Trainer on a `--minutes` budget
   (default 3), bf16, channels_last, compiled, on the packed images; then a grid of 100 class-conditional samples
   (DDIM 50, guidance 1; EMA weights; one labelled row per class) and the sampling time. With --tiny both parts run the same code on the
   CPU: a toy network, the 8x8 digits, a budget of seconds, torch.compile with the 'eager' backend in part 1
   (Dynamo traces the graph, nothing is compiled to machine code; the Trainer is not compiled), 20 samples of DDIM
   10, so a typo or a graph break fails here, not on the GPU.
"""
from __future__ import annotations
import argparse, json, statistics, sys, time
from pathlib import Path
import torch, torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from common import PAPER_CIFAR10, RESULTS, Size, alternate, build, machine, quiet, sync

PEAK_BF16 = {'H200': 989e12, 'H100': 989e12, 'A100': 312e12}   # dense bf16 tensor-core FLOP/s (vendor sheets)
DATA = Path(__file__).parent / 'data' / 'cifar10-train-12000.pt'
TINY = Size('tiny', 3, 32, 8, (1, 2), (16,), 0)                # a toy network, same code path


def step_fn(model, x, t, opt, amp):
    "A chunk of n training steps of `model` (MSE to a fixed target); returns the images done."
    target = torch.randn_like(x)
    def run(n=10):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.mse_loss(model(x, t).float(), target)
            loss.backward(); opt.step()
        return n * x.shape[0]
    return run


def eval_fn(model, x, t):
    "A chunk of n network evaluations under bf16 autocast, as a sampler makes them."
    def run(n=20):
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16):
            for _ in range(n): model(x, t)
        return n * x.shape[0]
    return run


def throughput(size: Size, dev: str, batch: int, rounds: int, backend: str | None) -> dict:
    "Training and sampling images/s of the network `size`: fp32 eager against bf16 + channels_last + compile."
    x = torch.randn(batch, 3, size.image_size, size.image_size, device=dev)
    t = torch.randint(0, 1000, (batch,), device=dev)
    xc, res = x.to(memory_format=torch.channels_last), dict(network=size.name, batch=batch)
    m, _ = build('ddpm_nb', size); m.to(dev)
    with FlopCounterMode(display=False) as fc: F.mse_loss(m(x, t), x).backward()
    res['train_flops_per_image'] = fc.get_total_flops() / batch
    torch.manual_seed(0); mf, _ = build('ddpm_nb', size)
    mf.to(dev, memory_format=torch.channels_last)
    kw = dict(backend=backend) if backend else {}
    fast = step_fn(torch.compile(mf, fullgraph=True, **kw), xc, t, torch.optim.AdamW(mf.parameters(), 2e-4, fused=True),
                   amp=True)
    t0 = time.perf_counter(); fast(3); sync(dev); res['compile_seconds'] = round(time.perf_counter() - t0, 1)
    eager = step_fn(m, x, t, torch.optim.AdamW(m.parameters(), 2e-4, fused=True), amp=False); eager(3)
    rates = alternate({'fp32 eager': eager, 'bf16+cl+compile': fast}, rounds=rounds, device=dev)
    res['train_img_s'] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    mf.eval()
    mg = torch.compile(mf, fullgraph=True, **(kw or dict(mode='reduce-overhead')))
    for _ in range(3): eval_fn(mg, xc, t)(2)
    er = alternate({'eager bf16+cl': eval_fn(mf, xc, t), 'compile+cudagraphs': eval_fn(mg, xc, t)}, rounds=rounds,
                   device=dev)
    res['eval_img_s'] = {k: round(statistics.median(v), 1) for k, v in er.items()}
    return res


def gpu_figures(res: dict, dev: str) -> dict:
    "MFU against the GPU's bf16 peak (None off a known GPU), the ratio to the paper's TPU, peak memory."
    best = res['train_img_s']['bf16+cl+compile']
    name = torch.cuda.get_device_name() if dev.startswith('cuda') else ''
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return dict(mfu=round(best * res['train_flops_per_image'] / peak, 3) if peak else None,
                vs_paper_tpu_v3_8=round(best / 2688, 2),
                peak_mem_gb=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if dev.startswith('cuda') else None)


def pack_data(root: Path, per_class: int = 1200) -> Path:
    "The first `per_class` training images of each CIFAR-10 class as uint8 (37 MB for 12,000): small enough to carry."
    from ddpm_nb.data import load_cifar10
    ds = load_cifar10(root, train=True, max_per_class=per_class)
    k = ((ds.images + 1) * 127.5).round().to(torch.uint8)            # the exact inverse of scale_to_unit(k, 255)
    DATA.parent.mkdir(exist_ok=True)
    torch.save(dict(images=k, labels=ds.labels.to(torch.uint8), classes=list(ds.classes), source=str(root)), DATA)
    return DATA


def load_data(tiny: bool):
    "The training images of part 2: the packed CIFAR-10 subset, or (tiny) the 8x8 digits resized to 32x32 RGB."
    from ddpm_nb.data import ImageDataset, load_digits, scale_to_unit
    if tiny:
        d = load_digits(image_size=32)
        return ImageDataset(d.images.expand(-1, 3, -1, -1).contiguous(), d.labels, 10, name='digits 32x32 RGB (tiny)')
    if not DATA.exists(): sys.exit(f"{DATA} is missing: run `python bench/gpu.py --pack-data` where CIFAR-10 is")
    s = torch.load(DATA, weights_only=True)
    return ImageDataset(scale_to_unit(s['images']), s['labels'].long(), 10, hflip=True, classes=s['classes'],
                        name=f"cifar10 train, first {len(s['labels']) // 10} per class ({s['source']})")


def train_run(tiny: bool, dev: str, minutes: float, out: Path) -> dict:
    "Part 2: the `cifar10` preset on a time budget with the library's Trainer, then 100 guided samples in a grid."
    from ddpm_nb.presets import load_preset
    from ddpm_nb.train import Trainer
    from ddpm_nb.checkpoint import load_model
    from ddpm_nb.metrics import sample_balanced
    from ddpm_nb.viz import save_grid
    small = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(16,), T=50,
                 batch_size=8) if tiny else {}
    p = load_preset('cifar10', **small, minutes=minutes, precision='bf16')
    data = load_data(tiny)
    tr = Trainer(p, data, out, device=dev, compile=not tiny, channels_last=True, log_every=10 if tiny else 200,
                 ckpt_every=0, progress=False)
    rec = tr.fit()
    model, diffusion, p = load_model(out / 'ckpt.pt', device=dev)
    n, steps = (20, 10) if tiny else (100, 50)
    x, y, info = sample_balanced(model, diffusion, p, n, 'ddim', steps, 1.0, seed=0, batch_size=n, progress=False)
    cap = (f"cifar10 preset, {rec['step']:,} steps in {minutes:g} min on {machine(dev)['gpu'] or 'CPU'}; "
           f"DDIM {steps}, guidance 1, EMA weights, seed 0; {info['sampling_time_s']} s for {n}")
    order = torch.argsort(y, stable=True)                         # classes come in turn: one row per class instead
    save_grid(x[order], out / 'samples.png', nrow=n // 10, row_labels=data.classes, caption=cap)
    return dict(training=rec, data=data.name, images=len(data), preset='cifar10', overrides=small, sampling=info,
                samples=str(out / 'samples.png'))


def write(out: Path, name: str, res: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (path := out / f'{name}.json').write_text(json.dumps(res, indent=1, default=str) + '\n')
    print('wrote', path, flush=True)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tiny', action='store_true', help='the same code on the CPU at toy size (a test, not a benchmark)')
    ap.add_argument('--minutes', type=float, default=None, help='the training budget of part 2 (default 3; tiny 0.1)')
    ap.add_argument('--out', type=Path, default=RESULTS, help='results folder (default bench/results)')
    shared = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10'     # ../shared/data/cifar10
    ap.add_argument('--pack-data', type=Path, nargs='?', const=shared, default=None, metavar='CIFAR10_ROOT', help=f'write {DATA.name} from the CIFAR-10 training images and stop')
    a = ap.parse_args(argv)
    if a.pack_data: return print('wrote', pack_data(a.pack_data))
    quiet()
    if not a.tiny and not torch.cuda.is_available(): sys.exit('bench/gpu.py needs a CUDA GPU (or --tiny, on the CPU)')
    if not a.tiny:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    dev, minutes = ('cpu', a.minutes or 0.1) if a.tiny else ('cuda', a.minutes or 3.0)
    head = dict(machine=machine(dev), command='python bench/gpu.py ' + ' '.join(argv or sys.argv[1:]), tiny=a.tiny)
    res = throughput(TINY if a.tiny else PAPER_CIFAR10, dev, 4 if a.tiny else 128, 2 if a.tiny else 5,
                     'eager' if a.tiny else None)
    res.update(gpu_figures(res, dev))
    write(a.out, 'gpu-paper', {**head, **res})
    best = res['train_img_s']['bf16+cl+compile']
    print(f"training {best:,.0f} img/s (target 10,000; paper TPU v3-8 2,688), MFU {res['mfu']}", flush=True)
    run = train_run(a.tiny, dev, minutes, a.out / 'gpu-run')
    write(a.out, 'gpu-run', {**head, **run})
    print(f"{run['training']['step']:,} steps in {minutes:g} min; samples in {run['samples']}")


if __name__ == '__main__': main()
