"""Record the CPU workshop run (chapter 9): train the `workshop` preset for at most 10 minutes, evaluate it,
and render the README's samples, GIFs and sampler comparison into resources/workshop/. Every command and
setting used is written into the run's card.

Usage (from the repository root): python tools/record_workshop.py [--data-root ../shared/data/mnist] [--minutes 10]
Also measures the same evaluation with bf16 sampling into bf16_sampling.json (alone: --bf16-only).
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import torch
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ddpm_nb.checkpoint import load_model, write_card
from ddpm_nb.data import load_mnist
from ddpm_nb.forward import noise_sequence
from ddpm_nb.viz import save_grid, save_gif, sequence_frames, image_grid

BIN = Path(sys.executable).parent

def sh(*args):
    "Run a ddpm-nb command, echoing it; returns the command line for the card."
    line = 'ddpm-nb ' + ' '.join(map(str, args))
    print('$', line, flush=True)
    subprocess.run([str(BIN / 'ddpm-nb'), *map(str, args)], check=True)
    return line

def sampler_comparison(model, diffusion, p, path, n_per=10):
    "One row per setting: ancestral 1000, DDIM 50/20/10, and DDIM 20 with guidance 0/0.5/1/3; classes 0..9 in each row."
    y = torch.arange(n_per) % 10
    rows = [('ancestral, 1000 steps', dict(sampler='ancestral')), ('DDIM, 50 steps', dict(sampler='ddim', steps=50)),
            ('DDIM, 20 steps', dict(sampler='ddim', steps=20)), ('DDIM, 10 steps', dict(sampler='ddim', steps=10)),
            ('DDIM 20, guidance 0.5', dict(sampler='ddim', steps=20, guidance=0.5)),
            ('DDIM 20, guidance 1', dict(sampler='ddim', steps=20, guidance=1.0)), ('DDIM 20, guidance 3', dict(sampler='ddim', steps=20, guidance=3.0))]
    fig, axs = plt.subplots(len(rows), 1, figsize=(6, 1.0 * len(rows) + 0.3))
    timings = {}
    for ax, (name, kw) in zip(axs, rows):
        t0 = time.time()
        x = diffusion.sample(model, (n_per, p.channels, p.image_size, p.image_size), y, generator=torch.Generator().manual_seed(0), **kw)
        timings[name] = round(time.time() - t0, 2)
        ax.imshow(image_grid(x, n_per)[..., 0], cmap='gray'); ax.axis('off'); ax.set_title(f'{name}  ({timings[name]:.1f} s for {n_per})', fontsize=8)
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)
    return timings

def bf16_sampling(ckpt: Path, data_root, steps, guidance, out: Path):
    """The card's evaluation again with the network calls under bf16 autocast (--precision bf16), on a copy of the
    checkpoint so the card keeps its float32 numbers; accuracy, Frechet distance and time go to `out`."""
    import shutil, tempfile
    from ddpm_nb.metrics import evaluate_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ckpt, Path(tmp) / 'ckpt.pt')
        r = evaluate_checkpoint(Path(tmp) / 'ckpt.pt', ['accuracy', 'frechet'], n=1000, data_root=data_root, allow_test_as_train=True,
                                steps=steps, guidance=guidance, precision='bf16', progress=False, device='cpu')
    fp32 = json.loads((ckpt.parent / 'card.json').read_text())['metrics']
    res = dict(what='the recorded evaluation repeated with the sampler network calls in bf16 (for_sampling, chapter 7)',
               command=f'evaluate_checkpoint(copy of {ckpt}, accuracy+frechet, n=1000, steps={steps}, guidance={guidance}, precision=bf16)',
               bf16=dict(accuracy=r['accuracy']['overall'], fd=r['frechet']['fd'], floor=r['frechet']['floor'],
                         sampling_time_s=r['accuracy']['samples']['sampling_time_s']),
               fp32=dict(accuracy=fp32['accuracy']['overall'], fd=fp32['frechet']['fd'], floor=fp32['frechet']['floor'],
                         sampling_time_s=fp32['accuracy']['samples']['sampling_time_s']))
    out.write_text(json.dumps(res, indent=1) + '\n')
    print(json.dumps(res, indent=1))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-root', default='../shared/data/mnist')
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--out', default='resources/workshop')
    ap.add_argument('--eval-steps', type=int, default=20)
    ap.add_argument('--guidance', type=float, default=0.5)
    ap.add_argument('--bf16-only', action='store_true', help='only (re)measure bf16 sampling of the recorded checkpoint')
    a = ap.parse_args()
    out = Path(a.out); ckpt = out / 'ckpt.pt'
    if a.bf16_only: return bf16_sampling(ckpt, a.data_root, a.eval_steps, a.guidance, out / 'bf16_sampling.json')
    cmds = []
    if not ckpt.exists():   # no --channels-last: with bf16 autocast it made this small model slower here (396 vs 466 images/s)
        cmds.append(sh('train', '--preset', 'workshop', '--presets', 'settings.ini', '--data-root', a.data_root, '--allow-test-as-train',
                       '--max-minutes', a.minutes, '--out', out, '--no-progress', '--log-every', 100, '--ckpt-every', 500))
    cmds.append(sh('eval', '--ckpt', ckpt, '--data-root', a.data_root, '--allow-test-as-train', '--metrics', 'accuracy,frechet',
                   '--n', 1000, '--steps', a.eval_steps, '--guidance', a.guidance))
    cmds.append(sh('sample', '--ckpt', ckpt, '--n', 100, '--nrow', 10, '--steps', 50, '--out', out / 'samples.png'))
    model, diffusion, p = load_model(ckpt)
    # the diffusion sequence: ancestral sampling over all T steps, one image per class, x_t | x0_hat
    states = list(diffusion.sample_steps(model, (10, p.channels, p.image_size, p.image_size), torch.arange(10), generator=torch.Generator().manual_seed(0)))
    save_gif(sequence_frames(states, nrow=10, n_frames=60), out / 'diffusion_10_classes.gif', scale=2)
    for c in range(10):
        one = [dict(x=s['x'][c:c + 1], x0_hat=s['x0_hat'][c:c + 1]) for s in states]
        save_gif(sequence_frames(one, nrow=1, n_frames=40), out / f'diffusion_class_{c}.gif', scale=4)
    # for comparison: the forward process run backwards on real digits (same layout)
    real = load_mnist(a.data_root, train=False)
    firsts = torch.stack([real.images[(real.labels == c).nonzero()[0, 0]] for c in range(10)])
    seq = [noise_sequence(diffusion.schedule, firsts[c], range(diffusion.T), generator=torch.Generator().manual_seed(c)) for c in range(10)]
    fwd = [dict(x=torch.stack([s[t] for s in seq]), x0_hat=firsts) for t in range(diffusion.T - 1, -1, -1)]
    save_gif(sequence_frames(fwd, nrow=10, n_frames=60), out / 'forward_reversed_10_classes.gif', scale=2)
    timings = sampler_comparison(model, diffusion, p, out / 'sampler_comparison.png')
    write_card(out / 'card.json', commands=cmds + ['python tools/record_workshop.py ' + ' '.join(sys.argv[1:])],
               renders=dict(samples='samples.png (DDIM 50, EMA)', gifs='diffusion_10_classes.gif, diffusion_class_<c>.gif (ancestral, all T steps)',
                            forward='forward_reversed_10_classes.gif', sampler_comparison=dict(file='sampler_comparison.png', seconds=timings)))
    print(json.dumps(json.loads((out / 'card.json').read_text()).get('metrics', {}), indent=1, default=str)[:3000])
    bf16_sampling(ckpt, a.data_root, a.eval_steps, a.guidance, out / 'bf16_sampling.json')

if __name__ == '__main__': main()
