"""Real-browser test: a panel in JupyterLab 4 and Notebook 7, driven through the DOM by headless Chromium.

Starts a Jupyter server on 127.0.0.1 (random free port, a token, announcements and update checks off, all config,
settings and runtime files in a temp dir), opens a notebook that builds a synthetic cube and a ``CubeExplorer``,
runs it, picks another model in the panel's "model" dropdown in the page, and checks that the kernel saw the new
value (the notebook writes it to a file from an observer) and that the panel's <img> changed.
"""

from __future__ import annotations

import json
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
panel.widget
"""


def _notebook() -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "panel-cell", "metadata": {},
                   "outputs": [], "source": SETUP_CELL}],
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


@pytest.fixture(params=["lab", "notebook"])
def jupyter_server(request, tmp_path):
    """(frontend, notebook URL, root dir) of a running server; stopped afterwards."""
    frontend = request.param
    root = tmp_path / "root"
    root.mkdir()
    (root / NOTEBOOK_NAME).write_text(json.dumps(_notebook()))
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
        path = f"/lab/tree/{NOTEBOOK_NAME}" if frontend == "lab" else f"/notebooks/{NOTEBOOK_NAME}"
        yield frontend, f"{base}{path}?token={token}", root, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            (tmp_path / "failure.html").write_text(page.content())
            print(f"screenshot and page: {tmp_path}/failure.png, failure.html; server log: {log}")
            raise
        finally:
            browser.close()
