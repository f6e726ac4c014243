"""GPU check (NOT YET RUN: no GPU was lent to the session that wrote it). One short script, ~5 minutes on an H200.

    python bench/gpu.py            # writes bench/results/gpu-paper.json
The paper's CIFAR-10 model (35,746,307 parameters, unconditional) at batch 128: training images/s in
fp32 eager, then bf16 autocast + channels_last + torch.compile, with fused AdamW; model-FLOPs utilisation
(FLOPs of forward + backward counted by torch's FlopCounterMode, over the GPU's dense bf16 peak); and sampling
evaluations/s with CUDA graphs (compile mode 'reduce-overhead'). Reference: the paper's TPU v3-8 ran
21 steps/s x 128 = 2,688 images/s. Target: >= 10,000 training images/s on one H200.
"""
from __future__ import annotations
import statistics, sys, time
import torch, torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from common import PAPER_CIFAR10, alternate, build, machine, quiet, write

PEAK_BF16 = {'H200': 989e12, 'H100': 989e12, 'A100': 312e12}   # dense bf16 tensor-core FLOP/s (vendor sheets)


def step_fn(model, x, t, opt, amp):
    target = torch.randn_like(x)
    def run(n=10):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp):
                loss = F.mse_loss(model(x, t).float(), target)
            loss.backward(); opt.step()
        return n * x.shape[0]
    return run


def main():
    quiet(); assert torch.cuda.is_available(), 'bench/gpu.py needs a CUDA GPU'
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    B, dev = 128, 'cuda'
    x = torch.randn(B, 3, 32, 32, device=dev); t = torch.randint(0, 1000, (B,), device=dev)
    xc = x.to(memory_format=torch.channels_last)
    res = dict(machine=machine(dev), command='python bench/gpu.py', batch=B)
    # FLOPs of one training step (forward + backward), counted once in fp32 eager
    m, _ = build('ddpm_nb', PAPER_CIFAR10); m.to(dev)
    with FlopCounterMode(display=False) as fc: F.mse_loss(m(x, t), x).backward()
    flops = fc.get_total_flops(); res['train_flops_per_image'] = flops / B
    # fp32 (TF32) eager vs bf16 + channels_last + compile, alternated
    eager_opt = torch.optim.AdamW(m.parameters(), 2e-4, fused=True)
    torch.manual_seed(0); mf, _ = build('ddpm_nb', PAPER_CIFAR10)
    mf.to(dev, memory_format=torch.channels_last)
    mc = torch.compile(mf, fullgraph=True)
    fast = step_fn(mc, xc, t, torch.optim.AdamW(mf.parameters(), 2e-4, fused=True), amp=True)
    t0 = time.perf_counter(); fast(3); torch.cuda.synchronize(); res['compile_seconds'] = round(time.perf_counter() - t0, 1)
    eager = step_fn(m, x, t, eager_opt, amp=False); eager(3)
    rates = alternate({'fp32 eager': eager, 'bf16+cl+compile': fast}, rounds=5, device=dev)
    res['train_img_s'] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    best = res['train_img_s']['bf16+cl+compile']
    peak = next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name()), None)
    res['mfu'] = round(best * res['train_flops_per_image'] / peak, 3) if peak else None
    res['vs_paper_tpu_v3_8'] = round(best / 2688, 2)
    # sampling evaluations: eager bf16 vs CUDA graphs (reduce-overhead), same weights
    mf.eval(); mg = torch.compile(mf, mode='reduce-overhead', fullgraph=True)
    def ev(model):
        def run(n=20):
            with torch.inference_mode(), torch.autocast('cuda', dtype=torch.bfloat16):
                for _ in range(n): model(xc, t)
            return n * B
        return run
    for _ in range(3): ev(mg)(2)
    er = alternate({'eager bf16+cl': ev(mf), 'compile+cudagraphs': ev(mg)}, rounds=5, device=dev)
    res['eval_img_s'] = {k: round(statistics.median(v), 1) for k, v in er.items()}
    res['peak_mem_gb'] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    print(res); print('wrote', write('gpu-paper', res))
    print(f"training {best:,.0f} img/s (target 10,000; paper TPU v3-8 2,688), MFU {res['mfu']}")


if __name__ == '__main__': main()
