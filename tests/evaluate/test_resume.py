"""Crash safety: a run killed with SIGKILL half-way, then resumed, gives the cube of an uninterrupted run, and no
finished region is computed again."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import robustviz as rv
from robustviz.evaluate.store import StoreError

from .helpers import crash_spec, read_region_events
from .test_engine import assert_cubes_equal

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import robustviz as rv
from tests.evaluate.helpers import crash_spec, print_region_starts

print_region_starts()
rv.evaluate(crash_spec(), store=sys.argv[1], progress=False,
            on_region=lambda key: print("DONE", *key, flush=True))
print("FINISHED", flush=True)
"""


def run_script(store: Path, kill_after: int | None, delay: str) -> list[tuple[str, tuple[int, ...]]]:
    env = {**os.environ, "ROBUSTVIZ_TEST_DELAY": delay, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT)), str(store)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events = read_region_events(process, kill_after, signal.SIGKILL)
    process.wait(timeout=120)
    if kill_after is None:
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    else:
        assert process.returncode == -signal.SIGKILL
    return events


def test_sigkill_then_resume_gives_the_uninterrupted_cube(tmp_path):
    store = tmp_path / "cube.zarr"
    first = run_script(store, kill_after=7, delay="0.15")
    done_first = {key for word, key in first if word == "DONE"}
    assert 7 <= len(done_first) < 24, "the kill did not land half-way"

    second = run_script(store, kill_after=None, delay="0")
    started_second = [key for word, key in second if word == "START"]
    done_second = {key for word, key in second if word == "DONE"}
    assert not set(started_second) & done_first, "a finished region was computed again"
    assert len(started_second) == len(set(started_second)), "a region was computed twice in one run"
    assert done_first | done_second == {(m, p, c) for m in range(2) for p in range(2) for c in range(6)}
    assert ("FINISHED", ()) in second

    resumed = rv.open_cube(store).load()
    uninterrupted = rv.evaluate(crash_spec(), progress=False)
    assert_cubes_equal(resumed, uninterrupted)

    # a third run finds nothing to do
    third = run_script(store, kill_after=None, delay="0")
    assert not [key for word, key in third if word == "START"]


def test_resume_false_refuses_a_store_with_results(tmp_path):
    store = tmp_path / "cube.zarr"
    spec = crash_spec(perturbations=["test_noise"], n_samples=4, sample_chunk=None)
    rv.evaluate(spec, store=store, progress=False)
    with pytest.raises(StoreError, match="--resume"):
        rv.evaluate(spec, store=store, progress=False, resume=False)
    # overwrite starts over and gives the same values
    again = rv.evaluate(spec, store=store, progress=False, overwrite=True)
    np.testing.assert_array_equal(again["pred"].values, rv.evaluate(spec, progress=False)["pred"].values)
