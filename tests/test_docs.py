"""The documentation: the Sphinx build passes with warnings as errors and renders the tutorial notebooks; the
guide's metric table covers every registered metric; every notebook is in the docs' table of contents."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import robustviz as rv

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_registered_metric_is_defined_in_the_guide():
    text = (DOCS / "guide" / "metrics.md").read_text()
    missing = [name for name in rv.list_names("metric") if f"`{name}`" not in text]
    assert not missing, f"docs/guide/metrics.md lacks {missing}"


def test_every_notebook_is_in_the_table_of_contents_and_cited_sources_exist():
    index = (DOCS / "index.md").read_text()
    assert len(NOTEBOOKS) >= 7
    for notebook in NOTEBOOKS:
        assert f"tutorials/{notebook.stem}" in index, notebook.name
    labels = set(re.findall(r"^\(([a-z0-9]+)\)=$", (DOCS / "references.md").read_text(), flags=re.M))
    cited = set(re.findall(r"\{ref\}`[^`<]*<([a-z0-9]+)>`", (DOCS / "guide" / "metrics.md").read_text()))
    assert cited and cited <= labels, f"citations without a reference entry: {cited - labels}"
    toctree = re.findall(r"```\{toctree\}(.*?)```", index, flags=re.S)
    pages = [line.strip() for block in toctree for line in block.splitlines()
             if line.strip() and not line.strip().startswith(":")]
    for page in pages:
        assert (DOCS / f"{page}.md").exists() or (ROOT / "notebooks" / f"{Path(page).name}.ipynb").exists(), page


def test_notebooks_store_their_outputs_and_stay_small():
    for notebook in NOTEBOOKS:
        content = json.loads(notebook.read_text())
        code = [cell for cell in content["cells"] if cell["cell_type"] == "code"]
        assert all(cell.get("execution_count") for cell in code), f"{notebook.name} is not executed"
        assert any("image/png" in output.get("data", {}) for cell in code for output in cell.get("outputs", [])), \
            f"{notebook.name} shows no figure"
        assert "application/vnd.jupyter.widget-state+json" not in content.get("metadata", {}).get("widgets", {})
        assert notebook.stat().st_size < 1_500_000, f"{notebook.name} is {notebook.stat().st_size} bytes"
        assert not any(output.get("output_type") == "error" for cell in code for output in cell.get("outputs", []))


@pytest.mark.slow
def test_sphinx_build_passes_with_warnings_as_errors_and_renders_the_notebooks(tmp_path):
    pytest.importorskip("myst_nb")
    pytest.importorskip("furo")
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                            str(DOCS), str(tmp_path / "html"), "-d", str(tmp_path / "doctrees")],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-5000:]
    html = tmp_path / "html"
    for notebook in NOTEBOOKS:
        page = html / "tutorials" / f"{notebook.stem}.html"
        assert page.exists(), f"{notebook.name} was not rendered"
        text = page.read_text()
        title = json.loads(notebook.read_text())["cells"][0]["source"]
        title = (title if isinstance(title, str) else "".join(title)).splitlines()[0].lstrip("# ").strip()
        assert title.split(":")[0].split("?")[0] in text, f"{notebook.name}: title {title!r} not on the page"
        assert "<img" in text, f"{notebook.name}: no stored figure rendered"
    api = (html / "api.html").read_text()
    for name in ("robustviz.evaluate.engine.evaluate", "robustviz.figures.tables.to_latex",
                 "robustviz.figures.export.write_all", "robustviz.cube.accessor.RobustvizAccessor"):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"
    assert (html / "guide" / "metrics.html").exists() and (html / "references.html").exists()
