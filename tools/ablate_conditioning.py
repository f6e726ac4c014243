"""The conditioning ablation of chapter 9: the `workshop` recipe on its 10-minute CPU budget with the class entering
each residual block as FiLM (scale and shift: the preset's choice, so this is the recorded run in resources/workshop/),
as a learned bias (the book's UNet default), and not at all (an unconditional model). Each is sampled without and
with classifier-free guidance and measured like the recorded run: class-conditioning accuracy and the Fréchet
distance in the MNIST classifier's features, 1,000 samples. Writes resources/ablation/results.json and a markdown
table, results.md.

Usage (from the repository root, after tools/record_workshop.py):
    python tools/ablate_conditioning.py [--data-root ../shared/data/mnist] [--minutes 10]
Trains only the runs whose checkpoint is missing (resources/ablation/<name>/ckpt.pt, git-ignored).
resources/ablation/before_patches/ holds the same ablation run on the recipe before it used patches (the
28 -> 14 -> 7 UNet at 16/32/64 channels, 2,500 steps), where it first chose FiLM.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import torch
from ddpm_nb.data import load_mnist
from ddpm_nb.checkpoint import load_model, write_card
from ddpm_nb.metrics import classifier_for, sample_balanced, class_accuracy, classifier_frechet

BIN = Path(sys.executable).parent

def write_table(rows, out: Path):
    "results.md: the rows of results.json as a markdown table."
    md = ['| conditioning | parameters | steps in budget | guidance | accuracy | Fréchet / floor | sampling 1,000 |', '|---|---|---|---|---|---|---|']
    for r in rows:
        acc = '–' if r['accuracy'] is None else f"{r['accuracy']:.1%}"
        md.append(f"| {r['conditioning']}{' (the recorded run)' if r['recorded_run'] else ''} | {r['parameters']:,} | {r['train_steps']} ({r['train_minutes']} min) | {r['guidance']:g} | {acc} | "
                  f"{r['fd']:.2f} / {r['floor']:.2f} = {r['fd_over_floor']:.2f}× | {r['sampling_time_s']:.0f} s |")
    (out / 'results.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-root', default='../shared/data/mnist')
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--out', default='resources/ablation')
    ap.add_argument('--steps', type=int, default=None, help='DDIM steps (default: those of the recorded workshop evaluation)')
    ap.add_argument('--guidance', type=float, default=None, help='guidance scale (default: that of the recorded workshop evaluation)')
    ap.add_argument('--table-only', action='store_true', help='only re-render results.md from results.json')
    a = ap.parse_args()
    if a.table_only: return write_table(json.loads((Path(a.out) / 'results.json').read_text())['rows'], Path(a.out))
    out, ref = Path(a.out), Path('resources/workshop')
    ev = json.loads((ref / 'card.json').read_text())['metrics']['frechet']['samples']
    steps = a.steps or ev['steps']; w = ev['guidance'] if a.guidance is None else a.guidance
    recorded = json.loads((ref / 'card.json').read_text())['preset']['conditioning']
    runs, cmds = {recorded: ref / 'ckpt.pt'}, []
    for name, cond in [(c, c) for c in ('bias', 'film') if c != recorded] + [('unconditional', 'none')]:
        ckpt = out / name / 'ckpt.pt'; runs[name] = ckpt
        if ckpt.exists(): continue
        cmd = ['train', '--preset', 'workshop', '--presets', 'settings.ini', '--data-root', a.data_root, '--allow-test-as-train',
               '--max-minutes', a.minutes, '--out', out / name, '--no-progress', '--log-every', 100, '--ckpt-every', 500,
               f'conditioning={cond}'] + (['num_classes=0'] if cond == 'none' else [])
        line = 'ddpm-nb ' + ' '.join(map(str, cmd)); print('$', line, flush=True); cmds.append(line)
        subprocess.run([str(BIN / 'ddpm-nb'), *map(str, cmd)], check=True)
        write_card(ckpt.parent / 'card.json', commands=[line])          # the card says how the run was made
    data = load_mnist(a.data_root, train=True, allow_test_as_train=True)
    clf = classifier_for('mnist', a.data_root, image_size=28, progress=False)
    rows = []
    for name, ckpt in runs.items():
        model, diffusion, p = load_model(ckpt)
        card = json.loads((ckpt.parent / 'card.json').read_text())
        for g in ([0.0, w] if model.num_classes else [0.0]):
            x, y, info = sample_balanced(model, diffusion, p, 1000, steps=steps, guidance=g, progress=False)
            fd = classifier_frechet(clf, x, data.images, seed=info['seed'])
            acc = class_accuracy(clf, x, y)['overall'] if y is not None else None
            rows.append(dict(conditioning=name, recorded_run=name == recorded, trained_by=card.get('commands', [None])[0],
                             parameters=card['parameters'], train_steps=card['training']['step'],
                             train_minutes=round(card['training']['wall_time_s'] / 60, 1), guidance=g, sampler=f"DDIM {info['steps']}",
                             accuracy=acc, fd=fd['fd'], floor=fd['floor'], fd_over_floor=fd['fd'] / fd['floor'],
                             sampling_time_s=info['sampling_time_s']))
            print(json.dumps(rows[-1]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'results.json').write_text(json.dumps(dict(rows=rows, commands=cmds + ['python tools/ablate_conditioning.py ' + ' '.join(sys.argv[1:])],
                                                      date=time.strftime('%Y-%m-%d')), indent=1))
    write_table(rows, out)

if __name__ == '__main__': main()
