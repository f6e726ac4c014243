"""One training step of the `workshop` recipe, as `Trainer.train_step` runs it, with each optimizer variant.

    python bench/workshop_step.py [--rounds 20] [--steps 20]   # writes bench/results/workshop-step-<cpu>.json

The 0.16M-parameter workshop model spends a step in many small kernels, so the optimizer's own cost shows: Adam's
CPU default (the single-tensor loop: a chain of elementwise kernels per parameter tensor; torch uses `foreach` by
default only on GPUs) against its fused kernel. The variants train side by side in
one process, alternated in chunks of `--steps` steps round after round (bench/common.py); each trains its own copy
from the same seed on random digits of the preset's shape (the data do not change the arithmetic). Reported: the
median ms per step of each, and the median per-round speed-up over the default.
"""
from __future__ import annotations
import argparse, re, statistics, tempfile
import torch
from common import alternate, machine, quiet, ratio, write
from ddpm_nb.data import ImageDataset
from ddpm_nb.presets import load_preset
from ddpm_nb.train import Trainer


def trainer(p, data, fused: bool) -> Trainer:
    tr = Trainer(p, data, tempfile.mkdtemp(), progress=False)
    tr.opt = torch.optim.Adam(tr.model.parameters(), lr=p.lr, fused=fused)   # the variant under test
    return tr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=int, default=20)
    ap.add_argument('--steps', type=int, default=20, help='training steps per chunk')
    a = ap.parse_args(argv); quiet()
    p = load_preset('workshop', precision='fp32', minutes=0.0, steps=10 ** 6)
    g = torch.Generator().manual_seed(0)
    data = ImageDataset(torch.rand(2048, p.channels, p.image_size, p.image_size, generator=g) * 2 - 1,
                        torch.randint(0, p.num_classes, (2048,), generator=g), p.num_classes, name='random digits')
    trs = {'Adam (CPU default, for-loop)': trainer(p, data, False), 'Adam fused': trainer(p, data, True)}
    def chunk(tr):
        def run():
            for _ in range(a.steps): tr.train_step()
            return a.steps * p.batch_size
        return run
    for tr in trs.values(): chunk(tr)()                                   # warm-up: allocator, oneDNN primitives
    rates = alternate({k: chunk(tr) for k, tr in trs.items()}, a.rounds)
    base = next(iter(trs))
    out = dict(machine=machine(), command='python bench/workshop_step.py', preset='workshop (fp32, batch '
               f'{p.batch_size})', rounds=a.rounds, steps_per_chunk=a.steps, variants={})
    for k in trs:
        ms = statistics.median(1000 * p.batch_size / r for r in rates[k])
        out['variants'][k] = dict(ms_per_step=round(ms, 1), speedup=round(ratio(rates, k, base), 3))
        print(f"{k:<26}{ms:8.1f} ms/step  x{out['variants'][k]['speedup']:.3f}", flush=True)
    cpu = re.sub(r'[^a-z0-9]+', '-', out['machine']['cpu'].lower()).strip('-')
    print('wrote', write(f'workshop-step-{cpu}', out))


if __name__ == '__main__': main()
