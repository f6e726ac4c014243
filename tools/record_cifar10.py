"""Record the CPU CIFAR-10 run (chapter 10): train the `cifar10-cpu` preset in its time budget on the 50,000
training images, evaluate it against the 10,000 test images (the book's own CIFAR-10 classifier: accuracy, Frechet
distance in its features with the real-vs-real floor, memorisation against the training images), and render a
sample grid (one row per class, the recipe's sampler) and a diffusion GIF into resources/cifar10-cpu/. Every
command is written into the run's card, and the machine's load average during training into load.csv (the budget
is wall-clock time: anything else running takes steps away from the run, and the file shows whether it did).

Usage (from the repository root): python tools/record_cifar10.py [--data-root ../shared/data/cifar10] [--minutes M]
"""
import argparse, json, os, sys, threading, time
from pathlib import Path
from ddpm_nb.checkpoint import write_card

from ddpm_cli import sh                   # tools/ddpm_cli.py: run one ddpm-nb command, echoed

def log_load(path: Path, stop: threading.Event, every: float = 30.0):
    "Append the 1-minute load average every `every` seconds until `stop` is set."
    with path.open('w') as f:
        f.write('elapsed_s,load_1min,cores\n')
        t0 = time.time()
        while not stop.wait(every if f.tell() > 40 else 1.0):
            f.write(f'{time.time() - t0:.0f},{os.getloadavg()[0]:.2f},{os.cpu_count()}\n')
            f.flush()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-root', default='../shared/data/cifar10')
    ap.add_argument('--minutes', type=float, default=None, help="the training budget (default: the preset's)")
    ap.add_argument('--out', default='resources/cifar10-cpu')
    a = ap.parse_args()
    out = Path(a.out)
    cmds = []
    if not (out / 'ckpt.pt').exists():
        out.mkdir(parents=True, exist_ok=True)
        stop = threading.Event()
        logger = threading.Thread(target=log_load, args=(out / 'load.csv', stop), daemon=True)
        logger.start()
        budget = ['--minutes', a.minutes] if a.minutes else []
        try:
            cmds.append(sh('train', '--preset', 'cifar10-cpu', '--presets', 'settings.ini', '--data-root', a.data_root,
                           *budget, '--out', out, '--no-progress', '--log-every', 100, '--ckpt-every', 500))
        finally:
            stop.set()
            logger.join()
    cmds.append(sh('eval', '--ckpt', out / 'ckpt.pt', '--data-root', a.data_root,
                   '--metrics', 'accuracy,frechet,memorisation', '--n', 1000, '--no-progress'))
    cmds.append(sh('sample', '--ckpt', out / 'ckpt.pt', '--n', 100, '--out', out / 'samples.png', '--no-progress'))
    cmds.append(sh('gif', '--ckpt', out / 'ckpt.pt', '--out', out / 'diffusion_10_classes.gif', '--no-progress'))
    write_card(out / 'card.json', commands=cmds + ['python tools/record_cifar10.py ' + ' '.join(sys.argv[1:])],
               renders=dict(samples="samples.png (the recipe's sampler: DDIM 20, guidance 1; EMA; one row per class "
                                    "in label order airplane..truck)",
                            gif="diffusion_10_classes.gif (the recipe's sampler, one image per class; x_t | x0 guess)",
                            load='load.csv (1-minute load average during training)'))
    print(json.dumps(json.loads((out / 'card.json').read_text()).get('metrics', {}), indent=1, default=str)[:3000])

if __name__ == '__main__': main()
