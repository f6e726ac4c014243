"""Remove ipywidgets state from notebooks, which `nbdev-clean` deliberately keeps.

Widget state (`metadata.widgets`) is a large JSON blob that changes on every run; widget-view outputs point
into it. Neither is readable without a live kernel, so both go; the text fallback of each output stays.
"""
import json, sys
from pathlib import Path

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

def strip(path: Path) -> bool:
    "Strip widget state from one notebook; return True if the file changed."
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    popped = nb.get("metadata", {}).pop("widgets", None) is not None
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            popped |= out.get("data", {}).pop(WIDGET_MIME, None) is not None
    # Same layout as nbdev's writer (fastcore.nbio.nb2str), so the two never fight over a file.
    if popped: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return popped

if __name__ == "__main__":
    roots = [Path(a) for a in sys.argv[1:]] or [Path("nbs")]
    nbs = [p for r in roots for p in ([r] if r.is_file() else sorted(r.glob("*.ipynb")))]
    changed = [str(p) for p in nbs if strip(p)]
    if changed: print("stripped widget state from:", *changed)
