"""Remove ipywidgets state and the outputs that stood for widgets from notebooks; `nbdev-clean` keeps both.

Widget state (`metadata.widgets`) is a large JSON blob that changes on every run; widget-view outputs point
into it. Neither is readable without a live kernel, so both go. So does the output that carried the view: its
text/plain fallback is only the widget's repr (`interactive(children=(IntSlider(...`), which JupyterLab and the
website would show as text. Also dropped: that stand-in where an earlier strip (or a kernel without widgets,
such as nbdev's) left it alone, and the stream output that `clear_output` writes without a frontend (only
erase-line codes: an empty box on the page). A figure a widget's callback drew stays, as a static picture.
"""
import json, re, sys
from pathlib import Path

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# The repr of an ipywidgets widget: `ClassName(` then one of the traits every widget repr starts with.
STAND_IN = re.compile(r"^[A-Za-z]\w*\((?:children|value|description|layout|options)=")
ERASE = re.compile(r"(?:\x1b\[2K|\r)+")

def is_widget_output(out: dict) -> bool:
    "A widget view, or only its text stand-in, or only `clear_output`'s erase-line codes."
    data = out.get("data", {})
    if WIDGET_MIME in data: return True
    if out.get("output_type") == "display_data" and set(data) == {"text/plain"}:
        return bool(STAND_IN.match("".join(data["text/plain"])))
    if out.get("output_type") == "stream":
        text = "".join(out.get("text", ""))
        return bool(text) and not ERASE.sub("", text)
    return False

def strip(path: Path) -> bool:
    "Strip widget state and widget outputs from one notebook; return True if the file changed."
    nb = json.loads(path.read_text(encoding="utf-8"))
    popped = nb.get("metadata", {}).pop("widgets", None) is not None
    for cell in nb.get("cells", []):
        outs = cell.get("outputs", [])
        keep = [o for o in outs if not is_widget_output(o)]
        if len(keep) != len(outs): cell["outputs"], popped = keep, True
    # Same layout as nbdev's writer (fastcore.nbio.nb2str), so the two never fight over a file.
    if popped: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return popped

if __name__ == "__main__":
    roots = [Path(a) for a in sys.argv[1:]] or [Path("nbs")]
    nbs = [p for r in roots for p in ([r] if r.is_file() else sorted(r.glob("*.ipynb")))]
    changed = [str(p) for p in nbs if strip(p)]
    if changed: print("stripped widget state and outputs from:", *changed)
