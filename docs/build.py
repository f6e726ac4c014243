"""Build the book's website into `_docs/` with Sphinx + MyST-NB, offline.

Stages a source tree in `build/docs-src/` (the chapters from `nbs/`, an index whose table of contents lists
every `nbs/[0-9]*.ipynb` in sorted order, one API page per `ddpm_nb` module, MathJax 3 from npm), then runs
`sphinx-build` with `docs/conf.py`. The notebooks are rendered with the outputs they were committed with;
nothing is executed. Usage: `python docs/build.py [--mathjax DIR]` (`make docs` passes the npm copy).
"""
from __future__ import annotations
import argparse, ast, json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / "build" / "docs-src", ROOT / "_docs"
DIRECTIVE = re.compile(r"^\s*#\|\s*(\w+)")
sys.path.insert(0, str(ROOT / "tools"))
from strip_widgets import is_widget_output  # noqa: E402  (what `make export` strips from the notebooks)

# The theme centres a display equation in a flex box that clips: one wider than the column (most tagged ones, as
# MathJax gives a tagged equation a min-width) lost its left part, with no way to scroll to it. Scroll it instead.
BOOK_CSS = """div.math { overflow-x: auto; justify-content: safe center; }
"""

def chapters(nbs: Path = ROOT / "nbs") -> list[Path]:
    "The book's chapters in reading order: every numbered notebook, sorted by name (scratch `_*` skipped)."
    return sorted(p for p in nbs.glob("*.ipynb") if p.name[0].isdigit())

def _directives(cell) -> set[str]:
    return {m.group(1) for l in cell["source"].splitlines() if (m := DIRECTIVE.match(l))}

def _is_widget_output(o: dict) -> bool:
    "A widget view, its stand-in or `clear_output`'s erase codes (`make export`'s rule), or a bare `interactive` repr."
    txt = "".join(o.get("data", {}).get("text/plain", ""))
    return is_widget_output(o) or (set(o.get("data", {})) == {"text/plain"} and txt.startswith("interactive(children="))

def _clean_cell(cell):
    "Drop nbdev's `#|` directive lines from a code cell, and the outputs that stood for widgets."
    # A notebook saved without `make export` may still hold them; on the page they would be the widget's repr as
    # text (`interactive(children=(IntSlider(...`) or an empty output box. The figure a callback drew stays.
    cell["source"] = "\n".join(l for l in cell["source"].splitlines() if not DIRECTIVE.match(l)).strip("\n")
    cell["outputs"] = [o for o in cell.get("outputs", []) if not _is_widget_output(o)]
    return cell

def stage_notebook(src: Path, dst: Path):
    "Copy one chapter for the site: `#| hide` and `default_exp`-only cells go, directive lines are stripped, title first."
    nb = json.loads(src.read_text(encoding="utf-8"))
    cells = []
    for c in nb["cells"]:
        if isinstance(c["source"], list): c["source"] = "".join(c["source"])
        if c["cell_type"] == "code":
            d = _directives(c)
            if "hide" in d: continue
            c = _clean_cell(c)
            if not c["source"].strip() and not c["outputs"]: continue
        cells.append(c)
    # nbdev puts the title after the imports; the page opens with it (and Sphinx takes the page title from it).
    title = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and c["source"].startswith("# ")), None)
    if title: cells.insert(0, cells.pop(title))
    nb["cells"] = cells
    nb.get("metadata", {}).pop("widgets", None)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")

def modules() -> list[str]:
    "Public modules of the package (from its files, so a new chapter's module appears by itself)."
    return sorted(p.stem for p in (ROOT / "ddpm_nb").glob("*.py") if not p.stem.startswith("_"))

def undocumented_constants(m: str) -> list[str]:
    "Names in the module's `__all__` bound by a plain assignment that has no `#:` doc comment or docstring."
    # autodoc's automodule skips such a constant (a `Literal` alias, a tuple of class names) without a word, even
    # with :undoc-members:, so its page would miss an exported name. Sphinx's own analyzer says which have a doc.
    from sphinx.pycode import ModuleAnalyzer
    path = ROOT / "ddpm_nb" / f"{m}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    documented = ModuleAnalyzer.for_file(str(path), f"ddpm_nb.{m}").find_attr_docs()
    exported = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                     and any(getattr(t, "id", None) == "__all__" for t in n.targets)), [])
    assigned = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    return [k for k in exported if k in assigned and ("", k) not in documented]

def api_page(m: str) -> str:
    "One module's API page: autodoc's `automodule` inside an `eval-rst` block, then the constants it would skip."
    # autodoc emits reST. As a MyST ```{automodule}``` fence its output is parsed as Markdown, and the page shows
    # raw `.. py:function::` / `:module:` text with no rendered signature (Sphinx warns about nothing).
    data = "".join(f"\n.. autodata:: ddpm_nb.{m}.{k}\n" for k in undocumented_constants(m))
    return (f"# `ddpm_nb.{m}`\n\n```{{eval-rst}}\n.. automodule:: ddpm_nb.{m}\n   :members:\n   :undoc-members:\n"
            f"   :show-inheritance:\n{data}```\n")

def api_pages(dst: Path) -> list[str]:
    "An API page per module (autodoc documents what the module's `__all__` exports) and their index."
    dst.mkdir(parents=True, exist_ok=True)
    names = []
    for m in modules():
        (dst / f"{m}.md").write_text(api_page(m), encoding="utf-8")
        names.append(f"api/{m}")
    (dst / "index.md").write_text("# API reference\n\nGenerated from the docstrings of the exported modules "
                                  "(each one names its quantity and equation).\n\n```{toctree}\n:maxdepth: 1\n\n"
                                  + "\n".join(n.removeprefix("api/") for n in names) + "\n```\n", encoding="utf-8")
    return names

def index_page(chaps: list[Path]) -> str:
    intro = (ROOT / "docs" / "index_intro.md").read_text(encoding="utf-8")
    toc = "\n".join(f"nbs/{p.stem}" for p in chaps)
    return (f"{intro}\n```{{toctree}}\n:caption: The book\n:maxdepth: 1\n\n{toc}\n```\n\n"
            "```{toctree}\n:caption: Reference\n:maxdepth: 1\n\napi/index\n```\n")

def stage(mathjax: Path | None):
    if SRC.exists(): shutil.rmtree(SRC)
    (SRC / "nbs").mkdir(parents=True)
    chaps = chapters()
    for p in chaps: stage_notebook(p, SRC / "nbs" / p.name)
    for png in (ROOT / "resources").glob("*/*.png"):        # figures of recorded runs that chapters link to
        (SRC / "resources" / png.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, SRC / "resources" / png.parent.name / png.name)
    api_pages(SRC / "api")
    (SRC / "index.md").write_text(index_page(chaps), encoding="utf-8")
    static = SRC / "_static"
    static.mkdir()
    if mathjax is None or not (mathjax / "tex-chtml.js").exists():
        sys.exit(f"MathJax 3 (es5 folder with tex-chtml.js) not found at {mathjax}; `make docs` installs it with npm")
    shutil.copytree(mathjax, static / "mathjax")
    (static / "book.css").write_text(BOOK_CSS, encoding="utf-8")
    return chaps

def no_cdn(out: Path) -> list[str]:
    "Every script/stylesheet/image the built pages load from another host (should be none: the site is offline)."
    pat = re.compile(r"""<(?:script|link|img)\b[^>]*?(?:src|href)=["'](https?:)?//[^"']+""", re.I)
    bad = []
    for f in out.rglob("*.html"):
        for m in pat.finditer(f.read_text(encoding="utf-8", errors="replace")):
            tag = m.group(0)
            if tag.lower().startswith("<link") and not re.search(r"rel=[\"'](stylesheet|preload|icon|modulepreload)", tag): continue
            bad.append(f"{f.relative_to(out)}: {tag[:120]}")
    return bad

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mathjax", type=Path, default=ROOT / "build" / "docs-node" / "node_modules" / "mathjax" / "es5")
    a = ap.parse_args(argv)
    chaps = stage(a.mathjax)
    if OUT.exists(): shutil.rmtree(OUT)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(ROOT / "docs"), "-d", str(ROOT / "build" / "docs-doctrees"),
           str(SRC), str(OUT)]
    r = subprocess.run(cmd)
    if r.returncode: sys.exit(r.returncode)
    (OUT / ".nojekyll").touch()
    bad = no_cdn(OUT)
    if bad: sys.exit("pages load from other hosts (the site must work offline):\n  " + "\n  ".join(bad[:20]))
    print(f"built {len(chaps)} chapters + API reference into {OUT.relative_to(ROOT)}/ (open {OUT.relative_to(ROOT)}/index.html)")

if __name__ == "__main__": main()
