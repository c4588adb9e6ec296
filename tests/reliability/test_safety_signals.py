"""Issue 15 acceptance 3 and point 10: Ctrl-C (SIGINT) and SIGTERM stop ``robustviz run`` with one line that names
``--resume`` (no traceback, exit 130 / 143), and ``--resume`` then completes the same cube as an uninterrupted run,
without computing a finished region again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import robustviz as rv
from tests.evaluate.helpers import crash_spec, read_region_events
from tests.evaluate.test_engine import assert_cubes_equal

ROOT = Path(__file__).resolve().parents[2]

#: ``robustviz run`` in a subprocess that prints START/DONE per region (as tests/evaluate/test_resume.py does).
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.evaluate.helpers import print_region_starts  # also registers the test components
from robustviz.evaluate import engine
from robustviz.cli import main

print_region_starts()
original_run = engine._run_regions
def run_regions(plan, sink, progress, on_region):
    return original_run(plan, sink, progress, lambda key: print("DONE", *key, flush=True))
engine._run_regions = run_regions
sys.exit(main(sys.argv[1:]))
"""


def run_cli(args: list[str], stop_after: int | None, signum: int | None, delay: str):
    env = {**os.environ, "ROBUSTVIZ_TEST_DELAY": delay, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT)), *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events = read_region_events(process, stop_after, signum)
    process.stdout.read()
    stderr = process.stderr.read() if process.stderr else ""
    process.wait(timeout=120)
    return events, process.returncode, stderr


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_prints_one_line_naming_resume_and_resume_completes_the_cube(tmp_path, signum, status):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(crash_spec().to_yaml())
    store = tmp_path / "cube.zarr"
    args = ["run", str(spec_path), "--store", str(store), "--no-progress"]

    first, code, stderr = run_cli(args, stop_after=5, signum=signum, delay="0.15")
    done_first = {key for word, key in first if word == "DONE"}
    assert 5 <= len(done_first) < 24, "the signal did not land half-way"
    assert code == status, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1, stderr
    assert "--resume" in lines[0] and str(store) in lines[0]

    second, code, stderr = run_cli([*args, "--resume"], stop_after=None, signum=None, delay="0")
    assert code == 0, stderr
    started_second = [key for word, key in second if word == "START"]
    assert len(started_second) == len(set(started_second)), "a region was computed twice in one run"
    assert not set(started_second) & done_first, "a region finished before the signal was computed again"
    assert done_first | {key for word, key in second if word == "DONE"} == {
        (m, p, c) for m in range(2) for p in range(2) for c in range(6)}
    assert_cubes_equal(rv.open_cube(store).load(), rv.evaluate(crash_spec(), progress=False))
