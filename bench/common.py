"""Shared pieces of the benchmark: the contenders at matched parameter counts, alternating timers, the machine.

Machines here are noisy (other jobs share the cores), so every comparison runs the contenders in one process,
alternating them in short chunks round after round, and reports medians and the median of per-round ratios.
"""
from __future__ import annotations
import contextlib, datetime, json, os, platform, statistics, subprocess, time, warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
import torch, torch.nn.functional as F

from ddpm_nb.unet import UNet, param_count

RESULTS = Path(__file__).parent / 'results'


@dataclass(frozen=True)
class Size:
    "One benchmark size: our UNet's configuration, and the peers' settings that match its parameter count."
    name: str
    channels: int
    image_size: int
    base: int
    mults: tuple
    attn: tuple          # our attention resolutions, in pixels
    lucid_dim: int       # lucidrains Unet `dim` (same dim_mults) that lands within 10% of our count
    patched: tuple = ()  # ddpm_nb-p2: (base, mults, attn) of our UNet in 2x2 patches, within 10% of our count

    @property
    def attn_levels(self): return [i for i in range(len(self.mults)) if self.image_size // 2 ** i in self.attn]


# 28x28x1: the `mnist` preset without labels; 32x32x3: the paper's CIFAR-10 ladder at half width (64 channels).
# ddpm_nb-p2 is our UNet with `patch_size=2` (chapter 4): the ladder starts at half the side (14 -> 7, 16 -> 8 -> 4),
# one level fewer, widened to the same parameter count (-3.7% and +2.0%).
SIZES = {'28x28x1': Size('28x28x1', 1, 28, 64, (1, 2, 2), (7,), 72, patched=(80, (1, 2), (7,))),
         '32x32x3': Size('32x32x3', 3, 32, 64, (1, 2, 2, 2), (16,), 72, patched=(76, (1, 2, 2), (8,)))}
PAPER_CIFAR10 = Size('paper-cifar10', 3, 32, 128, (1, 2, 2, 2), (16,), 64)


def build(kind: str, s: Size):
    "(model, call) for contender `kind` at size `s`; call(x, t) -> the predicted noise. All unconditional."
    if kind == 'ddpm_nb':
        m = UNet(s.channels, s.image_size, s.base, s.mults, 2, s.attn)
        return m, m
    if kind == 'ddpm_nb-p2':
        base, mults, attn = s.patched
        m = UNet(s.channels, s.image_size, base, mults, 2, attn, patch_size=2)
        return m, m
    if kind == 'diffusers':
        from diffusers import UNet2DModel
        n = len(s.mults)
        down = tuple('AttnDownBlock2D' if i in s.attn_levels else 'DownBlock2D' for i in range(n))
        up = tuple('AttnUpBlock2D' if i in s.attn_levels else 'UpBlock2D' for i in reversed(range(n)))
        m = UNet2DModel(sample_size=s.image_size, in_channels=s.channels, out_channels=s.channels,
                        block_out_channels=tuple(s.base * k for k in s.mults), layers_per_block=2,
                        down_block_types=down, up_block_types=up, attention_head_dim=None)
        return m, lambda x, t: m(x, t, return_dict=False)[0]
    if kind == 'lucidrains':
        from denoising_diffusion_pytorch import Unet
        m = Unet(s.lucid_dim, dim_mults=s.mults, channels=s.channels)
        return m, m
    raise ValueError(f"unknown contender {kind!r}: expected one of {', '.join(CONTENDERS)}")


CONTENDERS = ('ddpm_nb', 'ddpm_nb-p2', 'diffusers', 'lucidrains')


def flops_per_image(call, s: Size) -> int:
    "Forward FLOPs for one image (convolutions, matmuls, attention), counted by torch.utils.flop_counter."
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        call(torch.zeros(1, s.channels, s.image_size, s.image_size), torch.zeros(1, dtype=torch.long))
    return fc.get_total_flops()


def sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()


def alternate(chunks: dict[str, Callable[[], int]], rounds: int, device='cpu') -> dict[str, list[float]]:
    "Run each chunk (returns images done) once per round, rotating the order; images/s per chunk and round."
    names, rates = list(chunks), {k: [] for k in chunks}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            sync(device); t0 = time.perf_counter(); n = chunks[k](); sync(device)
            rates[k].append(n / (time.perf_counter() - t0))
    return rates


def ratio(rates: dict, a: str, b: str) -> float:
    "Median over rounds of rate[a] / rate[b] (each round's pair ran back to back)."
    return statistics.median(x / y for x, y in zip(rates[a], rates[b]))


def autocast(device, dtype):
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()


def train_chunk(call, model, x, t, opt, amp=None, steps=1):
    "A chunk of `steps` training steps (forward, MSE to a fixed target, backward, optimizer step)."
    target = torch.randn_like(x)
    def run():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast(x.device, amp): loss = F.mse_loss(call(x, t).float(), target)
            loss.backward(); opt.step()
        return steps * x.shape[0]
    return run


def eval_chunk(call, x, t, amp=None, evals=1):
    "A chunk of `evals` network evaluations as a sampler makes them (inference mode)."
    def run():
        with torch.inference_mode(), autocast(x.device, amp):
            for _ in range(evals): call(x, t)
        return evals * x.shape[0]
    return run


def saved_activation_mb(model, call, x, t, amp=None) -> float:
    "MB of tensors autograd saves for backward in one training forward (activations; parameters excluded)."
    params, seen, total = {p.untyped_storage().data_ptr() for p in model.parameters()}, set(), 0
    def pack(tsr):
        nonlocal total
        st = tsr.untyped_storage()
        if st.data_ptr() not in seen and st.data_ptr() not in params:
            seen.add(st.data_ptr()); total += st.nbytes()
        return tsr
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t_: t_), autocast(x.device, amp):
        out = call(x, t)
    del out
    return total / 2 ** 20


def machine(device='cpu') -> dict:
    "What ran the benchmark: CPU, cores, threads, torch and peer versions, GPU, load, commit, time."
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) \
        if os.path.exists('/proc/cpuinfo') else platform.processor()
    vers = {'torch': torch.__version__}
    for mod in ('diffusers', 'denoising_diffusion_pytorch', 'ddpm_nb'):
        with contextlib.suppress(Exception):
            import importlib.metadata as md; vers[mod] = md.version(mod.replace('_', '-') if mod != 'ddpm_nb' else mod)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    return dict(date=datetime.datetime.now().isoformat(timespec='seconds'), platform=platform.platform(), cpu=cpu,
                cores=os.cpu_count(), torch_threads=torch.get_num_threads(), device=str(device),
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                loadavg_start=os.getloadavg(), versions=vers, commit=commit)


def write(name: str, result: dict):
    RESULTS.mkdir(exist_ok=True)
    result['machine']['loadavg_end'] = os.getloadavg()
    path = RESULTS / f'{name}.json'
    path.write_text(json.dumps(result, indent=1))
    return path


def quiet():
    warnings.filterwarnings('ignore')
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
