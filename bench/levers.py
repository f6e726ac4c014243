"""Which speed levers pay for ddpm_nb's UNet on this machine: each A/B alternated in one process.

    python bench/levers.py [--compile]     # writes bench/results/levers-<device>.json
Each line: variant images/s (median of rounds) and the median per-round speed-up over the baseline.
"""
from __future__ import annotations
import argparse, math, statistics, sys, time
import torch, torch.nn.functional as F
from common import SIZES, alternate, build, eval_chunk, machine, quiet, ratio, train_chunk, write
import ddpm_nb.unet as unet_mod


def ab(label, chunks, rounds, device, out):
    "Alternate the variants in `chunks` (first one is the baseline); record and print speed-ups."
    rates = alternate(chunks, rounds, device)
    base = next(iter(chunks))
    for k in chunks:
        r = dict(img_s=round(statistics.median(rates[k]), 2), speedup=round(ratio(rates, k, base), 3))
        out.setdefault(label, {})[k] = r
        print(f'{label:<28}{k:<26}{r["img_s"]:>9.1f} img/s  x{r["speedup"]:.2f}', flush=True)


def data(s, batch, device, cl=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, s.channels, s.image_size, s.image_size, generator=g).to(device)
    return (x.to(memory_format=torch.channels_last) if cl else x), torch.randint(0, 1000, (batch,), generator=g).to(device)


def fresh(s, device, cl=False):
    torch.manual_seed(0)
    m, _ = build('ddpm_nb', s)
    return m.to(device, memory_format=torch.channels_last if cl else torch.contiguous_format)


def math_sdpa(q, k, v, *a, **kw):
    "Attention with an explicit softmax (what SDPA replaces)."
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=6)
    ap.add_argument('--compile', action='store_true', help='also try torch.compile (inductor; slow to compile on CPU)')
    a = ap.parse_args(argv); quiet()
    dev, B, R, out = a.device, a.batch, a.rounds, {}
    s = SIZES['28x28x1']
    # 1. numerics and memory format, training step
    ch = {}
    for name, cl, amp in [('fp32', False, None), ('channels_last', True, None), ('bf16', False, torch.bfloat16),
                          ('bf16+channels_last', True, torch.bfloat16)]:
        m = fresh(s, dev, cl); x, t = data(s, B, dev, cl)
        ch[name] = train_chunk(m, m, x, t, torch.optim.AdamW(m.parameters(), 1e-4), amp); ch[name]()
    ab('train: format/precision', ch, R, dev, out)
    # 2. the same for sampling evaluations
    ch = {}
    for name, cl, amp in [('fp32', False, None), ('channels_last', True, None), ('bf16', False, torch.bfloat16),
                          ('bf16+channels_last', True, torch.bfloat16)]:
        m = fresh(s, dev, cl).eval(); x, t = data(s, B, dev, cl)
        ch[name] = eval_chunk(m, x, t, amp, evals=2); ch[name]()
    ab('eval: format/precision', ch, R, dev, out)
    # 3. optimizer implementation (fp32 training step)
    ch = {}
    for name, kw in [('AdamW for-loop', dict(foreach=False)), ('AdamW foreach', dict(foreach=True)),
                     ('AdamW fused', dict(fused=True))]:
        m = fresh(s, dev); x, t = data(s, B, dev)
        ch[name] = train_chunk(m, m, x, t, torch.optim.AdamW(m.parameters(), 1e-4, **kw)); ch[name]()
    ab('train: optimizer', ch, R, dev, out)
    # 4. no_grad vs inference_mode
    m = fresh(s, dev).eval(); x, t = data(s, B, dev)
    def ctx_chunk(ctx):
        def run():
            with ctx():
                for _ in range(2): m(x, t)
            return 2 * B
        return run
    ab('eval: autograd context', {'no_grad': ctx_chunk(torch.no_grad), 'inference_mode': ctx_chunk(torch.inference_mode)}, R, dev, out)
    # 5. guidance: one batched call of 2B vs two calls of B
    x2, t2 = torch.cat([x, x]), torch.cat([t, t])
    def two():
        with torch.inference_mode(): m(x, t); m(x, t)
        return 2 * B
    def one():
        with torch.inference_mode(): m(x2, t2)
        return 2 * B
    ab('eval: guidance passes', {'two calls of B': two, 'one call of 2B': one}, R, dev, out)
    # 6. threads (CPU only)
    if dev == 'cpu':
        n = torch.get_num_threads()
        def thr(k):
            def run():
                torch.set_num_threads(k); r = eval_chunk(m, x, t, evals=2)(); torch.set_num_threads(n); return r
            return run
        ab('eval: torch threads', {f'{n} threads': thr(n), '1 thread': thr(1)}, R, dev, out)
    # 7. fused SDPA vs explicit softmax, at 32x32x3 (attention at 16x16: 256 tokens)
    s32 = SIZES['32x32x3']; m32 = fresh(s32, dev).eval(); x32, t32 = data(s32, B, dev)
    def attn(fn):
        def run():
            unet_mod.F.scaled_dot_product_attention = fn
            try: return eval_chunk(m32, x32, t32, evals=1)()
            finally: unet_mod.F.scaled_dot_product_attention = sdpa
        return run
    sdpa = F.scaled_dot_product_attention
    ab('eval 32x32x3: attention', {'explicit softmax': attn(math_sdpa), 'SDPA': attn(sdpa)}, R, dev, out)
    # 8. the time embedding's share of a forward (what caching it across a sampling loop could save at most)
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(5):
            emb = m.time_embed(t)
            for b in m.modules():
                if isinstance(b, unet_mod.ResBlock): b.time_proj(emb)
        t_emb = (time.perf_counter() - t0) / 5
        t0 = time.perf_counter(); m(x, t); m(x, t); t_fwd = (time.perf_counter() - t0) / 2
    out['time embedding share of a forward'] = round(t_emb / t_fwd, 4)
    print(f'time embedding + per-block projections: {100 * t_emb / t_fwd:.2f}% of a forward at batch {B}')
    # 9. torch.compile (inductor), sampling evaluations
    if a.compile:
        torch._dynamo.reset()
        mc = torch.compile(m, fullgraph=True)
        t0 = time.perf_counter()
        with torch.inference_mode(): mc(x, t)
        out['compile seconds (eval graph)'] = round(time.perf_counter() - t0, 1)
        print(f'compile: {out["compile seconds (eval graph)"]} s')
        ab('eval: torch.compile', {'eager': eval_chunk(m, x, t, evals=2), 'inductor': eval_chunk(mc, x, t, evals=2)}, R, dev, out)
        ch = {}
        for name, cl, amp in [('eager bf16+cl', True, torch.bfloat16), ('inductor bf16+cl', True, torch.bfloat16)]:
            mm = fresh(s, dev, cl).eval(); xx, tt = data(s, B, dev, cl)
            if name.startswith('inductor'): mm = torch.compile(mm, fullgraph=True)
            ch[name] = eval_chunk(mm, xx, tt, amp, evals=2); ch[name]()
        ab('eval: compile on bf16+cl', ch, R, dev, out)
    res = dict(machine=machine(dev), command='python bench/levers.py ' + ' '.join(argv or sys.argv[1:]),
               size='28x28x1 (32x32x3 for attention)', batch=B, rounds=R, levers=out)
    print('wrote', write(f'levers-{"gpu" if dev.startswith("cuda") else "cpu"}', res))


if __name__ == '__main__': main()
