"""Scale-out on dask.distributed: regions (model × perturbation × sample chunk) become tasks on workers.

Each worker rebuilds the plan once from the spec (or receives the user's data/models when they were passed as
objects), loads each model once and keeps its clean passes, and writes its regions straight into the shared zarr
store. The store is the only shared state: a task first checks the region's done flag, so a task that dask retries
after losing a worker never writes a finished region again; a region lost with its worker is simply recomputed.

Memory allocator: dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which on glibc also freezes
the mmap threshold at 128 KiB, so every activation tensor is mapped and unmapped afresh: page faults made a worker
2–2.5× slower than the same work in a plain process (``benchmarks/scaleout.py``). Each worker therefore gets a
plugin that applies :func:`robustviz._malloc.restore_malloc_thresholds` at start-up (the engine applies it in every
other process too).

GPUs: run one worker per GPU (e.g. ``dask_cuda.LocalCUDACluster`` or ``dask-worker --resources GPU=1`` with
``CUDA_VISIBLE_DEVICES`` set per worker); ``device: auto`` then picks that worker's GPU.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, Mapping

import torch
import xarray as xr

from .._malloc import restore_malloc_thresholds
from .plan import Plan
from .store import CubeStore, model_fingerprint

#: Per-worker-process cache: plan key → RegionComputer (holds the current model and its clean passes).
_COMPUTERS: dict[str, Any] = {}
_LOCK = threading.RLock()
#: (plan key, model index) → the model's parameter fingerprint, computed once per worker.
_FINGERPRINTS: dict[tuple[str, int], str] = {}


def _torch_threads_plugin(threads: int):
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        """One worker thread → one torch thread, so workers on a node do not oversubscribe its cores."""

        name = "robustviz-torch-threads"

        def setup(self, worker: Any) -> None:
            torch.set_num_threads(threads)

    return TorchThreads()


def _malloc_plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class MallocThresholds(WorkerPlugin):
        """Undo the 128 KiB mmap threshold that dask's MALLOC_TRIM_THRESHOLD_ implies (module docstring)."""

        name = "robustviz-malloc-thresholds"

        def setup(self, worker: Any) -> None:
            restore_malloc_thresholds(force=True)

    return MallocThresholds()


def make_client(scheduler: str, *, workers: int = 2, threads_per_worker: int = 1):
    """A ``distributed.Client``: ``"local"`` starts a LocalCluster of ``workers`` processes, anything else is a
    scheduler address (``tcp://host:8786``)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:  # pragma: no cover - dask[distributed] is a core dependency
        raise ImportError('scale-out needs dask.distributed: pip install "robustviz[distributed]"') from error
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        client.register_plugin(_torch_threads_plugin(threads_per_worker))
        return client
    return Client(scheduler)


def _computer(key: str, payload: Mapping[str, Any]):
    from .engine import RegionComputer

    with _LOCK:
        if key not in _COMPUTERS:
            _COMPUTERS.clear()  # one plan per worker at a time: drop the previous run's models
            plan = Plan.from_spec(payload["spec"], data=payload.get("data"), models=payload.get("models"))
            _COMPUTERS[key] = RegionComputer(plan)
        return _COMPUTERS[key]


def _checked(store: CubeStore, key: str, payload: Mapping[str, Any], model: int):
    """The worker's computer, after checking (once per model and worker) that its weights are the store's."""
    computer = _computer(key, payload)
    with _LOCK:
        fingerprint = _FINGERPRINTS.get((key, model))
        if fingerprint is None:
            fingerprint = _FINGERPRINTS[(key, model)] = model_fingerprint(computer.model(model))
    store.check_model(model, computer.plan.model_names[model], fingerprint)
    return computer


def run_region(key: str, payload: Mapping[str, Any], store_path: str, region: tuple[int, int, int]) -> tuple:
    """Task: compute one region and write it, unless an earlier attempt already finished it (the region's claim:
    its done flag, set only after its data and content hashes are written)."""
    store = CubeStore(store_path)
    if store.done_mask()[region]:
        return region
    computer = _checked(store, key, payload, region[0])
    arrays = computer.region(*region)
    store.write_region(region[0], region[1], region[2], computer.plan.chunk_slice(region[2]), arrays)
    return region


def run_model_level(key: str, payload: Mapping[str, Any], store_path: str, model: int) -> int:
    """Task: model-level analyses (e.g. I-ASIDE) of one model."""
    store = CubeStore(store_path)
    if store.model_done_mask()[model]:
        return model
    computer = _checked(store, key, payload, model)
    store.write_model(model, computer.model_level(model))
    return model


def evaluate_distributed(plan: Plan, template: xr.Dataset, store: str | os.PathLike[str], client: Any, *,
                         progress: bool, resume: bool, overwrite: bool, data: Any = None,
                         models: Mapping[str, torch.nn.Module] | None = None) -> xr.Dataset:
    """Submit every pending region of ``plan`` to ``client`` and wait; returns the store's cube. The client holds
    the store's writer lock meanwhile; workers write regions without it."""
    with CubeStore.writing(store, template, overwrite=overwrite, resume=resume) as cube_store:
        return _submit(plan, template, cube_store, client, progress=progress, data=data, models=models)


def _submit(plan: Plan, template: xr.Dataset, cube_store: CubeStore, client: Any, *, progress: bool, data: Any,
            models: Mapping[str, torch.nn.Module] | None) -> xr.Dataset:
    from distributed import as_completed

    from .engine import _progress, pending_regions

    key = f"{plan.spec.fingerprint()}-{template.attrs['data_fingerprint']}"
    if models:  # objects may change between runs under the same names: never reuse a worker's cached ones
        key += f"-{uuid.uuid4().hex[:8]}"
    payload: dict[str, Any] = {"spec": plan.spec}
    if data is not None:
        payload["data"] = data
    if models:
        payload["models"] = dict(models)
    client.register_plugin(_malloc_plugin())
    [payload_future] = client.scatter([payload], broadcast=True, hash=False)
    path = str(cube_store.path.resolve())
    futures = []
    model_done = cube_store.model_done_mask()
    for model in range(len(plan.spec.models)):
        if plan.model_metrics and not model_done[model]:
            futures.append(client.submit(run_model_level, key, payload_future, path, model, pure=False,
                                         key=f"robustviz-model-{key}-{model}"))
    # regions sorted by model then chunk, so a worker tends to reuse its loaded model and clean pass
    for region in pending_regions(plan, cube_store.done_mask()):
        futures.append(client.submit(run_region, key, payload_future, path, region, pure=False,
                                     key=f"robustviz-region-{key}-{'-'.join(map(str, region))}"))
    with _progress(len(futures), progress, f"{plan.spec.name} (dask)") as bar:
        for future in as_completed(futures):
            future.result()  # re-raises a task's error here, with its traceback
            bar.update()
    return cube_store.open()


__all__ = ["evaluate_distributed", "make_client", "restore_malloc_thresholds", "run_model_level", "run_region"]
