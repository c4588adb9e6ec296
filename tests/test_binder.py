"""The Binder recipe works: a truly fresh virtualenv, only what binder/ names, then the quickstart notebook runs.

Slow (a couple of minutes: the virtualenv installs torch and the scientific stack). The notebook is executed by
nbclient from the test environment with a kernel whose Python is the fresh virtualenv's, so nothing of the test
environment leaks into the kernel.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _requirements_for_here(tmp_path: Path) -> Path:
    """binder/requirements.txt as Binder reads it; when the PyTorch CPU index is unreachable (an offline CI
    machine) the index line is dropped and pip's own configuration supplies torch (the CPU build here)."""
    text = (BINDER / "requirements.txt").read_text()
    if _reachable("download.pytorch.org"):
        return BINDER / "requirements.txt"
    lines = []
    for line in text.splitlines():
        if line.strip() == f"--extra-index-url {CPU_INDEX}":
            continue
        if line.strip().startswith("-c ") or line.strip().startswith("-r "):  # keep nested files' meaning
            option, name = line.split(maxsplit=1)
            line = f"{option} {(BINDER / name).resolve()}"
        lines.append(line)
    copy = tmp_path / "requirements.txt"
    copy.write_text("\n".join(lines) + "\n")
    return copy


def test_binder_files_name_the_package_the_cpu_torch_pin_and_a_kernel():
    lines = [line.strip() for line in (BINDER / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "-e ." in lines or "." in lines, "Binder must install the package itself"
    assert "-c ../constraints.txt" in lines, "the torch pin of constraints.txt"
    assert f"--extra-index-url {CPU_INDEX}" in lines, "the CPU build of torch (no CUDA libraries on Binder)"
    assert "ipykernel" in lines
    assert "torch==" in (ROOT / "constraints.txt").read_text()
    assert "00_quickstart.ipynb" in (BINDER / "requirements.txt").read_text()  # the documented start URL


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_runs_in_a_fresh_binder_environment(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    environment = tmp_path / "binder-venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(environment)
    python = environment / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                              str(_requirements_for_here(tmp_path))],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    probe = subprocess.run([str(python), "-c", "import sys, torch, robustviz; "
                            "print(sys.prefix, torch.__version__, torch.version.cuda, robustviz.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    prefix, torch_version, cuda, package = probe.stdout.split()
    assert prefix == str(environment), "the fresh venv's own Python, not the test environment's"
    pin = (ROOT / "constraints.txt").read_text().split("torch==")[1].split()[0]
    assert torch_version.split("+")[0] == pin and cuda == "None", f"CPU torch {pin} expected, got {torch_version}"
    assert Path(package).resolve().is_relative_to(ROOT), "the package installed from this repository"

    kernels = tmp_path / "kernels" / "binder-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "binder test", "language": "python", "env": {"MPLBACKEND": "Agg"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path) + os.pathsep + os.environ.get("JUPYTER_PATH", ""))
    notebook = nbformat.read(ROOT / "notebooks" / "00_quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="binder-test", timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) >= 2, "the quickstart draws its severity curves and gallery"
