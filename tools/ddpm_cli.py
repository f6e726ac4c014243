"""The one way the recording scripts (record_workshop.py, record_cifar10.py) run a `ddpm-nb` command."""
import subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent

def sh(*args) -> str:
    "Run `ddpm-nb args` (the console script next to this interpreter), echoing it; the command line, for the card."
    line = 'ddpm-nb ' + ' '.join(map(str, args))
    print('$', line, flush=True)
    subprocess.run([str(BIN / 'ddpm-nb'), *map(str, args)], check=True)
    return line
