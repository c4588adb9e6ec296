"""Sphinx configuration: MyST Markdown pages, notebooks rendered from their stored outputs (myst-nb, never
executed here), the API reference from docstrings (autodoc + napoleon), furo theme.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors; ``tests/test_docs.py`` does this).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import robustviz  # noqa: E402

TUTORIALS = Path(__file__).resolve().parent / "tutorials"


def copy_notebooks(source: Path = ROOT / "notebooks", target: Path = TUTORIALS) -> list[Path]:
    """Copy the tutorial notebooks into the docs source (``docs/tutorials/``, git-ignored).

    Sphinx only reads documents inside its source folder, and it resolves symbolic links, so links between
    notebooks break with symlinks; a copy made when the docs are built keeps notebooks/ the only stored version.
    Each copy is written to a temporary file and renamed, so concurrent builds never read half a notebook.
    """
    target.mkdir(exist_ok=True)
    wanted = sorted(source.glob("*.ipynb"))
    for notebook in wanted:
        copy = target / notebook.name
        if copy.exists() and copy.read_bytes() == notebook.read_bytes():
            continue
        with tempfile.NamedTemporaryFile(dir=target, suffix=".tmp", delete=False) as handle:
            handle.write(notebook.read_bytes())
        os.replace(handle.name, copy)
    for stale in set(target.glob("*.ipynb")) - {target / notebook.name for notebook in wanted}:
        stale.unlink(missing_ok=True)
    return wanted


copy_notebooks()

project = "robustviz"
author = "robustviz developers"
copyright = "robustviz developers"
release = robustviz.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
try:  # optional: a copy button on code blocks when installed (the docs extra names it)
    import sphinx_copybutton  # noqa: F401

    extensions.append("sphinx_copybutton")
except ImportError:
    pass

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "README.md"]
root_doc = "index"

# MyST / myst-nb: notebooks are executed by the tests (nbval) and stored with their outputs; the docs only render them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True
suppress_warnings = ["myst.header"]  # pages written by several authors may start below level 1 in sub-sections

# API reference: docstrings (numpy/Google style via napoleon), the curated robustviz.__all__ first.
autosummary_generate = False  # no generated stub files in the source tree
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "furo"
html_title = f"robustviz {release}"
html_theme_options = {"source_repository": "https://github.com/robustviz/robustviz", "source_branch": "main",
                      "source_directory": "docs/"}


def build_demo_report() -> str:
    """The static report of a small synthetic cube, for docs/panels.md to embed (``demo_report.html`` at the site
    root, via ``html_extra_path``). Built into a temporary folder at each docs build: a few seconds."""
    from robustviz.panels import write_report
    from robustviz.testing.cubes import make_cube

    folder = Path(tempfile.mkdtemp(prefix="robustviz-docs-report-"))
    cube = make_cube(n_models=3, n_perturbations=5, n_methods=3, n_samples=40, n_examples=2, image_size=32, seed=0)
    write_report(cube, folder / "demo_report.html", figures=True, title="robustviz demo report (synthetic cube)")
    return str(folder)


html_extra_path = [build_demo_report()]
