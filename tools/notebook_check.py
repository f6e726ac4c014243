"""The book as a learner meets it: JupyterLab in a real browser (Debian's headless Chromium).

For each chapter given (default: every chapter with a widget, plus one workshop exercise) it starts JupyterLab on
127.0.0.1 with a token, in a temporary copy of the notebooks (the committed ones are never touched), opens the
notebook, runs all cells, and checks:
  1. no cell's output is an error, and no widget's output area holds a traceback (ipywidgets shows a failing
     callback's traceback *inside* the widget, where `nbdev-test` cannot see it);
  2. every ipywidgets slider of the notebook's source is drawn as a widget, and no output shows a widget's text
     stand-in (`interactive(children=...`), neither as the notebook opens nor after it ran;
  3. moving each slider (the keyboard's arrow keys on its handle, as a user would) moves its readout and changes
     the figure below it (the image data before and after differ);
  4. for a workshop exercise: no line of its solutions (workshop/solutions.py, which the notebook prints only on
     request) is on the page as handed out or after running all, while the exercise cell's code is (so the check
     can see code at all).
Screenshots go to _notebook_check/. Usage: python tools/notebook_check.py [01_schedules ex_04_unet ...] [--exercise X]
(a name starting with `ex_` is checked as a workshop exercise; `--exercise ''` opens none besides those named).
"""
from __future__ import annotations
import argparse, ast, json, os, re, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / '_notebook_check'
WIDGET_CHAPTERS = ['01_schedules', '02_forward', '04_unet', '05_diffusion', '05b_score']
# Every cell in the DOM (JupyterLab 4 otherwise renders only the cells near the viewport), and no news pop-up.
LAB_SETTINGS = {'@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
                '@jupyterlab/apputils-extension/notification.jupyterlab-settings':
                    {'fetchNews': 'false', 'checkForUpdates': False}}

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def start_lab(folder: Path, port: int, token: str):
    "JupyterLab serving `folder`, with its application object exposed so the check can run commands."
    settings, workspaces = folder.parent / 'lab-settings', folder.parent / 'lab-workspaces'
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    workspaces.mkdir(exist_ok=True)
    log = open(folder.parent / 'jupyter.log', 'w')
    root = ['--allow-root'] if os.geteuid() == 0 else []
    proc = subprocess.Popen([str(Path(sys.executable).parent / 'jupyter'), 'lab', '--no-browser', f'--port={port}',
                             '--ip=127.0.0.1', *root, f'--IdentityProvider.token={token}',
                             f'--ServerApp.root_dir={folder}', '--LabApp.expose_app_in_browser=True',
                             '--LabApp.news_url=', f'--LabApp.user_settings_dir={settings}',
                             f'--LabApp.workspaces_dir={workspaces}'],
                            stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    for _ in range(120):
        try:
            urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2)
            return proc
        except OSError: time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"JupyterLab did not start: see {folder.parent / 'jupyter.log'}")

def wait(b: Browser, expr: str, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if b.js(expr): return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")

NB = "window.jupyterapp.shell.currentWidget"
OPENED = f"!!(window.jupyterapp && {NB} && {NB}.sessionContext && {NB}.sessionContext.session && " \
         f"{NB}.sessionContext.session.kernel && {NB}.sessionContext.session.kernel.status === 'idle')"
IDLE = f"{NB}.sessionContext.session.kernel.status === 'idle'"
# runAll resolves once every cell has run, or at the first cell that raised.
RUN_ALL = "window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => true)"
CLOSE = f"""(async () => {{ const nb = {NB}; await nb.sessionContext.shutdown();
  nb.context.model.dirty = false; nb.close(); return true; }})()"""
FACTS = f"""(() => {{
  const nb = {NB}, cells = nb.content.model.cells, errors = [];
  for (let i = 0; i < cells.length; i++) {{ const c = cells.get(i);
    if (c.type !== 'code') continue;
    for (let j = 0; j < c.outputs.length; j++) {{ const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push({{cell: i, error: o.ename + ': ' + o.evalue}}); }} }}
  const inWidgets = [...nb.node.querySelectorAll('.widget-output .jp-OutputArea-output')]
    .filter(e => /Traceback|\\w+Error:/.test(e.innerText)).map(e => e.innerText.slice(0, 300));
  if (nb.node.innerText.includes('Error displaying widget')) inWidgets.push('Error displaying widget');
  const stand_ins = [...nb.node.querySelectorAll('.jp-OutputArea-output')]
    .filter(e => /^\\s*\\w+\\((children|value)=/.test(e.innerText)).map(e => e.innerText.slice(0, 80));
  return {{errors, inWidgets, stand_ins, sliders: nb.node.querySelectorAll('.widget-slider').length,
          text: nb.node.innerText}}; }})()"""
SLIDER = f"""((k) => {{ const s = {NB}.node.querySelectorAll('.widget-slider')[k], cell = s.closest('.jp-Cell');
  s.scrollIntoView({{block: 'center'}});
  const src = [...cell.querySelectorAll('.widget-output img')].map(i => i.src).join('|');
  let h = 0; for (let i = 0; i < src.length; i++) h = (h * 31 + src.charCodeAt(i)) | 0;
  const r = cell.getBoundingClientRect(), y = Math.max(r.y, 0), ro = s.querySelector('.widget-readout');
  return {{img: src ? src.length + ':' + h : '', readout: ro ? ro.innerText : '',
          rect: {{x: r.x, y: y, width: r.width, height: Math.min(r.bottom, innerHeight) - y}}}}; }})"""

def move_slider(b: Browser, k: int):
    "Focus slider k's handle and press the right arrow three times, as a learner would (each press is one redraw)."
    b.js(f"{NB}.node.querySelectorAll('.widget-slider')[{k}].querySelector('.noUi-handle').focus()")
    for _ in range(3):
        for kind in ('keyDown', 'keyUp'):
            b.call('Input.dispatchKeyEvent', session=True, type=kind, key='ArrowRight', code='ArrowRight',
                   windowsVirtualKeyCode=39, nativeVirtualKeyCode=39)
        time.sleep(0.1)

def source_facts(path: Path):
    """The sliders a notebook's code makes; the lines of its solutions (in workshop/solutions.py, the functions its
    exercise cells define) that the notebook does not hold; and the lines only its exercise cells hold."""
    code = [''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']
    sliders = sum(len(re.findall(r'\b(?:Int|Float)Slider\(', s)) for s in code)
    exercise = [s for s in code if re.search(r'^\s*# your turn', s, re.M)]     # the cell a learner fills in
    others = '\n'.join(s for s in code if s not in exercise)
    own = lambda texts, rest: [l.strip() for s in texts for l in s.splitlines() if len(l.strip()) > 12
                               and l.strip() not in rest]
    names = {f.name for s in exercise for f in ast.parse(s).body if isinstance(f, ast.FunctionDef)}
    sol_src = (ROOT / 'workshop' / 'solutions.py').read_text()
    solutions = [ast.get_source_segment(sol_src, f) for f in ast.parse(sol_src).body
                 if isinstance(f, ast.FunctionDef) and f.name in names]
    return sliders, own(solutions, '\n'.join(code)), own(exercise, others)

def check_handed_out(name: str, text: str, solution: list, exercise: list, errors: list):
    if not exercise: errors.append(f"{name}: no exercise cell (`# your turn`), so nothing to check the page against")
    elif not any(l in text for l in exercise):
        errors.append(f"{name}: the exercise cell's code is not on the page, so the solution check sees nothing")
    if not solution: errors.append(f"{name}: workshop/solutions.py has no solution for its exercise cells")
    shown = [l for l in solution if l in text]
    if shown: errors.append(f"{name}: the solution is on the page as handed out: {shown[0]!r}")

def check(b: Browser, base: str, token: str, path: Path, errors: list, exercise=False):
    name, (n_sliders, solution, ex_lines), t0 = path.stem, source_facts(path), time.monotonic()
    b.open(f"{base}lab/tree/{path.name}?reset&token={token}")
    wait(b, OPENED, 180, f'{name} to open')
    time.sleep(2)
    f = b.js(FACTS)
    errors += [f"{name}: as opened, a widget is shown as its text stand-in: {s!r}" for s in f['stand_ins']]
    if exercise:
        check_handed_out(name, f['text'], solution, ex_lines, errors)
        b.screenshot(SHOTS / f'{name}-as-handed-out.png')
    t_open = time.monotonic()
    b.js(RUN_ALL, timeout=900)
    wait(b, IDLE, 900, f'{name} to run')
    t_run = time.monotonic()
    time.sleep(3)                                               # widget views render after the kernel is idle
    f = b.js(FACTS)
    errors += [f"{name}: cell {e['cell']} raised {e['error']}" for e in f['errors']]
    errors += [f"{name}: a widget's output holds a traceback: {t}" for t in f['inWidgets']]
    errors += [f"{name}: after running, a widget is shown as its text stand-in: {s!r}" for s in f['stand_ins']]
    if f['sliders'] != n_sliders: errors.append(f"{name}: {f['sliders']} slider(s) drawn, the code makes {n_sliders}")
    b.js(f"{NB}.content.node.scrollTop = 0; {NB}.node.querySelectorAll('.jp-WindowedPanel-outer')"
         ".forEach(e => e.scrollTop = 0)")
    b.screenshot(SHOTS / f'{name}.png')
    for k in range(f['sliders']):
        before = b.js(f"{SLIDER}({k})")
        b.screenshot(SHOTS / f'{name}-slider{k}-before.png', clip=before['rect'])
        move_slider(b, k)
        t_move = time.monotonic()
        while time.monotonic() - t_move < 60 and b.js(f"{SLIDER}({k})")['img'] == before['img']: time.sleep(0.5)
        wait(b, IDLE, 120, f'{name} slider {k} to redraw')
        time.sleep(1)
        after = b.js(f"{SLIDER}({k})")
        b.screenshot(SHOTS / f'{name}-slider{k}-after.png', clip=after['rect'])
        if after['readout'] == before['readout']: errors.append(f"{name}: slider {k} did not move (readout "
                                                                f"{before['readout']!r})")
        if not before['img']: errors.append(f"{name}: slider {k} has no figure below it")
        elif before['img'] == after['img']: errors.append(f"{name}: moving slider {k} did not change its figure")
        g = b.js(FACTS)
        errors += [f"{name}: after moving slider {k}, a widget's output holds a traceback: {t}"
                   for t in g['inWidgets'] if t not in f['inWidgets']]
        print(f"  {name} slider {k}: readout {before['readout']} -> {after['readout']}, "
              f"figure {'changed' if before['img'] and before['img'] != after['img'] else 'NOT changed'}", flush=True)
    if exercise:
        check_handed_out(name + ' (after running)', b.js(FACTS)['text'], solution, ex_lines, errors)
    b.js(CLOSE)
    print(f"{name}: {f['sliders']} slider(s), {len(f['errors'])} error output(s); open {t_open - t0:.0f} s, "
          f"run all {t_run - t_open:.0f} s, sliders {time.monotonic() - t_run:.0f} s", flush=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('chapters', nargs='*', default=WIDGET_CHAPTERS)
    ap.add_argument('--exercise', default='ex_02_forward',
                    help="a workshop exercise to open as handed out ('' for none)")
    a = ap.parse_args()
    exe = find_chromium()
    SHOTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='ddpm-lab-'))
    shutil.copytree(ROOT / 'nbs', work / 'nbs')
    shutil.copy(ROOT / 'settings.ini', work / 'settings.ini')                     # chapters read ../settings.ini
    for ex in (ROOT / 'workshop').glob('*.ipynb'): shutil.copy(ex, work / 'nbs' / ex.name)
    port, token = free_port(), secrets.token_hex(16)
    lab, b, errors, t0 = start_lab(work / 'nbs', port, token), None, [], time.monotonic()
    try:
        b = Browser(exe, width=1280, height=1600)
        base = f'http://127.0.0.1:{port}/'
        for name in a.chapters + ([a.exercise] if a.exercise else []):
            check(b, base, token, work / 'nbs' / f'{name}.ipynb', errors, exercise=name.startswith('ex_'))
    finally:
        if b: b.close()
        lab.terminate()
        lab.wait(30)
    print(f"notebook check: {len(a.chapters) + bool(a.exercise)} notebooks in {time.monotonic() - t0:.0f} s; "
          f"screenshots in {SHOTS.relative_to(ROOT)}/")
    if errors: sys.exit('\n'.join(['notebook check FAILED:', *errors, f'(JupyterLab log: {work / "jupyter.log"})']))
    shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
