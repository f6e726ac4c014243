"""Choose a CPU recipe by measurement, on the machine at hand: `workshop` (chapter 9) or `cifar10-cpu` (chapter 10).

    python tools/workshop_search/search.py probe [--base B] [--variants a,b]   # training / sampling images/s, fp32 and bf16
    python tools/workshop_search/search.py run NAME [--base B] [--minutes 8 | --steps N | --equal-minutes M]
                                               [--evals 20:0.5,20:1.0] [--n 1000]
    python tools/workshop_search/search.py score NAME [--base B] [--evals ...] [--seed S]   # NAME's latest run again
    python tools/workshop_search/search.py baseline [--base B]   # real training images scored as if samples
    python tools/workshop_search/search.py yardstick [--base B] [--draws 5] [--seed FIRST]   # images it never saw
    python tools/workshop_search/search.py references NAME [--evals ...]   # held-out vs training-digit reference
    (any of them with --results FILE: read and append there instead of the base's results.json; one file per machine)

`probe` times each variant's real training step and sampling call on this machine (run it on an otherwise idle
machine). `run` trains one variant with `ddpm-nb train` (a time budget, or a fixed step count so that runs can be
compared without caring what else the machine is doing), evaluates it on held-out images with chapter 8's metrics
for each sampler setting in --evals (steps:guidance), and appends everything, with the machine, to the base's
results file. `--equal-minutes M` is an equal-time comparison that does not care what else runs: the step count is
M minutes at the variant's fp32 training rate in this machine's latest probe (run `probe` first, on an idle
machine), so a variant twice as fast gets twice the steps. `score` evaluates the checkpoint of a variant's latest
run again and replaces that row's evals of the same settings: for a metric added after the run (the same seed draws
the same samples), or with `--seed` for another draw of samples. `baseline` scores class-balanced real training
images as if they were samples: a yardstick for the Fréchet target. `yardstick` scores what a perfect model would
draw: real training images that the classifier never saw (it is retrained without them, each draw), beside images
it did see, by the same classifier. `references` scores one draw of samples of a variant's latest checkpoint per
setting against the held-out and against the training images: could a choice of guidance skip the held-out ones?
Variants are preset overrides of the base, listed in BASES below.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import torch
from ddpm_nb.presets import load_preset
from ddpm_nb.unet import UNet, param_count
from ddpm_nb.diffusion import Diffusion
from ddpm_nb.precision import cpu_info, time_calls
from ddpm_nb.metrics import evaluate_checkpoint, classifier_for, classifier_frechet, train_classifier, class_accuracy
from ddpm_nb.data import load_splits, ImageDataset
from ddpm_nb.checkpoint import load_model
from ddpm_nb.metrics import sample_balanced
from ddpm_nb.precision import sampling_precision, for_sampling

ROOT = Path(__file__).resolve().parents[2]
WORKSHOP = {    # name: overrides of the [workshop] preset, stated in full for the keys the preset has changed over time
    'w16': dict(base_channels=16, batch_size=128),        # base 16, mults 2,4, 2x2 patches, FiLM (the first recipe)
    'w16-b64': dict(base_channels=16, batch_size=64),
    'w12': dict(base_channels=12, batch_size=128),
    'w24': dict(base_channels=24, batch_size=128),
    'w16-r2': dict(base_channels=16, batch_size=128, num_res_blocks=2),
    'w32-124': dict(base_channels=32, channel_mults=(1, 2, 4), patch_size=1, batch_size=128),  # no patches, 28 -> 7
    'w16-p4': dict(base_channels=16, channel_mults=(4,), patch_size=4, batch_size=128),    # 4x4 patches: one 7x7 level
    'w24-p4': dict(base_channels=24, channel_mults=(4,), patch_size=4, batch_size=128),
    'w12-b64': dict(base_channels=12, batch_size=64),     # the recipe for most of 2026-12-01
    'w16-p4-b64': dict(base_channels=16, channel_mults=(4,), patch_size=4, batch_size=64),
    'w16-b64-lr3': dict(base_channels=16, batch_size=64, lr=0.003),
    'w16-b64-noema': dict(base_channels=16, batch_size=64, ema_fraction=0.0),
    'w12-b64-lr3': dict(base_channels=12, batch_size=64, lr=0.003),
    'w12-b32': dict(base_channels=12, batch_size=32),
    'w8-b64': dict(base_channels=8, batch_size=64),       # the recipe since the evening of 2026-12-01
    'w8-b32': dict(base_channels=8, batch_size=32),
    'w8-b64-s1': dict(base_channels=8, batch_size=64, seed=1),      # the recipe, another training seed
    'w12-b64-s1': dict(base_channels=12, batch_size=64, seed=1),
    'w8-b64-fp32': dict(base_channels=8, batch_size=64, precision='fp32'),   # the recipe, float32 where auto picks bf16
    'w8-b64-long': dict(base_channels=8, batch_size=64),  # the recipe, run with a longer --minutes
    'w8-b64-short': dict(base_channels=8, batch_size=64), # the recipe, run with a shorter --minutes
    'w12-b64-long': dict(base_channels=12, batch_size=64),
    'w8-b64-n3500': dict(base_channels=8, batch_size=64),   # the recipe, run with --steps 3500 (a slow laptop's 8 min)
    'w8-b64-n12000': dict(base_channels=8, batch_size=64),  # ... and --steps 12000 (a fast one's)
    'w8-b64-n7000': dict(base_channels=8, batch_size=64),   # ... and --steps 7000: a third model to test a rule on
    'w8-b64-snr0': dict(base_channels=8, batch_size=64, min_snr_gamma=0),    # the recipe with plain v-prediction loss
    'w8-b64-snr20': dict(base_channels=8, batch_size=64, min_snr_gamma=20),  # ... with min-SNR-20 weights
    'w8-b64-snr20-s1': dict(base_channels=8, batch_size=64, min_snr_gamma=20, seed=1),  # ... another training seed
    'w8-b64-snr20-fp32': dict(base_channels=8, batch_size=64, min_snr_gamma=20, precision='fp32'),  # ... in fp32
    'w8-b64-snr50-fp32': dict(base_channels=8, batch_size=64, min_snr_gamma=50, precision='fp32'),
    'w8-b64-snr100-fp32': dict(base_channels=8, batch_size=64, min_snr_gamma=100, precision='fp32'),
    'w8-b64-eps-fp32': dict(base_channels=8, batch_size=64, min_snr_gamma=1e5, precision='fp32'),  # gamma above every
    # SNR_t of the cosine schedule (max 2.4e4): weights SNR/(SNR+1) on the v loss, which is Ho et al.'s eps loss
}
CIFAR10_CPU = {                                           # name: overrides of the [cifar10-cpu] preset
    'D': {},                                              # the recipe: base 32, mults 1,2,4, 1 block, 2x2 patches
    'D-eps': dict(prediction='eps'),                      # epsilon-prediction (min-SNR-5 weights for eps)
    'D-attn4': dict(attention_resolutions=(4,)),          # self-attention at the coarsest 4x4 level
    'D-lr2': dict(lr=0.002),
    'D-b128': dict(batch_size=128),
    'C': dict(channel_mults=(2, 4)),                      # two levels, 16 -> 8, 64 and 128 channels
    'A': dict(channel_mults=(2, 4), num_res_blocks=2),    # the 3.6M-parameter start
}
BASES = {   # base preset: variants, results file, default data folder, extra `ddpm-nb train` arguments
    'workshop': (WORKSHOP, ROOT / 'tools' / 'workshop_search' / 'results.json', ROOT.parent / 'shared' / 'data' / 'mnist',
                 ['--allow-test-as-train']),
    'cifar10-cpu': (CIFAR10_CPU, ROOT / 'tools' / 'cifar10_search' / 'results.json',
                    ROOT.parent / 'shared' / 'data' / 'cifar10', []),
}

def preset(base: str, name: str, **more):
    return load_preset(base, ROOT / 'settings.ini', **{**BASES[base][0][name], **more})

def probe(base, names, precisions=('fp32', 'bf16'), rounds=4):
    "Training and sampling images/s of each variant in fp32 and bf16 (median of a few calls, after a warm-up)."
    rows = []
    for name in names:
        p = preset(base, name)
        model, d = UNet.from_preset(p), Diffusion.from_preset(p)
        opt = torch.optim.Adam(model.parameters())
        g = torch.Generator().manual_seed(0)
        shape = (p.channels, p.image_size, p.image_size)
        x, y = torch.rand(p.batch_size, *shape, generator=g) * 2 - 1, torch.randint(0, 10, (p.batch_size,), generator=g)
        xs, ts = torch.randn(500, *shape, generator=g), torch.randint(0, 1000, (500,), generator=g)
        ys = torch.randint(0, 10, (500,), generator=g)
        def step(bf16):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): loss = d.loss(model, x, y, generator=g)
            opt.zero_grad(); loss.backward(); opt.step()
        @torch.no_grad()
        def call(bf16):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): model(xs, ts, ys)
        tr = time_calls({k: (lambda b=k == 'bf16': step(b)) for k in precisions}, rounds=rounds, clear=3.0)
        sa = time_calls({k: (lambda b=k == 'bf16': call(b)) for k in precisions}, rounds=max(3, rounds // 2), clear=3.0)
        row = dict(variant=name, overrides=BASES[base][0][name], parameters=param_count(model), batch=p.batch_size,
                   train_images_per_s={k: round(p.batch_size / v) for k, v in tr.items()},
                   sample_evals_per_s={k: round(500 / v) for k, v in sa.items()})
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows

def equal_time_steps(base, name, minutes):
    "Steps that `minutes` of training buy `name` at its fp32 rate in this machine's latest probe, with how they were got."
    variants, results, _, _ = BASES[base]
    same = lambda m: all(m[k] == cpu_info()[k] for k in ('model', 'flags', 'cores'))    # not the thread count
    probes = [b for b in json.loads(results.read_text()).get('probe', []) if same(b['machine'])] \
        if results.exists() else []
    rows = [r for b in probes for r in b['rows'] if r['variant'] == name and r['overrides'] == _jsonable(variants[name])]
    if not rows: sys.exit(f"no probe of {name} on this machine in {results}: run `search.py probe --base {base}` first")
    rate = rows[-1]['train_images_per_s']['fp32']
    steps = round(rate * 60 * minutes / preset(base, name).batch_size)
    return steps, dict(minutes=minutes, probe_train_images_per_s=rate, steps=steps)

def _jsonable(d): return json.loads(json.dumps(d))

def run(base, name, minutes, steps, evals, data_root, n, equal_minutes=None):
    "Train `name` with ddpm-nb train, then evaluate each sampler setting on held-out images."
    variants, _, _, extra = BASES[base]
    equal = None
    if equal_minutes: steps, equal = equal_time_steps(base, name, equal_minutes)
    out = ROOT / 'outputs' / 'search' / base / name
    budget = ['--steps', str(steps)] if steps else ['--minutes', str(minutes)]
    over = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in variants[name].items()]
    cmd = [str(Path(sys.executable).parent / 'ddpm-nb'), 'train', '--preset', base, '--presets',
           str(ROOT / 'settings.ini'), '--data-root', str(data_root), *extra, '--out', str(out),
           '--no-progress', '--log-every', '100', '--ckpt-every', '0', *budget, *over]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    card = json.loads((out / 'card.json').read_text())
    res = dict(variant=name, overrides=variants[name], command=' '.join(cmd[1:]), training=card['training'],
               precision=card['precision'], wall_s=round(time.time() - t0, 1), equal_time=equal, n=n)
    res['evals'] = evaluate(out / 'ckpt.pt', evals, n, data_root)
    return res

def evaluate(ckpt, evals, n, data_root, seed=0):
    "Chapter 8's held-out metrics of the checkpoint for each steps:guidance in `evals` (DDIM), samples of `seed`."
    rows = []
    for ev in evals:
        s, w = ev.split(':')
        r = evaluate_checkpoint(ckpt, ['accuracy', 'frechet', 'memorisation'], n=n, data_root=data_root,
                                steps=int(s), guidance=float(w), seed=seed, progress=False)
        ci = r['frechet'].get('classes_ignored')                    # random halves, the protocol until 2026-12-02
        old = {'ratio_of_means_classes_ignored': round(ci['ratio_of_means'], 3)} if ci else {}
        rows.append(dict(sampler=f"DDIM {s}", guidance=float(w), seed=seed, accuracy=r['accuracy']['overall'],
                         fd=round(r['frechet']['fd'], 4), floor=round(r['frechet']['floor'], 4),
                         ratio=round(r['frechet']['fd'] / r['frechet']['floor'], 3),
                         ratio_of_means=round(r['frechet']['ratio_of_means'], 3),   # over 10 halvings
                         **old,
                         memorisation_ratio=r['memorisation']['median_ratio'],
                         sampling_s=r['accuracy']['samples']['sampling_time_s'],
                         precision=r['accuracy']['samples']['precision']))
        print(json.dumps(rows[-1]), flush=True)
    return rows

def score(base, name, evals, data_root, n, seed=0):
    "Evaluate `name`'s checkpoint again (same seed, same samples); replace those settings' evals in its latest row."
    results = BASES[base][1]
    doc = json.loads(results.read_text())
    rows = [r for blk in doc.get('runs', []) for r in blk['rows'] if r['variant'] == name]
    if not rows: sys.exit(f"no run of {name} in {results}: `search.py run {name}` first")
    new = evaluate(ROOT / 'outputs' / 'search' / base / name / 'ckpt.pt', evals, n, data_root, seed)
    key = lambda e: (e['sampler'], e['guidance'], e.get('seed', 0))
    rows[-1]['evals'] = [e for e in rows[-1]['evals'] if key(e) not in {key(x) for x in new}] + new   # others kept
    rows[-1]['scored'] = time.strftime('%Y-%m-%d %H:%M')
    results.write_text(json.dumps(doc, indent=1) + '\n')

def references(base, name, evals, data_root, n, seed=0):
    """Could the guidance be chosen without the held-out digits? For each steps:guidance, one draw of n samples of
    `name`'s checkpoint is scored class by class against two references: the held-out fifth (as `evaluate` does) and
    the training digits the model learnt from (which a choice made at the end of training may use)."""
    ckpt = ROOT / 'outputs' / 'search' / base / name / 'ckpt.pt'
    model, diffusion, p = load_model(ckpt)
    s = load_splits(p.dataset, data_root, p.image_size, allow_test_as_train='--allow-test-as-train' in BASES[base][3])
    clf, rows = classifier_for(p.dataset, splits=s, progress=False), []
    for ev in evals:
        st, w = ev.split(':')
        prec = sampling_precision(model, p.sample_precision, 250, float(w))
        x, y, info = sample_balanced(for_sampling(model, prec['chosen']), diffusion, p, n, 'ddim', int(st), float(w),
                                     seed, progress=False)
        row = dict(sampler=f"DDIM {st}", guidance=float(w), seed=seed, precision=prec['chosen'],
                   accuracy=class_accuracy(clf, x, y)['overall'], sampling_s=info['sampling_time_s'])
        for ref, ds in (('heldout', s.heldout), ('train', s.train)):
            f = classifier_frechet(clf, x, ds.images, seed=seed, splits=10, fake_labels=y, real_labels=ds.labels)
            row[ref] = dict(fd_mean=round(f['fd_mean'], 4), floor_mean=round(f['floor_mean'], 4),
                            ratio_of_means=round(f['ratio_of_means'], 3))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return dict(variant=name, checkpoint=str(ckpt.relative_to(ROOT)), n=n, rows=rows)

def _balanced(order, labels, n, classes):
    "The first n // classes positions of each class, in `order`."
    return torch.cat([order[labels[order] == c][:n // classes] for c in range(classes)])

def real_baseline(base, data_root, n, draws=3):
    """What real images score as if they were samples: n class-balanced *training* images (drawn as sample_balanced
    draws labels), against the held-out reference over 10 halvings. The classifier was trained on these images,
    so this is a yardstick for the metric, not a perfect model's score."""
    p, extra = load_preset(base, ROOT / 'settings.ini'), BASES[base][3]
    s = load_splits(p.dataset, data_root, p.image_size, allow_test_as_train='--allow-test-as-train' in extra)
    clf = classifier_for(p.dataset, splits=s, progress=False)
    rows = []
    for d in range(draws):
        perm = torch.randperm(len(s.train), generator=torch.Generator().manual_seed(d))
        idx = _balanced(perm, s.train.labels, n, p.num_classes)
        f = classifier_frechet(clf, s.train.images[idx], s.heldout.images, splits=10)
        rows.append(dict(draw=d, n=len(idx), fd=round(f['fd'], 4), floor=round(f['floor'], 4),
                         ratio=round(f['fd'] / f['floor'], 3), ratio_of_means=round(f['ratio_of_means'], 3)))
        print(json.dumps(rows[-1]), flush=True)
    return dict(what='class-balanced real training images scored as samples', data=s.train.name,
                reference=s.heldout.name, draws=rows)

def yardstick(base, data_root, n, draws=3, first=0):
    """What a perfect model would score. Per draw: n class-balanced training images are set aside, the classifier is
    retrained on the rest (classifier_for's settings: train_classifier's defaults), and the n unseen images are
    scored as samples (class accuracy; Fréchet distance to the held-out reference over 10 halvings), beside n images
    it did see, scored by the same classifier. The unseen images are new draws from the digits' own distribution,
    exactly what a perfect generator would produce. Fréchet both ways: class by class and weighted (chapter 8), and
    with random halves (`_classes_ignored`, the protocol before 2026-12-02). And a null test of the class-by-class
    protocol: the seen images against a reference of as many other images the classifier saw, not the held-out ones."""
    p, extra = load_preset(base, ROOT / 'settings.ini'), BASES[base][3]
    s = load_splits(p.dataset, data_root, p.image_size, allow_test_as_train='--allow-test-as-train' in extra)
    K, rows = p.num_classes, []
    for d in range(first, first + draws):
        t0 = time.time()
        perm = torch.randperm(len(s.train), generator=torch.Generator().manual_seed(100 + d))
        unseen = _balanced(perm, s.train.labels, n, K)
        rest = perm[~torch.isin(perm, unseen)]
        seen = _balanced(rest, s.train.labels, n, K)
        clf = train_classifier(ImageDataset(s.train.images[rest], s.train.labels[rest], K, name='rest'), progress=False)
        row = dict(draw=d, n=len(unseen), n_train=len(rest),
                   held_out_accuracy=class_accuracy(clf, s.heldout.images, s.heldout.labels)['overall'])
        for what, idx in (('unseen', unseen), ('seen', seen)):
            x, y = s.train.images[idx], s.train.labels[idx]
            f = classifier_frechet(clf, x, s.heldout.images, splits=10, fake_labels=y, real_labels=s.heldout.labels)
            old = classifier_frechet(clf, x, s.heldout.images, splits=10)                 # random halves
            row[what] = dict(accuracy=class_accuracy(clf, x, y)['overall'], fd=round(f['fd'], 4),
                             floor=round(f['floor'], 4), ratio_of_means=round(f['ratio_of_means'], 3),
                             ratio_of_means_classes_ignored=round(old['ratio_of_means'], 3))
        pool = rest[~torch.isin(rest, seen)][:len(s.heldout)]      # a reference of other digits it saw: a null test
        f = classifier_frechet(clf, s.train.images[seen], s.train.images[pool], splits=10,
                               fake_labels=s.train.labels[seen], real_labels=s.train.labels[pool])
        row['seen_against_seen'] = dict(fd=round(f['fd'], 4), floor=round(f['floor'], 4),
                                        ratio_of_means=round(f['ratio_of_means'], 3))
        row['seconds'] = round(time.time() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return dict(what='real training images scored as samples by a classifier retrained without the unseen ones',
                data=s.train.name, reference=s.heldout.name, draws=rows)

def save(base, kind, rows):
    results = BASES[base][1]
    doc = json.loads(results.read_text()) if results.exists() else {}
    doc.setdefault(kind, []).append(dict(machine=cpu_info(), date=time.strftime('%Y-%m-%d %H:%M'), rows=rows))
    results.write_text(json.dumps(doc, indent=1) + '\n')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('what', choices=['probe', 'run', 'score', 'baseline', 'yardstick',
                                         'references'])
    ap.add_argument('name', nargs='?', help='the variant to run')
    ap.add_argument('--base', choices=list(BASES), default='workshop', help='the preset the variants override')
    ap.add_argument('--variants', default=None, help="probe: comma-separated variants (default: all the base's)")
    ap.add_argument('--minutes', type=float, default=8.0)
    ap.add_argument('--steps', type=int, default=None, help='a fixed step count instead of the budget')
    ap.add_argument('--equal-minutes', type=float, default=None,
                    help="the steps that M minutes buy at the variant's probed fp32 training rate")
    ap.add_argument('--precisions', default='fp32,bf16', help='probe: fp32, bf16 or both (bf16 is slow to time '
                    'where it is emulated)')
    ap.add_argument('--rounds', type=int, default=4, help='probe: timed training steps per variant (the median is kept)')
    ap.add_argument('--evals', default='20:0.5,20:1.0,10:0.5', help='comma-separated steps:guidance')
    ap.add_argument('--n', type=int, default=1000, help='samples per evaluation')
    ap.add_argument('--seed', type=int, default=0, help='score: the seed of the samples (another draw, same model); '
                    "yardstick: the first draw's number (more draws, none repeated)")
    ap.add_argument('--draws', type=int, default=3, help='baseline, yardstick: how many draws of real training digits')
    ap.add_argument('--data-root', type=Path, default=None)
    ap.add_argument('--results', type=Path, default=None,
                    help="the JSON file to append to (default: the base's results.json); one file per machine")
    a = ap.parse_args()
    variants, results, data_root, extra = BASES[a.base]
    if a.results: BASES[a.base] = (variants, a.results, data_root, extra)    # every read and write goes there
    if a.what == 'probe': save(a.base, 'probe', probe(a.base, (a.variants or ','.join(variants)).split(','),
                                             a.precisions.split(','), a.rounds))
    elif a.what == 'baseline': save(a.base, 'baseline', [real_baseline(a.base, a.data_root or data_root, a.n, a.draws)])
    elif a.what == 'yardstick':
        save(a.base, 'yardstick', [yardstick(a.base, a.data_root or data_root, a.n, a.draws, a.seed)])
    else:
        if a.name not in variants: ap.error(f"unknown variant {a.name!r} of {a.base}: one of {', '.join(variants)}")
        if a.what == 'references':
            sys.exit(save(a.base, 'references', [references(a.base, a.name, a.evals.split(','), a.data_root or data_root,
                                                             a.n, a.seed)]))
        if a.what == 'score': sys.exit(score(a.base, a.name, a.evals.split(','), a.data_root or data_root, a.n, a.seed))
        save(a.base, 'runs', [run(a.base, a.name, a.minutes, a.steps, a.evals.split(','), a.data_root or data_root,
                                  a.n, a.equal_minutes)])
