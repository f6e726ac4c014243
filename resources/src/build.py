"""Compile the talk and the report from their Typst sources, offline and byte-for-byte reproducibly.

    python resources/src/build.py [slides|notes|report|all] [--out DIR]

`notes` is the talk again with the speaker notes under each slide (for the speaker, not the room).

Only the fonts bundled with typst are used (system fonts are ignored) and the document date is unset, so the
same sources and the same typst version give the same PDF bytes on any machine; tests/test_resources.py relies on it.
Figures are not remade here: run make_figures.py first (`make resources` does both).
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path

import typst

SRC = Path(__file__).resolve().parent
DOCS = {'slides': ('slides.typ', 'diffusion_models_talk_slides.pdf'),
        'notes': ('slides.typ', 'diffusion_models_talk_notes.pdf'),
        'report': ('report.typ', 'diffusion_models_report.pdf')}
INPUTS = {'notes': {'notes': 'true'}}   # sys.inputs of each document (slides.typ prints its notes only with these)


def build(name: str, out_dir: Path = SRC.parent) -> Path:
    "Compile document `name` ('slides', 'notes' or 'report') into `out_dir`; raise with typst's diagnostic on any error."
    if name not in DOCS: raise ValueError(f"unknown document {name!r}: choose one of {', '.join(DOCS)}")
    src, pdf = DOCS[name]
    out = Path(out_dir) / pdf
    try:
        _, warnings = typst.compile_with_warnings(str(SRC / src), output=str(out), root=str(SRC), ignore_system_fonts=True,
                                                  sys_inputs=INPUTS.get(name, {}))
    except typst.TypstError as e:
        raise RuntimeError(f"typst could not compile {src}:\n{e.diagnostic}") from None
    for w in warnings: print(f"warning ({src}): {w.diagnostic if hasattr(w, 'diagnostic') else w}", file=sys.stderr)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('doc', nargs='?', default='all', choices=[*DOCS, 'all'])
    ap.add_argument('--out', type=Path, default=SRC.parent, help='output folder (default: resources/)')
    args = ap.parse_args(argv)
    for name in (DOCS if args.doc == 'all' else [args.doc]):
        t0 = time.time()
        out = build(name, args.out)
        print(f"{out} ({out.stat().st_size / 1e6:.2f} MB) in {time.time() - t0:.1f}s")


if __name__ == '__main__':
    main()
