# Sphinx configuration for the book's website (`make docs`; see docs/README.md). The source tree is staged by
# docs/build.py into build/docs-src/, so paths here are relative to that folder.
from pathlib import Path
import ddpm_nb

STAGED = Path(__file__).resolve().parent.parent / "build" / "docs-src"

project = "ddpm_nb"
author = "ddpm_nb developers"
copyright = "ddpm_nb developers, Apache-2.0"
release = version = ddpm_nb.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
# Notebooks are committed with their outputs (figures included): render those, never re-execute.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# MathJax 3 from our own _static (npm's `mathjax` package, copied by build.py): no CDN, works offline.
mathjax_path = "mathjax/tex-chtml.js"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_title = "ddpm_nb: DDPM, a notebook-first textbook"
html_theme = "sphinx_book_theme"
html_static_path = [str(STAGED / "_static")]  # paths here are relative to docs/, not to the staged source
html_css_files = ["book.css"]                  # written by build.py: wide equations scroll instead of being cut off
html_theme_options = {
    "repository_url": "https://github.com/ddpm-nb/ddpm_nb",
    "repository_branch": "main",
    "path_to_docs": "",
    # A link per chapter to open its notebook on Colab (a plain link: nothing is fetched when building).
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "use_repository_button": True,
    "show_toc_level": 2,
}
html_last_updated_fmt = None
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]


def _drop_type_docstring(app, what, name, obj, options, lines):
    "A constant without a doc comment is given its type's docstring (str's, tuple's) by autodoc: drop that."
    doc = type(obj).__doc__
    if what == "data" and doc and " ".join(lines).split() == doc.split(): lines.clear()

def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstring)
