"""The patch comparison of chapter 9: the `workshop` recipe before patches (28 -> 14 -> 7 at 16/32/64 channels) and
with 2x2 patches (the 28x28 level dropped, 14 -> 7 at 32/64 channels, `patch_size = 2`), each trained for the
same 10 minutes on the same 2 cores and measured the same way (DDIM 20, guidance 0.5, 1,000 samples); and, to
separate "more steps" from "better steps", the patched UNet given only the unpatched run's 2,500 steps (its lr
decay compressed to match). Reads the run cards and writes resources/patches/results.json and results.md.

Usage (from the repository root): python tools/compare_patches.py
The runs themselves: resources/patches/workshop_p1/card.json (the workshop recording before patches),
resources/patches/workshop_p2/card.json and workshop_p2_2500_steps/card.json (commands in the cards).
"""
import json
from pathlib import Path

OUT = Path('resources/patches')
RUNS = {'no patches (28 → 14 → 7, 16/32/64 ch.)': OUT / 'workshop_p1' / 'card.json',
        '2×2 patches (14 → 7, 32/64 ch.)': OUT / 'workshop_p2' / 'card.json',
        '2×2 patches, stopped at the unpatched run\'s 2,500 steps': OUT / 'workshop_p2_2500_steps' / 'card.json'}

def row(name, card_path):
    "One table row from a run card: size, speed, steps in the budget, accuracy, Fréchet ratio, sampling time."
    c = json.loads(card_path.read_text())
    tr, m = c['training'], c['metrics']
    fd = m['frechet']
    return dict(run=name, card=str(card_path), patch_size=c['preset'].get('patch_size', 1),
                channel_mults=c['preset']['channel_mults'], parameters=c['parameters'], train_steps=tr['step'],
                train_minutes=round(tr['wall_time_s'] / 60, 1), images_per_s=round(tr['images_per_s']),
                accuracy=m['accuracy']['overall'], fd=fd['fd'], floor=fd['floor'], fd_over_floor=round(fd['fd'] / fd['floor'], 2),
                sampling_time_s=fd['samples']['sampling_time_s'], sampler=fd['samples'])

def main():
    rows = [row(k, v) for k, v in RUNS.items() if v.exists()]
    md = ['| UNet | parameters | training images/s | steps (training time) | accuracy | Fréchet / floor | sampling 1,000 |',
          '|---|---|---|---|---|---|---|']
    md += [f"| {r['run']} | {r['parameters']:,} | {r['images_per_s']:,} | {r['train_steps']:,} ({r['train_minutes']} min) | "
           f"{r['accuracy']:.1%} | {r['fd']:.2f} / {r['floor']:.2f} = {r['fd_over_floor']:.2f}× | {r['sampling_time_s']:.0f} s |" for r in rows]
    (OUT / 'results.json').write_text(json.dumps(dict(rows=rows), indent=1) + '\n')
    (OUT / 'results.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

if __name__ == '__main__': main()
