"""Fail when the exported library or the notebooks are not what `nbdev-export` / `nbdev-clean` make of them.

Notebooks are the source of ddpm_nb. This runs the export and the clean (plus the widget-state strip) and
fails if either changed any file under ddpm_nb/ or nbs/, or if the packaged presets differ from settings.ini.
It compares file contents before and after, so it works the same in a clean clone (CI) and in a working tree
with uncommitted edits.
"""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def snapshot():
    files = [p for d in ("ddpm_nb", "nbs") for p in (ROOT/d).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts]
    return {str(p.relative_to(ROOT)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}

def run(*cmd):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode: sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout}{r.stderr}")

def main():
    problems = []
    if (ROOT/"settings.ini").read_bytes() != (ROOT/"ddpm_nb"/"presets.ini").read_bytes():
        problems.append("ddpm_nb/presets.ini differs from settings.ini: run `make presets` and commit both.")
    before = snapshot()
    run(BIN/"nbdev-clean")
    run(sys.executable, "tools/strip_widgets.py", "nbs")
    run(BIN/"nbdev-export")
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        problems.append("nbdev-export / nbdev-clean changed these files, so the library and notebooks were out "
                        "of sync (review with `git diff` and commit):\n  " + "\n  ".join(changed))
    if problems: sys.exit("\n".join(problems))
    print("library and notebooks in sync; notebooks clean; presets copy matches settings.ini")

if __name__ == "__main__": main()
