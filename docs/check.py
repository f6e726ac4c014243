"""Check the built site (`_docs/`) in a real browser: headless Chromium (Debian's `chromium`), driven over
its DevTools protocol through a pipe (stdlib only, no websocket client, no Playwright download).

It serves `_docs/` on 127.0.0.1 and opens EVERY page: the index, each chapter, the API index and each API page.
1. Every page: MathJax ran (every `.math` node holds an `mjx-container`), no `mjx-merror` anywhere, every
   `\\tag{N}` came out as equation label N, no equation numbered twice (Sphinx's own number beside a tag), no
   display equation cut off by its box, no raw `$$`, `\\[` or `\\(` is left in the prose, every image loaded
   (naturalWidth > 0), every internal link answers 200, nothing was requested from another host.
2. Chapters: no widget text stand-in (`interactive(children=(IntSlider(...`) and no empty output box (what a
   widget view or `clear_output` leaves behind without a kernel) in any cell output.
3. API pages: every name in the module's `__all__` (read from `ddpm_nb/<module>.py`, not imported) is a rendered
   signature; a function or class also shows the first line of its docstring (one without a docstring fails);
   no raw `.. py:` / `:module:` reST text on the page.
4. The index links every chapter, the API index every module; the "next" link of `--chapter` lands on the next
   chapter.
It prints one line per page, saves screenshots to `_docs_check/` (index, a chapter's top/equation/figure, the
`--tag` equation, the `--api` page, and the first defect of each failing page), and exits 1 on any defect.
Usage: `python docs/check.py [--chapter 02_forward] [--api diffusion] [--tag 03_elbo:13]`.
"""
from __future__ import annotations
import argparse, ast, functools, http.server, json, re, shutil, sys, threading
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "docs"))
from browser import Browser          # noqa: E402
from strip_widgets import STAND_IN   # noqa: E402  (the same pattern `make export` strips from the notebooks)
from build import chapters, modules  # noqa: E402  (the pages the site should have)

SITE, SHOTS = ROOT / "_docs", ROOT / "_docs_check"

class _Quiet(http.server.SimpleHTTPRequestHandler):
    log = []  # (path, status) of every request the browser made
    def log_request(self, code="-", size="-"): _Quiet.log.append((self.path, str(int(code))))
    def log_message(self, fmt, *args): pass

class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

def serve(folder: Path):
    srv = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"

# Facts every page is checked on. Elements with a defect get `data-defect` (the first one is photographed).
PAGE_FACTS = r"""(() => {
  const art = document.querySelector('article') || document.body;
  const where = e => { const s = e.closest('section'); const h = s && s.querySelector('h1, h2, h3, h4');
                       return h ? h.innerText.replace(/#$/, '').replace(/\s+/g, ' ').trim().slice(0, 60) : ''; };
  const mark = e => { e.setAttribute('data-defect', ''); return e; };
  const maths = [...document.querySelectorAll('.math')];
  const doc = window.MathJax && MathJax.startup && MathJax.startup.document, items = doc ? [...doc.math] : [];
  const merrors = items.filter(it => it.typesetRoot && it.typesetRoot.querySelector('mjx-merror')).map(it => ({
      tex: it.math.trim().replace(/\s+/g, ' ').slice(0, 70), where: where(mark(it.typesetRoot)),
      msg: it.typesetRoot.querySelector('mjx-merror').getAttribute('data-mjx-error') || ''}));
  const tags = items.flatMap(it => [...it.math.matchAll(/\\tag\*?\{([^}]*)\}/g)].map(m => ({tag: m[1],
      // MathJax labels \tag{N} as the element id "mjx-eqn:N" (spaces become _)
      ok: !!it.typesetRoot && [...it.typesetRoot.querySelectorAll('[id]')]
            .some(e => e.id === 'mjx-eqn:' + m[1].replace(/\s/g, '_'))})));
  // Sphinx numbers a \begin{equation} block itself ("(1)", span.eqno) beside the paper's \tag: two numbers.
  const twice = [...document.querySelectorAll('div.math')]
      .filter(d => d.querySelector('.eqno') && d.querySelector('mjx-labels'))
      .map(d => ({where: where(mark(d)), eqno: d.querySelector('.eqno').innerText.replace('#', '').trim()}));
  // A display equation wider than the column must scroll, not hang out of a box that clips it (unreadable part).
  const cut = items.filter(it => it.display && it.typesetRoot && it.typesetRoot.parentElement).filter(it => {
      const e = it.typesetRoot, box = e.parentElement.getBoundingClientRect(), r = e.getBoundingClientRect();
      const clips = ['hidden', 'clip'].includes(getComputedStyle(e.parentElement).overflowX);
      return r.left < box.left - 2 || (r.right > box.right + 2 && clips);   // nothing scrolls to the left
    }).map(it => ({tex: it.math.trim().replace(/\s+/g, ' ').slice(0, 70), where: where(mark(it.typesetRoot))}));
  const c = art.cloneNode(true);
  c.querySelectorAll('pre, code, mjx-container, script, .cell_output').forEach(e => e.remove());
  const prose = c.innerText;
  return {
    math: maths.length, typeset: maths.filter(m => m.querySelector('mjx-container')).length,
    merror: document.querySelectorAll('mjx-merror').length, merrors, tags, twice, cut,
    raw: ['$$', '\\[', '\\('].filter(s => prose.includes(s)),
    images: [...document.images].map(i => ({src: i.currentSrc, w: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    resources: performance.getEntriesByType('resource').map(e => e.name),
    next: (document.querySelector('a.right-next') || {}).href || null,
  };
})()"""

# Chapters: each output of each cell (a `.cell_output` holds one element per output).
OUTPUT_FACTS = r"""((standIn) => {
  const art = document.querySelector('article') || document.body;
  const where = e => { const s = e.closest('section'); const h = s && s.querySelector('h1, h2, h3, h4');
                       return h ? h.innerText.replace(/#$/, '').replace(/\s+/g, ' ').trim().slice(0, 60) : ''; };
  const boxes = [...art.querySelectorAll('.cell_output')];
  const views = art.querySelectorAll('.cell_output script[type="application/vnd.jupyter.widget-view+json"]');
  const outs = boxes.flatMap(b => b.children.length ? [...b.children] : [b]).filter(e => e.tagName !== 'SCRIPT');
  const media = 'img, svg, canvas, video, iframe, table';
  const empty = outs.filter(e => !e.innerText.trim() && !e.matches(media) && !e.querySelector(media));
  const text = e => e.innerText.trim();
  const stand = outs.filter(e => standIn.test(text(e)) || text(e).includes('interactive(children='));
  const mark = e => { e.setAttribute('data-defect', ''); return where(e); };
  return {outputs: outs.length, empty: empty.map(mark), standIn: stand.map(e => [mark(e), text(e).slice(0, 60)]),
          views: [...views].map(e => mark(e.parentElement))};
})(new RegExp(%s))"""

# API pages: each rendered object (autodoc's `dt.sig-object`, id = full name) with the text of its own docstring.
API_FACTS = r"""(() => {
  const art = document.querySelector('article') || document.body;
  const sigs = {};
  for (const dt of art.querySelectorAll('dt.sig-object[id]')) {
    const dd = dt.nextElementSibling, c = dd ? dd.cloneNode(true) : null;
    if (c) c.querySelectorAll('dl').forEach(e => e.remove());   // a class's methods are not its docstring
    sigs[dt.id] = {kind: dt.parentElement.className.replace(/^py /, ''), paren: !!dt.querySelector('.sig-paren'),
                   doc: c ? c.innerText : ''};
  }
  const text = art.innerText;
  const raw = [/\.\. (py|auto)\w*::?/, /:module:/].filter(r => r.test(text)).map(String);
  if (raw.length) art.querySelectorAll('p').forEach(p => {
    if (/\.\. py:|:module:/.test(p.innerText)) p.setAttribute('data-defect', ''); });
  return {sigs, raw};
})()"""

def exported(module: str) -> dict[str, tuple[str, str | None]]:
    "name -> (kind, first docstring line) for each name in `ddpm_nb/<module>.py`'s `__all__` (parsed, not imported)."
    src = (ROOT / "ddpm_nb" / f"{module}.py").read_text(encoding="utf-8")
    tree, lines = ast.parse(src), src.splitlines()
    names, defs = None, {}
    for i, n in enumerate(tree.body):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(n)
            defs.setdefault(n.name, ("class" if isinstance(n, ast.ClassDef) else "function",
                                     doc.strip().splitlines()[0] if doc and doc.strip() else None))
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            targets = [t.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                       if isinstance(t, ast.Name)]
            if "__all__" in targets: names = ast.literal_eval(n.value); continue
            # autodoc's doc of a constant: a string right after it, or `#:` comments right above it
            nxt = tree.body[i + 1] if i + 1 < len(tree.body) else None
            doc = (nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                   and isinstance(nxt.value.value, str) else None)
            above = [l.strip()[2:].strip() for l in lines[:n.lineno - 1][-3:] if l.strip().startswith("#:")]
            doc = doc or (above[0] if above else None)
            for t in targets: defs.setdefault(t, ("data", doc.strip().splitlines()[0] if doc else None))
    return {name: defs.get(name, ("other", None)) for name in (names or [])}

def _norm(s: str) -> str:
    "Letters and digits only, lower case: a docstring's words survive reST markup (backticks, emphasis, links)."
    return re.sub(r"[^a-z0-9]", "", s.lower())

class Checker:
    def __init__(self, b: Browser, base: str):
        self.b, self.base, self.errors, self.links = b, base, [], {}

    def fail(self, what, msg): self.errors.append(f"{what}: {msg}"); return 1

    def page(self, path: str, what: str) -> tuple[dict, int]:
        "Open a page and check what every page must satisfy; the facts and the number of defects found."
        url = self.base + path
        self.b.open(url)
        f, n = self.b.js(PAGE_FACTS), 0
        if f["typeset"] != f["math"]:
            n += self.fail(what, f"{f['math'] - f['typeset']} of {f['math']} equations not typeset by MathJax")
        for e in f["merrors"]:
            n += self.fail(what, f"MathJax error \"{e['msg']}\" in `{e['tex']}` (section \"{e['where']}\")")
        if f["merror"] > len(f["merrors"]): n += self.fail(what, f"{f['merror']} mjx-merror boxes on the page")
        for e in f["twice"]:
            n += self.fail(what, f"equation numbered twice: Sphinx's {e['eqno']} beside its \\tag (section "
                                 f"\"{e['where']}\"); write \\begin{{equation*}}...\\tag{{N}}\\end{{equation*}}")
        for e in f["cut"]: n += self.fail(what, f"equation cut off by its box: `{e['tex']}` (section \"{e['where']}\")")
        bad_tags = [t["tag"] for t in f["tags"] if not t["ok"]]
        if bad_tags: n += self.fail(what, f"\\tag without its equation label: {bad_tags}")
        if f["raw"]: n += self.fail(what, f"raw TeX delimiters left in the text: {f['raw']}")
        broken = [i["src"] for i in f["images"] if not i["w"]]
        if broken: n += self.fail(what, f"images that did not load: {broken[:5]}")
        foreign = [r for r in f["resources"] + [url] if not r.startswith(self.base)]
        if foreign: n += self.fail(what, f"loaded from other hosts: {foreign[:5]}")
        internal = {urldefrag(l)[0] for l in f["links"] if l.startswith(self.base)}
        for link in internal - set(self.links):   # each link is fetched once for the whole site
            try: urllib.request.urlopen(link, timeout=10).close(); self.links[link] = None
            except Exception as e: self.links[link] = str(e)
        dead = [f"{l} ({self.links[l]})" for l in internal if self.links[l]]
        if dead: n += self.fail(what, f"broken links: {dead[:5]}")
        return f, n

    def photograph_defect(self, what: str, find="document.querySelector('[data-defect]')"):
        clip = clip_of(self.b, find)
        if clip: self.b.screenshot(SHOTS / f"defect_{what.replace('/', '_')}.png", clip=clip)

    def chapter(self, name: str) -> dict:
        what = f"nbs/{name}"
        f, n = self.page(f"nbs/{name}.html", what)
        o = self.b.js(OUTPUT_FACTS % json.dumps(STAND_IN.pattern))
        for sec, txt in o["standIn"]: n += self.fail(what, f"widget stand-in in an output (section \"{sec}\"): {txt!r}")
        for sec in o["empty"]: n += self.fail(what, f"empty output box (section \"{sec}\")")
        for sec in o["views"]: n += self.fail(what, f"widget view that needs a kernel, blank here (section \"{sec}\")")
        tags = len(f["tags"])
        print(f"  {what:22s} {f['typeset']}/{f['math']} equations typeset ({tags} tagged), {len(f['images'])} images, "
              f"{o['outputs']} outputs: {'ok' if not n else f'{n} DEFECTS'}")
        if n: self.photograph_defect(what)
        return f

    def api(self, module: str) -> dict:
        what = f"api/{module}"
        f, n = self.page(f"api/{module}.html", what)
        a = self.b.js(API_FACTS)
        if a["raw"]: n += self.fail(what, f"raw reST on the page ({a['raw']}): autodoc's output read as Markdown")
        names, undocumented, missing, first = exported(module), [], [], None
        for name, (kind, doc) in names.items():
            s, before = a["sigs"].get(f"ddpm_nb.{module}.{name}"), n
            if s is None: missing.append(name); continue
            if kind == "function" and not s["paren"]: n += self.fail(what, f"`{name}`: signature without parameters")
            if kind in ("function", "class") and not doc:
                n += self.fail(what, f"`{name}` ({kind}) has no docstring in the source")
            elif doc and _norm(doc) not in _norm(s["doc"]):
                n += self.fail(what, f"`{name}`: docstring {doc[:50]!r} not on the page")
            if kind == "data" and not doc: undocumented.append(name)
            if n > before and first is None: first = f"ddpm_nb.{module}.{name}"
        if missing: n += self.fail(what, f"{len(missing)} of {len(names)} names in __all__ have no rendered signature: "
                                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        note = f" (constants without a doc comment: {', '.join(undocumented)})" if undocumented else ""
        print(f"  {what:22s} {len(names)} exported names, {sum(f'ddpm_nb.{module}.{k}' in a['sigs'] for k in names)} "
              f"rendered: {'ok' if not n else f'{n} DEFECTS'}{note}")
        if n: self.photograph_defect(what, *([f"document.getElementById({first!r}).parentElement"] if first else []))
        return f

def clip_of(b: Browser, find: str, pad=12):
    "Scroll the element the JS expression `find` returns below the sticky header; its padded page rectangle."
    r = b.js(f"""(() => {{ const e = {find}; if (!e) return null;
        window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 200); const r = e.getBoundingClientRect();
        return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()""")
    if not r or not r["width"] or not r["height"]: return None
    return {"x": max(0, r["x"] - pad), "y": max(0, r["y"] - pad), "width": r["width"] + 2 * pad, "height": r["height"] + 2 * pad}

# A tagged display equation (MathJax puts the "(4)" in mjx-labels), else any display equation; the first figure.
EQUATION = "[...document.querySelectorAll('div.math')].find(d => d.querySelector('mjx-labels')) || document.querySelector('div.math')"
FIGURE = "document.querySelector('.cell_output img')"
TAGGED = "(document.getElementById({!r}) || {{closest: () => null}}).closest('div.math, mjx-container[display]')"

def linked(f: dict, folder: str) -> set[str]:
    return {urldefrag(l)[0].rsplit("/", 1)[-1].removesuffix(".html") for l in f["links"] if f"/{folder}/" in l}

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Check the built docs site in headless Chromium.")
    ap.add_argument("--chapter", default="02_forward", help="a chapter with equations and figures to photograph")
    ap.add_argument("--api", default="diffusion", help="the API page to photograph")
    ap.add_argument("--tag", default="03_elbo:13", help="CHAPTER:N, a tagged equation to photograph")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    a = ap.parse_args(argv)
    if not a.chromium: sys.exit("chromium not found: `apt-get install -y chromium` (Debian's package)")
    if not (SITE / "index.html").exists(): sys.exit("no _docs/index.html: run `make docs` first")
    chaps, mods = [p.stem for p in chapters()], modules()
    if a.chapter not in chaps: sys.exit(f"--chapter {a.chapter!r} is not one of {chaps}")
    if a.api not in mods: sys.exit(f"--api {a.api!r} is not one of {mods}")
    tag_chapter, tag = a.tag.split(":")
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / ".gitignore").write_text("*\n")   # screenshots are for looking at, never for committing
    for old in SHOTS.glob("*.png"): old.unlink()
    srv, base = serve(SITE)
    b = Browser(a.chromium)
    c = Checker(b, base)
    try:
        print("index and chapters:")
        f, _ = c.page("index.html", "index")
        missing = [ch for ch in chaps if ch not in linked(f, "nbs")]
        if missing: c.fail("index", f"chapters not linked from the table of contents: {missing}")
        print(f"  {'index':22s} links {len(chaps) - len(missing)}/{len(chaps)} chapters")
        b.screenshot(SHOTS / "index.png")
        for ch in chaps:
            c.chapter(ch)
            if ch == tag_chapter:
                clip = clip_of(b, TAGGED.format("mjx-eqn:" + re.sub(r"\s", "_", tag)), pad=30)
                if clip: b.screenshot(SHOTS / f"{ch}_eq{tag}.png", clip=clip)
                else: c.fail(f"nbs/{ch}", f"no equation tagged ({tag}) to photograph")
            if ch == a.chapter:
                for name, sel in (("equation", EQUATION), ("figure", FIGURE)):
                    clip = clip_of(b, sel, pad=40 if name == "equation" else 12)
                    if clip: b.screenshot(SHOTS / f"{ch}_{name}.png", clip=clip)
                    else: c.fail(f"nbs/{ch}", f"no {name} to photograph ({sel})")
                b.js("window.scrollTo(0, 0)"); b.screenshot(SHOTS / f"{ch}_top.png")
        print("API reference:")
        f, _ = c.page("api/index.html", "api/index")
        missing = [m for m in mods if m not in linked(f, "api")]
        if missing: c.fail("api/index", f"modules not linked: {missing}")
        print(f"  {'api/index':22s} links {len(mods) - len(missing)}/{len(mods)} module pages")
        for m in mods:
            c.api(m)
            if m == a.api: b.js("window.scrollTo(0, 0)"); b.screenshot(SHOTS / f"api_{m}.png")
        nxt = chaps[chaps.index(a.chapter) + 1] if a.chapter != chaps[-1] else None
        if nxt:
            b.open(f"{base}nbs/{a.chapter}.html")
            b.events.clear()
            b.js("document.querySelector('a.right-next').click()")
            b.wait_event("Page.loadEventFired"); b.settle()
            landed = b.js("location.pathname")
            if not landed.endswith(f"/nbs/{nxt}.html"):
                c.fail("next", f"'next' from {a.chapter} went to {landed}, not {nxt}")
            else: print(f"next link: {a.chapter} -> {nxt}")
        # Chromium asks every site for /favicon.ico by itself; the site has none, which is no error of ours.
        bad = [(p, s) for p, s in _Quiet.log if s not in ("200", "304") and p != "/favicon.ico"]
        if bad: c.fail("server", f"answered errors: {bad[:5]}")
    finally:
        b.close(); srv.shutdown()
    shots = sorted(p.name for p in SHOTS.glob("*.png"))
    print(f"{2 + len(chaps) + len(mods)} pages, {len(c.links)} internal links checked; "
          f"screenshots in {SHOTS.relative_to(ROOT)}/: {', '.join(shots)}")
    if c.errors:
        print(f"DOCS CHECK FAILED ({len(c.errors)} defects):\n  " + "\n  ".join(c.errors)); return 1
    print("docs check passed"); return 0

if __name__ == "__main__": sys.exit(main())
