"""Record the CPU workshop run (chapter 9) as a learner runs it: train the `workshop` preset in its time budget on
the MNIST digits it may train on (t10k minus every fifth, `--allow-test-as-train`), let it choose its guidance
weight on those digits (`ddpm-nb tune`), evaluate it on the held-out fifth with the recipe's sampler at that weight,
and render the README's samples, GIFs and sampler comparison into resources/workshop/. Every command and setting
used is written into the run's card (the machine is in `environment.cpu`).

Usage (from the repository root): python tools/record_workshop.py [--data-root ../shared/data/mnist] [--minutes M]
(default: the preset's budget). Run it on an otherwise idle machine: the budget is wall-clock time.
"""
import argparse, json, sys, time
from pathlib import Path
import torch
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ddpm_nb.checkpoint import load_model, write_card
from ddpm_nb.data import load_mnist
from ddpm_nb.forward import noise_sequence
from ddpm_nb.viz import save_gif, sequence_frames, image_grid, FrameText

from ddpm_cli import sh                   # tools/ddpm_cli.py: run one ddpm-nb command, echoed

ROWS = [('ancestral 1000 steps, guidance 0', dict(sampler='ancestral')),
        ('DDIM 50, guidance 0', dict(sampler='ddim', steps=50)),
        ('DDIM 20, guidance 0', dict(sampler='ddim', steps=20)),
        ('DDIM 10, guidance 0', dict(sampler='ddim', steps=10))]
GUIDANCES = (0.5, 1.0, 3.0)              # DDIM 20 rows beside the recipe's own weight (the one `tune` stored)


def rows(p) -> list:
    "ROWS, then DDIM rows at GUIDANCES and at the recipe's weight, in order of weight; the recipe's row is marked."
    ws = sorted({*GUIDANCES, p.guidance})
    recipe = lambda w: ' (the recipe)' if w == p.guidance else ''
    return ROWS + [(f'DDIM {p.sample_steps}, guidance {w:g}{recipe(w)}',
                    dict(sampler='ddim', steps=p.sample_steps, guidance=w)) for w in ws]

def sampler_comparison(model, diffusion, p, path, n_per=10):
    "One row per sampler setting (`rows(p)`), classes 0..9 left to right in each row, same seed; the seconds each took."
    y = torch.arange(n_per) % 10
    settings = rows(p)
    fig, axs = plt.subplots(len(settings), 1, figsize=(6, 1.0 * len(settings) + 0.5))
    timings = {}
    for ax, (name, kw) in zip(axs, settings):
        t0 = time.time()
        x = diffusion.sample(model, (n_per, p.channels, p.image_size, p.image_size), y,
                             generator=torch.Generator().manual_seed(0), **kw)
        timings[name] = round(time.time() - t0, 2)
        ax.imshow(image_grid(x, n_per)[..., 0], cmap='gray')
        ax.set_xticks([(i + 0.5) * p.image_size for i in range(n_per)], [str(int(c)) for c in y], fontsize=7)
        ax.set_yticks([])
        ax.set_title(f'{name}  ({timings[name]:.1f} s for {n_per})', fontsize=8)
    fig.suptitle('workshop run (resources/workshop/card.json), EMA weights, seed 0; columns: class', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return timings

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-root', default='../shared/data/mnist')
    ap.add_argument('--minutes', type=float, default=None, help="the training budget (default: the preset's)")
    ap.add_argument('--out', default='resources/workshop')
    a = ap.parse_args()
    out = Path(a.out)
    ckpt = out / 'ckpt.pt'
    cmds = []
    if not ckpt.exists():
        budget = ['--minutes', a.minutes] if a.minutes else []
        cmds.append(sh('train', '--preset', 'workshop', '--presets', 'settings.ini', '--data-root', a.data_root,
                       '--allow-test-as-train', *budget, '--out', out, '--no-progress', '--log-every', 100,
                       '--ckpt-every', 500))
    # the model chooses its guidance weight on the digits it trained on (chapter 8); eval, sample and the renders use it
    cmds.append(sh('tune', '--ckpt', ckpt, '--data-root', a.data_root, '--allow-test-as-train', '--no-progress'))
    cmds.append(sh('eval', '--ckpt', ckpt, '--data-root', a.data_root, '--allow-test-as-train',
                   '--metrics', 'accuracy,frechet,memorisation', '--n', 1000, '--no-progress'))
    cmds.append(sh('sample', '--ckpt', ckpt, '--n', 100, '--out', out / 'samples.png', '--no-progress'))
    model, diffusion, p = load_model(ckpt)
    # the diffusion sequence: ancestral sampling over all T steps, one image per class, x_t | x0_hat
    states = list(diffusion.sample_steps(model, (10, p.channels, p.image_size, p.image_size), torch.arange(10),
                                         generator=torch.Generator().manual_seed(0)))
    caption = f"ancestral (DDPM) {diffusion.T} steps, guidance 0, EMA weights, seed 0; run 'workshop': {ckpt}"
    save_gif(sequence_frames(states, nrow=10, n_frames=60, text=FrameText(caption=caption + '; images: 0-9'), scale=2),
             out / 'diffusion_10_classes.gif', scale=1)
    for c in range(10):
        one = [dict(t=s['t'], x=s['x'][c:c + 1], x0_hat=s['x0_hat'][c:c + 1]) for s in states]
        text = FrameText(caption=f"{caption}; digit {c} (image {c} of the 10-class GIF)")
        save_gif(sequence_frames(one, nrow=1, n_frames=40, text=text, scale=4), out / f'diffusion_class_{c}.gif',
                 scale=1)
    # for comparison: the forward process run backwards on real digits (same layout)
    real = load_mnist(a.data_root, train=False)
    firsts = torch.stack([real.images[(real.labels == c).nonzero()[0, 0]] for c in range(10)])
    seq = [noise_sequence(diffusion.schedule, firsts[c], range(diffusion.T), generator=torch.Generator().manual_seed(c))
           for c in range(10)]
    fwd = [dict(t=t + 1, x=torch.stack([s[t] for s in seq]), x0_hat=firsts) for t in range(diffusion.T - 1, -1, -1)]
    real_text = FrameText(titles=('xₜ: real digits, noised by q(xₜ | x₀)', 'x₀: the real digits'),
                          caption='REAL DATA, not a model sample: the first MNIST t10k digit of each class, noised '
                                  f'by the forward process (cosine, T = {diffusion.T}) and played backwards, for comparison')
    save_gif(sequence_frames(fwd, nrow=10, n_frames=60, text=real_text, scale=2),
             out / 'forward_reversed_10_classes.gif', scale=1)
    timings = sampler_comparison(model, diffusion, p, out / 'sampler_comparison.png')
    write_card(out / 'card.json', commands=cmds + ['python tools/record_workshop.py ' + ' '.join(sys.argv[1:])],
               renders=dict(samples="samples.png (the recipe's sampler, EMA, one row per class)",
                            gifs='diffusion_10_classes.gif, diffusion_class_<c>.gif (ancestral, all T steps, guidance 0)',
                            forward='forward_reversed_10_classes.gif',
                            sampler_comparison=dict(file='sampler_comparison.png', seconds=timings)))
    print(json.dumps(json.loads((out / 'card.json').read_text()).get('metrics', {}), indent=1, default=str)[:3000])

if __name__ == '__main__': main()
