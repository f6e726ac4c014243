"""Fail when the exported library breaks the house style's limits: lines of at most 120 characters, no `;`-joined
statements, and exported notebook cells of at most 30 lines (a cell is one idea; a longer one is two). Blank lines
and a dataclass's field declarations do not count towards a cell's length.

Run by `make test` (after tools/check_sync.py). `--list` prints every offender instead of the first few.
"""
import ast, io, json, sys, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE, MAX_CELL = 120, 30

def long_lines(path: Path):
    "Lines over the limit, except nbdev's own `__all__` list (it wraps that itself)."
    in_all = False
    for i, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        in_all = line.startswith('__all__ = [') or (in_all and not lines_closed(prev))
        prev = line
        if len(line) > MAX_LINE and not in_all:
            yield f"{path.relative_to(ROOT)}:{i}: {len(line)} characters (at most {MAX_LINE})"

def lines_closed(line: str) -> bool: return line.rstrip().endswith(']')

def semicolons(path: Path):
    toks = tokenize.generate_tokens(io.StringIO(path.read_text(encoding='utf-8')).readline)
    for t in toks:
        if t.type == tokenize.OP and t.string == ';':
            yield f"{path.relative_to(ROOT)}:{t.start[0]}: ';'-joined statements (one statement per line)"

def cell_lines(src: str) -> int:
    "Lines of an exported cell that count: not blank, not the directive, not a dataclass field (a table is one idea)."
    fields = sum(isinstance(s, ast.AnnAssign) for node in ast.walk(ast.parse(src)) if isinstance(node, ast.ClassDef)
                 for s in node.body)
    return sum(1 for l in src.splitlines()[1:] if l.strip()) - fields

def long_cells(nb: Path):
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and src.startswith('#| export'):
            n = cell_lines(src)
            if n > MAX_CELL:
                yield f"{nb.relative_to(ROOT)}: cell {c.get('id')} exports {n} lines (at most {MAX_CELL}): split it"

def main():
    mods = sorted(p for p in (ROOT / 'ddpm_nb').glob('*.py') if p.name != '_modidx.py')
    found = [m for p in mods for m in (*long_lines(p), *semicolons(p))]
    found += [m for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) for m in long_cells(nb)]
    if found:
        shown = found if '--list' in sys.argv else found[:15]
        sys.exit('style limits broken (edit the notebooks, then `make export`):\n  ' + '\n  '.join(shown)
                 + (f'\n  ... and {len(found) - len(shown)} more (tools/check_style.py --list)' if len(found) > len(shown) else ''))
    print(f"style: {len(mods)} modules within {MAX_LINE} characters a line, no ';', exported cells <= {MAX_CELL} lines")

if __name__ == '__main__': main()
