"""Issue 15.9: two runs on one store — the second gets a clear error naming the first (never duplicated work, never
`OSError: [Errno 39]`), and the lock of a killed run is stale and taken over."""

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import robustviz as rv
from robustviz.evaluate.lock import lock_path, writer_lock
from robustviz.evaluate.store import StoreError
from tests.evaluate.helpers import crash_spec

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import robustviz as rv
from tests.evaluate.helpers import crash_spec
rv.evaluate(crash_spec(n_samples=4), store=sys.argv[1], progress=False, on_region=lambda key: print("DONE", flush=True))
"""


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
    store = tmp_path / "cube.zarr"
    env = {**os.environ, "ROBUSTVIZ_TEST_DELAY": "0.2", "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT)), str(store)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert first.stdout is not None
        deadline = time.monotonic() + 120
        while first.stdout.readline().strip() != "DONE":  # the first run is writing
            assert time.monotonic() < deadline and first.poll() is None, "the first run did not start"
        with pytest.raises(StoreError, match=rf"being written by another robustviz run \(pid {first.pid} on host"):
            rv.evaluate(crash_spec(n_samples=4), store=store, progress=False)
        # a fresh store path is not blocked, and the creator's lock keeps a second creator out too
        with writer_lock(tmp_path / "new.zarr"):
            with pytest.raises(StoreError, match="being written by another"):
                rv.evaluate(crash_spec(n_samples=4), store=tmp_path / "new.zarr", progress=False)
        assert not (tmp_path / "new.zarr").exists()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    assert lock_path(store).exists(), "a killed run leaves its lock file behind"
    rv.evaluate(crash_spec(n_samples=4), store=store, progress=False)  # … which is stale: taken over
    assert not lock_path(store).exists()
    writes = collections.Counter(line.split(" pid=")[0] for line in rv.CubeStore(store).write_log())
    assert writes and max(writes.values()) == 1, f"a region was computed twice: {writes}"
    assert rv.open_cube(store, verify=True).rv.is_complete()
