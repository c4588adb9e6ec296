"""Scale-out: a LocalCluster of 2 worker processes gives the single-process cube, also when a worker is killed."""

import collections
import os
import signal
import sys
import threading
import time

import pytest

import robustviz as rv
from robustviz.evaluate.distributed import make_client, restore_malloc_thresholds

from .helpers import crash_spec
from .test_engine import assert_cubes_equal

distributed = pytest.importorskip("distributed")
from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402


class ImportHelpers(WorkerPlugin):
    """Worker plugin: registers the test-only components in every worker, restarted ones included."""

    name = "robustviz-test-helpers"

    def setup(self, worker):
        import importlib

        importlib.import_module("tests.evaluate.helpers")


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("ROBUSTVIZ_TEST_DELAY", "0.1")  # inherited by the worker processes
    client = make_client("local", workers=2)
    client.register_plugin(ImportHelpers())
    yield client
    client.close()
    client.cluster.close()


def write_counts(store):
    lines = rv.CubeStore(store).write_log()
    return collections.Counter(line.rsplit(" pid=", 1)[0] for line in lines), {line.rsplit("pid=", 1)[1]
                                                                               for line in lines}


def all_regions(spec):
    return {f"region {m} {p} {c}" for m in range(len(spec.models)) for p in range(len(spec.perturbations))
            for c in range(-(-spec.n_samples // spec.sample_chunk))}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_thresholds_can_be_restored_on_glibc():
    assert restore_malloc_thresholds() is True


def test_local_cluster_matches_single_process(client, tmp_path):
    spec = crash_spec()
    store = tmp_path / "cube.zarr"
    cube = rv.evaluate(spec, store=store, client=client, progress=False)
    assert_cubes_equal(cube.load(), rv.evaluate(spec, progress=False))
    counts, writers = write_counts(store)
    assert set(counts) == all_regions(spec) and set(counts.values()) == {1}
    assert len(writers) == 2, "both workers should have written regions"
    # every worker got the allocator fix (dask's MALLOC_TRIM_THRESHOLD_ made workers 2× slower than one process)
    has_plugin = client.run(lambda dask_worker: "robustviz-malloc-thresholds" in dask_worker.plugins)
    assert list(has_plugin.values()) == [True, True]


def test_killing_a_worker_mid_run_loses_nothing(client, tmp_path):
    spec = crash_spec()
    store = tmp_path / "cube.zarr"
    result = {}

    def run():
        try:
            result["cube"] = rv.evaluate(spec, store=store, client=client, progress=False)
        except BaseException as error:  # surfaced by the assertion below
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 180
    while len(rv.CubeStore(store).write_log() if store.exists() else []) < 5:
        assert time.monotonic() < deadline and thread.is_alive(), "the distributed run made no progress"
        time.sleep(0.05)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive(), "the run did not finish after the worker was killed"
    assert "error" not in result, result.get("error")
    assert_cubes_equal(result["cube"].load(), rv.evaluate(spec, progress=False))
    counts, writers = write_counts(store)
    assert set(counts) == all_regions(spec)
    assert set(counts.values()) == {1}, f"regions written more than once: {[k for k, v in counts.items() if v > 1]}"
    assert str(victim) in writers and len(writers) >= 2
