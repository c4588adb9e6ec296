"""Real-browser tests: the panels in JupyterLab 4 and Notebook 7, and the static report from file://, driven
through the DOM by headless Chromium.

One Jupyter server per front end for the module (127.0.0.1, random free port, a token, announcements and update
checks off, all config, settings and runtime files in a temp dir) opens a notebook that builds a synthetic cube, a
matplotlib ``CubeExplorer`` and the anywidget ``LinkedExplorer``. In the page the test picks another model in the
matplotlib panel's dropdown, clicks a heatmap cell, hovers a scatter point and drags a box in the scatter; the
notebook's observers write the kernel-side state to a file, so the assertions read what the kernel saw and the DOM
(never pixels). The report test opens a report from disk with every request routed and checks none but the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NOTEBOOK_NAME = "panel_check.ipynb"
STATE_FILE = "panel_state.json"
LINKED_FILE = "linked_state.json"
HOSTILE = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"headless Chromium not found at {CHROMIUM} (install it: apt-get install -y chromium)"),
]

SETUP_CELL = f"""\
import json, pathlib
from robustviz.testing.cubes import make_cube
from robustviz.panels import CubeExplorer

ds = make_cube(n_models=2, n_perturbations=3, n_methods=2, n_samples=20)
panel = CubeExplorer(ds)

def record(change):
    pathlib.Path({STATE_FILE!r}).write_text(json.dumps({{
        "model": panel.model.value, "image_bytes": len(panel.image.value), "error": panel.last_error}}))

panel.model.observe(record, names="value")
panel.ensure_rendered()
print("models:", list(ds.model.values))

from robustviz.panels import LinkedExplorer
linked = LinkedExplorer(ds.assign_coords(model=["{HOSTILE}", *ds.model.values[1:]]))

def record_linked(change):
    pathlib.Path({LINKED_FILE!r}).write_text(json.dumps({{
        "perturbation": linked.perturbation, "severity": linked.severity, "cell": [linked.cell.get("perturbation"),
        linked.cell.get("severity")], "filter_models": linked.filter_models,
        "severity_range": linked.severity_range, "scatter_severities": linked.scatter.get("severities")}}))

linked.observe(record_linked, names=["perturbation", "severity", "filter_models", "severity_range"])
linked.observe(record_linked, names=["scatter"])
display(panel.widget, linked)
"""


def _notebook(source: str = SETUP_CELL) -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "panel-cell", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Jupyter server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the Jupyter server did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_server(frontend: str, tmp_path: Path, notebook: dict, name: str = NOTEBOOK_NAME):
    """A Jupyter server (``lab`` or ``notebook``) serving ``notebook``; yields (notebook URL, root dir, log)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / name).write_text(json.dumps(notebook))
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "MPLBACKEND": "Agg"}
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", frontend, "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}"]
    if frontend == "lab":
        command += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                    "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", process, log)
        path = f"/lab/tree/{name}" if frontend == "lab" else f"/notebooks/{name}"
        yield f"{base}{path}?token={token}", root, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["lab", "notebook"])
def jupyter_server(request, tmp_path_factory):
    """(frontend, notebook URL, root dir, log) of a running server, one per front end for the module."""
    frontend = request.param
    with running_server(frontend, tmp_path_factory.mktemp(f"jupyter-{frontend}"), _notebook()) as (url, root, log):
        yield frontend, url, root, log


def _wait_until(condition, timeout: float, what: str, page=None, artefacts: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(250)
        else:
            time.sleep(0.25)
    if page is not None and artefacts is not None:
        page.screenshot(path=str(artefacts / "failure.png"))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (screenshot: {artefacts / 'failure.png'})" if artefacts else ""))


def _run_first_cell(page, attempts: int = 4) -> None:
    """Shift+Enter in the first cell until its prompt shows it ran or is running (a request sent before the
    kernel's websocket is connected is dropped, so retry)."""
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    for _ in range(attempts):
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if re.search(r"\[(\*|\d+)\]", prompt.inner_text()):
                return
            page.wait_for_timeout(200)
    raise AssertionError("the notebook never ran its cell (the kernel did not start?)")


def _check_linked_views(page, linked_file: Path, artefacts: Path) -> None:
    """Heatmap click → per-sample view and kernel; scatter hover → tooltip; scatter box → curves and kernel; the
    hostile model name is text."""
    cell_view = page.locator(".rv-view-cell")
    cell_view.wait_for(state="visible", timeout=45_000)
    before = cell_view.get_attribute("data-key")
    target = page.locator(".rv-view-heatmap rect.rv-cell").nth(4)
    expected = json.dumps([target.get_attribute("data-perturbation"), int(target.get_attribute("data-severity"))],
                          separators=(",", ":"))
    assert expected != before
    target.click()
    _wait_until(lambda: cell_view.get_attribute("data-key") == expected, 30, "the per-sample view to change", page,
                artefacts)
    state = _wait_until(lambda: linked_file.exists() and json.loads(linked_file.read_text()), 30,
                        "the kernel to record the clicked cell", page, artefacts)
    assert [state["perturbation"], state["severity"]] == json.loads(expected) == state["cell"]
    assert json.loads(expected)[0] in page.locator(".rv-view-cell .rv-cell-title").inner_text()

    point = page.locator(".rv-view-scatter circle.rv-point").first
    point.hover()
    tooltip = page.locator(".rv-tooltip")
    _wait_until(lambda: tooltip.get_attribute("data-visible") == "true", 10, "the scatter tooltip", page, artefacts)
    assert f"model {point.get_attribute('data-model')}" in tooltip.inner_text()
    assert f"method {point.get_attribute('data-method')}" in tooltip.inner_text()

    legend = page.locator(".rv-view-curves .rv-legend-item")
    assert legend.count() == 2
    _drag_box_around(page, exclude_model=HOSTILE)
    _wait_until(lambda: legend.count() == 1, 30, "the scatter's box selection to filter the curves", page, artefacts)
    state = _wait_until(lambda: json.loads(linked_file.read_text())["filter_models"] and
                        json.loads(linked_file.read_text()), 30, "the kernel to see the filter", page, artefacts)
    assert HOSTILE not in state["filter_models"] and len(state["filter_models"]) == 1
    boxed = state["filter_models"]

    page.locator(".rv-clear-filter").click()
    _wait_until(lambda: legend.count() == 2, 30, "clearing the filter to show both models again", page, artefacts)
    _drag_box_around(page, exclude_model=boxed[0], lasso=True)  # the other model this time, with the lasso
    _wait_until(lambda: legend.count() == 1, 30, "the scatter's lasso to filter the curves", page, artefacts)
    state = _wait_until(lambda: json.loads(linked_file.read_text())["filter_models"] not in ([], boxed) and
                        json.loads(linked_file.read_text()), 30, "the kernel to see the lasso", page, artefacts)
    assert state["filter_models"] == [HOSTILE]

    # brush severities 2–4 in the curves: the kernel's severity_range and the scatter's cells follow
    page.locator(".rv-clear-filter").click()
    _wait_until(lambda: legend.count() == 2, 30, "clearing the filter", page, artefacts)
    _brush_severities(page, 2, 4)
    state = _wait_until(lambda: json.loads(linked_file.read_text()).get("scatter_severities") == [2, 3, 4] and
                        json.loads(linked_file.read_text()), 30, "the brushed severities to reach the scatter",
                        page, artefacts)
    assert state["severity_range"] == [2, 4]
    _wait_until(lambda: "severities 2–4" in page.locator(".rv-view-scatter .rv-scatter-x").text_content(), 30,
                "the scatter's axis to name the brushed severities", page, artefacts)
    assert page.locator(".rv-view-curves rect.rv-severity-brush").get_attribute("data-range") == "[2,4]"
    _check_hostile_text(page)


def _drag_box_around(page, exclude_model: str, lasso: bool = False) -> None:
    """Drag a small box in the scatter around the points of one model (not ``exclude_model``); with ``lasso``,
    choose the lasso tool and drag a freehand octagon instead."""
    points = page.locator(".rv-view-scatter circle.rv-point")
    page.locator(".rv-view-scatter svg").scroll_into_view_if_needed()
    boxes = [(points.nth(k).get_attribute("data-model"), points.nth(k).bounding_box()) for k in range(points.count())]
    mine = [box for model, box in boxes if model != exclude_model]
    other = [box for model, box in boxes if model == exclude_model]
    target = next(box for box in mine if all(abs(box["x"] - o["x"]) > 12 or abs(box["y"] - o["y"]) > 12
                                             for o in other))
    cx, cy = target["x"] + target["width"] / 2, target["y"] + target["height"] / 2
    if lasso:
        page.locator(".rv-view-scatter button.rv-tool-lasso").click()
        outline = [(cx + 10 * math.cos(k * math.pi / 4), cy + 10 * math.sin(k * math.pi / 4)) for k in range(9)]
        page.mouse.move(*outline[0])
        page.mouse.down()
        for x, y in outline[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()
        return
    page.mouse.move(cx - 9, cy - 9)
    page.mouse.down()
    page.mouse.move(cx + 9, cy + 9, steps=4)
    page.mouse.up()


def _brush_severities(page, low: int, high: int) -> None:
    """Drag across the severity curves from tick ``low`` to tick ``high``, below the curves (on the background)."""
    plot = page.locator(".rv-view-curves svg.rv-curves-plot")
    plot.scroll_into_view_if_needed()
    ticks = {int(t.text_content()): t.bounding_box() for t in plot.locator("text[text-anchor='middle']").all()
             if (t.text_content() or "").strip().isdigit()}
    box = plot.bounding_box()
    y = box["y"] + box["height"] - 17  # between the lowest curve and the tick labels
    page.mouse.move(ticks[low]["x"] + ticks[low]["width"] / 2 - 3, y)
    page.mouse.down()
    page.mouse.move(ticks[high]["x"] + ticks[high]["width"] / 2 + 3, y, steps=4)
    page.mouse.up()


def _check_zoom(page) -> None:
    """The scatter's zoom tool: a box around one point leaves only the points inside; a double-click restores all."""
    points = page.locator(".rv-view-scatter circle.rv-point")
    total = points.count()
    page.locator(".rv-view-scatter button.rv-tool-zoom").click()
    page.locator(".rv-view-scatter svg").scroll_into_view_if_needed()
    box = points.first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    inside = page.evaluate("""([cx, cy]) => [...document.querySelectorAll('.rv-view-scatter circle.rv-point')]
        .filter((c) => { const b = c.getBoundingClientRect();
                         return Math.abs(b.x + b.width / 2 - cx) <= 6 && Math.abs(b.y + b.height / 2 - cy) <= 6; })
        .length""", [cx, cy])
    page.mouse.move(cx - 6, cy - 6)
    page.mouse.down()
    page.mouse.move(cx + 6, cy + 6, steps=3)
    page.mouse.up()
    svg = page.locator(".rv-view-scatter svg")
    assert svg.get_attribute("data-zoomed") == "true"
    assert points.count() == inside < total
    svg.dblclick(position={"x": 5, "y": 5})
    assert svg.get_attribute("data-zoomed") == "false" and points.count() == total


def _check_hostile_text(page) -> None:
    """The hostile model name is shown as text and made no element."""
    assert page.locator("img[src='x']").count() == 0
    shown = page.evaluate("""(name) => [...document.querySelectorAll('.rv-root text, .rv-root option, .rv-root span')]
        .some((e) => e.textContent.includes(name))""", HOSTILE)
    assert shown


def test_dropdown_in_the_page_reaches_the_kernel_and_redraws(jupyter_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    frontend, url, root, log = jupyter_server
    state_file = root / STATE_FILE
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(45_000)
            page.goto(url)
            # the kernel is up when the execution indicator (both frontends) reports idle
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=45_000)
            _run_first_cell(page)
            model_dropdown = page.locator(".widget-dropdown", has=page.locator(
                "label", has_text=re.compile(r"^model$"))).locator("select")
            model_dropdown.wait_for(state="visible", timeout=45_000)
            image = page.locator(".jp-OutputArea .widget-image").first
            image.wait_for(state="visible")
            _wait_until(lambda: (image.get_attribute("src") or "") != "", 20, "the panel image", page, tmp_path)
            source_before = image.get_attribute("src")
            options = model_dropdown.locator("option").all_inner_texts()
            assert len(options) == 2, options
            assert not state_file.exists()

            model_dropdown.select_option(label=options[1])

            state = _wait_until(lambda: state_file.exists() and json.loads(state_file.read_text()), 30,
                                "the kernel to record the new dropdown value", page, tmp_path)
            assert state["model"] == options[1] and state["error"] is None and state["image_bytes"] > 1000
            _wait_until(lambda: image.get_attribute("src") != source_before, 20, "the panel image to change",
                        page, tmp_path)
            _check_linked_views(page, root / LINKED_FILE, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            (tmp_path / "failure.html").write_text(page.content())
            print(f"screenshot and page: {tmp_path}/failure.png, failure.html; server log: {log}")
            raise
        finally:
            browser.close()


def test_static_report_from_file_renders_every_view_offline(tmp_path):
    """The report opened from file:// with every request routed: only the file itself is requested; every view
    draws; a heatmap click changes the per-sample view, a hover shows a tooltip; hostile names stay text."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from robustviz.panels import write_report
    from robustviz.testing.cubes import make_cube

    cube = make_cube(n_models=2, n_perturbations=3, n_methods=2, n_samples=20, n_examples=2, image_size=16)
    cube = cube.assign_coords(model=[HOSTILE, *cube.model.values[1:]]).rename({"cosine": HOSTILE})
    cube[HOSTILE].attrs["category"] = "explanation-robustness"
    cube["correct"] = cube["correct"].astype(float)
    cube["correct"][0, 1] = float("nan")  # a region not written yet: must show as missing, not as 0
    path = write_report(cube, tmp_path / "report.html", figures=False)
    requests, dialogs, errors = [], [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.route("**/*", lambda route: (requests.append(route.request.url),
                                              route.continue_() if route.request.url.startswith("file://")
                                              else route.abort()))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(path.as_uri())
            page.wait_for_selector(".rv-view-heatmap rect.rv-cell", timeout=20_000)
            for view in ("heatmap", "cell", "curves", "scatter", "gallery", "spectral", "fisher"):
                body = page.locator(f".rv-view-{view} .rv-body")
                assert body.locator(".rv-error").count() == 0, (view, body.inner_text())
                assert body.locator("svg, table").count() >= 1, view
            page.wait_for_selector("canvas.rv-map[data-painted]", timeout=10_000)
            missing = page.locator(".rv-view-heatmap rect.rv-missing")
            assert missing.count() == cube.sizes["severity"]
            assert {missing.nth(k).get_attribute("data-perturbation") for k in range(missing.count())} == \
                {str(cube.perturbation.values[1])}
            missing.first.hover()
            assert "missing" in page.locator(".rv-tooltip").inner_text()
            cell_view = page.locator(".rv-view-cell")
            before = cell_view.get_attribute("data-key")
            page.locator(".rv-view-heatmap rect.rv-cell").nth(2).click()
            assert cell_view.get_attribute("data-key") != before
            page.locator(".rv-view-scatter circle.rv-point").first.hover()
            assert page.locator(".rv-tooltip").get_attribute("data-visible") == "true"
            assert "accuracy" in page.locator(".rv-tooltip").inner_text()
            _check_zoom(page)
            _brush_severities(page, 3, 5)  # the report embeds the scatter of every brushable range
            assert "severities 3–5" in page.locator(".rv-view-scatter .rv-scatter-x").text_content()
            assert page.locator(".rv-view-scatter .rv-error").count() == 0
            _check_hostile_text(page)
            assert HOSTILE in page.locator(".rv-view-scatter").inner_text()  # the metric name, as text
            assert HOSTILE in page.locator("#rv-tables").inner_text()
        finally:
            browser.close()
    assert requests == [path.as_uri()], requests
    assert not dialogs and not errors, (dialogs, errors)
