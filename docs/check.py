"""Check the built site (`_docs/`) in a real browser: headless Chromium (Debian's `chromium`), driven over
its DevTools protocol through a pipe (stdlib only, no websocket client, no Playwright download).

It serves `_docs/` on 127.0.0.1, then
1. on the index and on a chapter with equations: MathJax ran (every `.math` node holds an `mjx-container`,
   no `mjx-merror`), no raw `$$`, `\\[` or `\\(` is left in the prose, every image loaded (naturalWidth > 0);
2. every internal link on those pages answers 200, and every chapter of `nbs/` is linked from the index;
3. clicking the chapter's "next" link lands on the next chapter in the book's order;
4. nothing was requested from another host (the server log shows only local requests; the page's resource
   list has only 127.0.0.1 URLs);
and saves screenshots to `_docs_check/` (index, an equation, a figure). Usage: `python docs/check.py [--chapter 02_forward]`.
"""
from __future__ import annotations
import argparse, base64, functools, http.server, json, os, shutil, subprocess, sys, tempfile, threading, time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urldefrag

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from browser import Browser, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
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

PAGE_FACTS = r"""(() => {
  const maths = [...document.querySelectorAll('.math')];
  const prose = document.querySelector('article') || document.body;
  const c = prose.cloneNode(true);
  c.querySelectorAll('pre, code, mjx-container, script, .cell_output').forEach(e => e.remove());
  const text = c.innerText;
  return {
    math: maths.length, typeset: maths.filter(m => m.querySelector('mjx-container')).length,
    merror: document.querySelectorAll('mjx-merror').length,
    raw: ['$$', '\\[', '\\('].filter(s => text.includes(s)),
    images: [...document.images].map(i => ({src: i.currentSrc, w: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    resources: performance.getEntriesByType('resource').map(e => e.name),
    next: (document.querySelector('a.right-next') || {}).href || null,
  };
})()"""

def check_page(b: Browser, url: str, base: str, errors: list, what: str, min_math=1) -> dict:
    b.open(url)
    f = b.js(PAGE_FACTS)
    if f["math"] < min_math: errors.append(f"{what}: expected equations, found {f['math']} math nodes")
    if f["typeset"] != f["math"]: errors.append(f"{what}: {f['math'] - f['typeset']} of {f['math']} equations not typeset by MathJax")
    if f["merror"]: errors.append(f"{what}: {f['merror']} MathJax errors (unknown macro or bad TeX)")
    if f["raw"]: errors.append(f"{what}: raw TeX delimiters left in the text: {f['raw']}")
    broken = [i["src"] for i in f["images"] if not i["w"]]
    if broken: errors.append(f"{what}: images that did not load: {broken[:5]}")
    foreign = [r for r in f["resources"] + [url] if not r.startswith(base)]
    if foreign: errors.append(f"{what}: loaded from other hosts: {foreign[:5]}")
    for link in {urldefrag(l)[0] for l in f["links"] if l.startswith(base)}:
        try: urllib.request.urlopen(link, timeout=10).close()
        except Exception as e: errors.append(f"{what}: broken link {link} ({e})")
    print(f"  {what}: {f['typeset']}/{f['math']} equations typeset, {len(f['images'])} images loaded, "
          f"{len(set(f['links']))} links")
    return f

def clip_of(b: Browser, find: str, pad=12):
    "Scroll the element the JS expression `find` returns below the sticky header; its padded page rectangle."
    r = b.js(f"""(() => {{ const e = {find}; if (!e) return null;
        window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 200); const r = e.getBoundingClientRect();
        return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()""")
    if not r: return None
    return {"x": max(0, r["x"] - pad), "y": max(0, r["y"] - pad), "width": r["width"] + 2 * pad, "height": r["height"] + 2 * pad}

# A tagged display equation (MathJax puts the "(4)" in mjx-labels), else any display equation; the first figure.
EQUATION = "[...document.querySelectorAll('div.math')].find(d => d.querySelector('mjx-labels')) || document.querySelector('div.math')"
FIGURE = "document.querySelector('.cell_output img')"

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Check the built docs site in headless Chromium.")
    ap.add_argument("--chapter", default="02_forward", help="a chapter with equations and figures")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    a = ap.parse_args(argv)
    if not a.chromium: sys.exit("chromium not found: `apt-get install -y chromium` (Debian's package)")
    if not (SITE / "index.html").exists(): sys.exit("no _docs/index.html: run `make docs` first")
    chapters = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if p.name[0].isdigit())
    if a.chapter not in chapters: sys.exit(f"--chapter {a.chapter!r} is not one of {chapters}")
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / ".gitignore").write_text("*\n")   # screenshots are for looking at, never for committing
    srv, base = serve(SITE)
    b, errors = Browser(a.chromium), []
    try:
        f = check_page(b, base + "index.html", base, errors, "index")
        linked = {urldefrag(l)[0].rsplit("/", 1)[-1].removesuffix(".html") for l in f["links"] if "/nbs/" in l}
        missing = [c for c in chapters if c not in linked]
        if missing: errors.append(f"index: chapters not linked from the table of contents: {missing}")
        b.screenshot(SHOTS / "index.png")
        f = check_page(b, f"{base}nbs/{a.chapter}.html", base, errors, a.chapter, min_math=5)
        for name, sel in (("equation", EQUATION), ("figure", FIGURE)):
            clip = clip_of(b, sel, pad=40 if name == "equation" else 12)
            if clip: b.screenshot(SHOTS / f"{a.chapter}_{name}.png", clip=clip)
            else: errors.append(f"{a.chapter}: no {name} to photograph ({sel})")
        b.js("window.scrollTo(0, 0)"); b.screenshot(SHOTS / f"{a.chapter}_top.png")
        nxt = chapters[chapters.index(a.chapter) + 1] if a.chapter != chapters[-1] else None
        if nxt:
            b.events.clear()
            b.js("document.querySelector('a.right-next').click()")
            b.wait_event("Page.loadEventFired"); b.settle()
            landed = b.js("location.pathname")
            if not landed.endswith(f"/nbs/{nxt}.html"): errors.append(f"'next' from {a.chapter} went to {landed}, not {nxt}")
            else: print(f"  next link: {a.chapter} -> {nxt}")
        # Chromium asks every site for /favicon.ico by itself; the site has none, which is no error of ours.
        bad = [(p, s) for p, s in _Quiet.log if s not in ("200", "304") and p != "/favicon.ico"]
        if bad: errors.append(f"server answered errors: {bad[:5]}")
    finally:
        b.close(); srv.shutdown()
    shots = sorted(p.name for p in SHOTS.glob("*.png"))
    print(f"screenshots in {SHOTS.relative_to(ROOT)}/: {', '.join(shots)}")
    if errors:
        print("DOCS CHECK FAILED:\n  " + "\n  ".join(errors)); return 1
    print("docs check passed"); return 0

if __name__ == "__main__": sys.exit(main())
