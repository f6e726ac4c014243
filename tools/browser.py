"""Headless Chromium (Debian's `chromium`) driven over its DevTools protocol through a pipe: stdlib only, no
websocket client, no browser download. Used by docs/check.py (the website) and tools/notebook_check.py (JupyterLab).
"""
from __future__ import annotations
import base64, fcntl, json, os, shutil, subprocess, tempfile, time
from pathlib import Path

def find_chromium() -> str:
    "The Chromium executable, or SystemExit with the command that installs it."
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if not exe: raise SystemExit("this check needs Debian's chromium: apt-get install -y chromium")
    return exe

class Browser:
    "Headless Chromium over --remote-debugging-pipe: JSON messages, NUL-terminated, on fds 3 (in) and 4 (out)."
    def __init__(self, exe: str, width=1280, height=1400):
        self.profile = tempfile.mkdtemp(prefix="ddpm-docs-chrome-")
        r_in, w_in = os.pipe(); r_out, w_out = os.pipe()
        def child():
            # Via fds >= 10 first: os.pipe() often hands out 3 or 4 itself, and dup2(3, 3) is a no-op that keeps
            # the pipe's close-on-exec flag, so Chromium would start without its pipe ("fds are not open").
            a, b = fcntl.fcntl(r_in, fcntl.F_DUPFD, 10), fcntl.fcntl(w_out, fcntl.F_DUPFD, 10)
            os.dup2(a, 3); os.dup2(b, 4)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
                 "--disable-default-apps", "--mute-audio", "--hide-scrollbars", f"--window-size={width},{height}",
                 f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen([exe, *flags], preexec_fn=child, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in); os.close(w_out)
        self.w, self.r = os.fdopen(w_in, "wb", buffering=0), os.fdopen(r_out, "rb", buffering=0)
        self.buf, self.id, self.events = b"", 0, []
        tid = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=tid, flatten=True)["sessionId"]
        for dom in ("Page", "Runtime", "Network"): self.call(f"{dom}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _read(self, timeout=60):
        t0 = time.time()
        while b"\0" not in self.buf:
            chunk = self.r.read(65536)
            if not chunk: raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
            if time.time() - t0 > timeout: raise TimeoutError("no answer from chromium")
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=False, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params}
        if session: msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self.id:
                if "error" in m: raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            for i, e in enumerate(self.events):
                if e.get("method") == name: return self.events.pop(i)
            self.events.append(self._read(timeout))
        raise TimeoutError(f"no {name} within {timeout}s")

    def js(self, expr, timeout=60):
        r = self.call("Runtime.evaluate", session=True, expression=expr, awaitPromise=True, returnByValue=True,
                      timeout=timeout * 1000)
        if "exceptionDetails" in r: raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url):
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")
        self.settle()

    def settle(self):
        # MathJax typesets after load: wait for its startup promise, then for every image to finish.
        self.js("(window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve()")
        self.js("Promise.all([...document.images].map(i => i.complete ? 1 : new Promise(r => {i.onload = i.onerror = r})))")

    def screenshot(self, path: Path, clip=None):
        kw = {"format": "png"}
        if clip: kw["clip"] = {**clip, "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", session=True, **kw)["data"]))

    def close(self):
        try: self.call("Browser.close")
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
