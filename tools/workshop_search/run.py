"""Experiment: train workshop variants for M minutes, then accuracy + FD at several samplers."""
import sys, json, time, torch, argparse
from pathlib import Path
from ddpm_nb.presets import load_preset
from ddpm_nb.data import load_mnist
from ddpm_nb.train import Trainer, load_model
import ddpm_nb.train as T
from ddpm_nb.metrics import classifier_for, sample_balanced, class_accuracy, classifier_frechet
ap = argparse.ArgumentParser()
ap.add_argument('name'); ap.add_argument('--over', default='{}'); ap.add_argument('--minutes', type=float, default=4)
ap.add_argument('--bf16', action='store_true'); ap.add_argument('--minsnr', type=float, default=0)
ap.add_argument('--cl', action='store_true'); ap.add_argument('--evals', default='[(20,0.0),(20,0.5),(10,1.0)]')
ap.add_argument('--cosine', action='store_true'); ap.add_argument('--raw', action='store_true'); ap.add_argument('--eval-only', action='store_true'); ap.add_argument('--sample-bf16', action='store_true')
a = ap.parse_args()
out = Path('/tmp/exp') / a.name
over = eval(a.over)
data = load_mnist('/work/shared/data/mnist', allow_test_as_train=True)
if not a.eval_only:
    p = load_preset('workshop', '/work/main/settings.ini', **over)
    tr = Trainer(p, data, out, channels_last=a.cl, progress=False, log_every=100, ckpt_every=0)
    if a.bf16 or a.minsnr:
        src = T._train_step
        orig = tr.diffusion.training_losses
        S = tr.diffusion.schedule
        def tl(net, x0, y, t=None, eps=None, **kw):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=a.bf16):
                r = orig(net, x0, y, t=t, eps=eps, **kw)
            if a.minsnr:
                ab = S.alphas_cumprod[r['t']] if hasattr(S, 'alphas_cumprod') else S.alpha_bar[r['t']]
                snr = ab / (1 - ab)
                w = snr.clamp(max=a.minsnr) / (snr + 1) if p.prediction == 'v' else snr.clamp(max=a.minsnr) / snr
                r = dict(r, loss=r['loss'].float() * w.float())
            return r
        object.__setattr__(tr.diffusion, "training_losses", tl)
    if a.cosine:
        import math
        W, N = p.warmup, p.steps
        tr.lr_sched = torch.optim.lr_scheduler.LambdaLR(tr.opt, lambda s: min((s + 1) / W, 0.5 * (1 + math.cos(math.pi * min(s, N) / N))))
    s = tr.fit(max_minutes=a.minutes)
    print('TRAIN', a.name, json.dumps(s), flush=True)
model, diff, p = load_model(out / 'ckpt.pt', use_ema=not a.raw)
clf = classifier_for('mnist', '/work/shared/data/mnist', image_size=28, progress=False)
res = {}
import sys; sys.path.insert(0, '/tmp/exp'); from evalx import balanced
for ev in eval(a.evals):
    steps, w = ev[:2]; sampler = ev[2] if len(ev) > 2 else 'ddim'
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=a.sample_bf16):
        x, y, tt = balanced(diff, model, p, 1000, steps, w, sampler)
    x = x.float(); info = dict(sampling_time_s=round(tt, 1))
    acc = class_accuracy(clf, x, y)['overall']; fd = classifier_frechet(clf, x, data.images)
    from ddpm_nb.metrics import feature_stats, frechet_distance
    full = frechet_distance(*feature_stats(clf, x), *feature_stats(clf, data.images))
    print(f"EVAL {a.name} {sampler} steps={steps} w={w} acc={acc:.3f} fd={fd['fd']:.3f} floor={fd['floor']:.3f} ratio={fd['fd']/fd['floor']:.2f} fd_vs_10k={full:.3f} t={info['sampling_time_s']}s", flush=True)
