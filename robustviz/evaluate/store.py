"""The zarr store a cube is written to, region by region, with a ``done`` mask that makes reruns resume.

A region is one model × one perturbation × one sample chunk. Its arrays are computed in memory first, then written
(data, then a record of its content hashes, then the ``done`` flag), so a crash at any point leaves at worst a region
whose flag is still 0 — it is recomputed on the next run and nothing half-written is ever read as done. New stores
are laid out in a temporary sibling directory and renamed into place, so a crash during creation leaves no
half-initialised store; such staging directories left by a killed run are removed by the next one.

What keeps a store honest (docs/guide/store-integrity.md):

- a marker: the manifest ``.robustviz/store.json`` (and the root attribute ``store_format``); ``--overwrite``
  deletes a directory only when it carries it;
- a writer lock (``robustviz.evaluate.lock``): one run writes a store at a time;
- a fingerprint of each model's parameters and buffers, checked when a model's regions are resumed;
- content hashes of every written region, checked (and damaged regions recomputed) on resume.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import xarray as xr
import zarr

from ..cube.integrity import (SIDECAR, Manifest, content_hash, is_marked, model_record, quiet, read_json,
                              region_record, selection, verify_store, write_json, write_manifest)
from ..cube.template import encoding_for
from .lock import writer_lock

STORE_FORMAT = "robustviz-store-2"
LOG_NAME = "robustviz-writes.log"


class StoreError(RuntimeError):
    """A store that cannot be used as asked (different spec, corrupt, …); the message names the fix."""


class StoreRepairWarning(UserWarning):
    """Resuming found damaged regions (or metadata) in a store and repairs them: they are recomputed."""


_quiet = quiet


def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of a model's class, and of the names, dtypes, shapes and bytes of all its parameters and buffers."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__qualname__.encode())
    for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
        tensor = tensor.detach()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def is_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory robustviz created as a store (it carries robustviz's marker)."""
    return is_marked(Path(path))


def holds_results(path: str | os.PathLike[str]) -> bool:
    """True when a robustviz store has any region or model-level result written (or cannot tell)."""
    path = Path(path)
    sidecar = path / SIDECAR
    for folder in ("regions", "model-level"):
        if any((sidecar / folder).glob("*.json")):
            return True
    log = path / LOG_NAME
    if log.is_file() and log.stat().st_size:
        return True
    try:
        with quiet():
            group = zarr.open_group(path, mode="r")
            return bool(np.asarray(group["done"][...]).any() or np.asarray(group["model_done"][...]).any())
    except Exception:  # noqa: BLE001 - unreadable: assume it holds something
        return True


def remove_stale_staging(path: Path) -> list[Path]:
    """Delete ``.NAME.*.tmp`` directories beside ``path`` that robustviz created (empty, or carrying its marker).
    Call only while holding the writer lock: then no other run is creating this store."""
    removed = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        suffix = candidate.name[len(path.name) + 2:-4]
        if len(suffix) != 8 or not candidate.is_dir() or candidate.is_symlink():
            continue
        if is_marked(candidate) or not any(candidate.iterdir()):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


class CubeStore:
    """A local zarr directory holding one cube. Writers use :meth:`writing` (or :meth:`create_or_open` while
    holding the writer lock); readers use :meth:`open`."""

    def __init__(self, path: str | os.PathLike[str]):
        if "://" in str(path):
            raise StoreError(f"{path}: object-store URLs are not supported yet (stores need atomic rename and "
                             f"append); use a directory on a file system every worker mounts (see docs/scale-out.md)")
        self.path = Path(path)
        self._group: zarr.Group | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def writing(cls, path: str | os.PathLike[str], template: xr.Dataset, *, overwrite: bool = False,
                resume: bool = True) -> Iterator["CubeStore"]:
        """Hold the writer lock, remove stale staging directories, and create or open (and repair) the store."""
        cls(path)  # refuse URLs before touching anything
        with writer_lock(Path(path)):
            remove_stale_staging(Path(path))
            yield cls.create_or_open(path, template, overwrite=overwrite, resume=resume)

    @classmethod
    def create_or_open(cls, path: str | os.PathLike[str], template: xr.Dataset, *, overwrite: bool = False,
                       resume: bool = True) -> "CubeStore":
        """Open ``path`` if it holds this template's cube (same spec and data), else create it; damaged regions of
        an opened store are marked pending so that they are recomputed (a :class:`StoreRepairWarning` lists them).

        Raises :class:`StoreError` if ``path`` is not a robustviz store, belongs to another spec, is damaged beyond
        region repair, or ``resume`` is False and it already holds results. A robustviz store that holds no result
        yet (a first run that failed at once) is simply started over. Only a robustviz store is ever deleted.
        """
        store = cls(path)
        target = store.path
        if target.exists() and not is_marked(target):
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            else:
                raise StoreError(f"{target} exists and is not a robustviz store (it carries no robustviz marker); "
                                 f"robustviz never writes into or deletes such a path, --overwrite included. "
                                 f"Choose another --store path")
        if target.exists() and (overwrite or not holds_results(target)):
            shutil.rmtree(target)
        if not target.exists():
            store._create(template)
            return store
        store._check_matches(template)
        if not resume and store.done_mask().any():
            raise StoreError(f"{target} already holds results of this spec; resume it (robustviz run --resume, "
                             f"evaluate(..., resume=True)) or start over (--overwrite / overwrite=True)")
        store.repair(template)
        return store

    def _create(self, template: xr.Dataset) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        template = template.assign_attrs(store_format=STORE_FORMAT)
        try:
            with quiet():
                template.to_zarr(staging, mode="w", compute=False, encoding=encoding_for(template),
                                 consolidated=False)
                # to_zarr(compute=False) skips dask-backed variables' data; the done masks must read as zeros
                group = zarr.open_group(staging, mode="r+")
                group["done"][...] = 0
                group["model_done"][...] = 0
            write_manifest(staging, coords={name: template[name].values for name in template.coords},
                           sample_chunk=_sample_chunk(template), format=STORE_FORMAT)
            os.replace(staging, self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            try:
                with quiet():
                    self._group = zarr.open_group(self.path, mode="r+")
            except Exception as error:
                raise StoreError(self._corrupt(f"its zarr metadata cannot be read ({error})")) from error
        return self._group

    def _corrupt(self, why: str) -> str:
        return (f"the store {self.path} is corrupt: {why}. `robustviz verify {self.path}` lists what is damaged; "
                f"rerun with a new --store path, or start it over (--overwrite / overwrite=True)")

    def _check_matches(self, template: xr.Dataset) -> None:
        try:
            attrs = read_json(self.path / "zarr.json")["attributes"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(self._corrupt(f"its root zarr.json cannot be read ({error})")) from error
        if attrs.get("store_format") == "robustviz-store-1":
            raise StoreError(f"the store {self.path} was written by an older robustviz (store format 1: no content "
                             f"hashes, no model fingerprints); it cannot be resumed. Open it with open_cube, or "
                             f"start it over (--overwrite / overwrite=True)")
        if attrs.get("store_format") != STORE_FORMAT:
            raise StoreError(self._corrupt("its root metadata lacks the robustviz store format (its creation did "
                                           "not finish, or its zarr.json was edited)"))
        for key, what in (("spec_fingerprint", "spec"), ("data_fingerprint", "data")):
            if attrs.get(key) != template.attrs.get(key):
                raise StoreError(self._mismatch(attrs, template, what))
        try:
            manifest = Manifest.read(self.path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(self._corrupt(f"its integrity manifest .robustviz/store.json is missing or damaged "
                                           f"({error})")) from error
        for name, var in template.data_vars.items():
            shape = manifest.arrays.get(name, {}).get("shape")
            if shape is None or tuple(shape) != tuple(var.shape):
                raise StoreError(self._corrupt(f"its manifest has variable {name!r} with shape {shape}, "
                                               f"expected {var.shape}"))

    def _mismatch(self, attrs: Mapping[str, Any], template: xr.Dataset, what: str) -> str:
        detail = ""
        if what == "spec":
            try:
                old, new = json.loads(attrs.get("spec", "{}")), json.loads(template.attrs["spec"])
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)
                                 and k not in ("batch_size", "device", "name"))
                detail = f" (fields that differ: {', '.join(changed)})" if changed else ""
            except ValueError:
                pass
        else:
            detail = " (the images, labels or sample ids differ)"
        return (f"the store {self.path} was created for a different {what}{detail}; it cannot be resumed with this "
                f"one. Use a new --store path, or --overwrite / overwrite=True to discard it")

    # -- regions --------------------------------------------------------------------------------------------------
    def done_mask(self) -> np.ndarray:
        return np.asarray(self.group["done"][...]) == 1

    def model_done_mask(self) -> np.ndarray:
        return np.asarray(self.group["model_done"][...]) == 1

    def _write(self, name: str, index_of: Any, values: np.ndarray) -> str:
        """Write one variable's part (cast to the array's dtype) and return the hash of exactly what was written."""
        array = self.group[name]
        dims = tuple(array.metadata.dimension_names or array.attrs.get("_ARRAY_DIMENSIONS") or ())
        index = index_of(dims)
        shape = tuple(len(range(*part.indices(size))) for part, size in zip(index, array.shape)
                      if isinstance(part, slice))
        values = np.broadcast_to(np.asarray(values).astype(array.dtype, copy=False), shape)
        array[index] = values
        return content_hash(values)

    def write_region(self, model: int, perturbation: int, chunk: int, sample_slice: slice,
                     arrays: Mapping[str, np.ndarray]) -> None:
        """Write one region's arrays (each laid out as its variable's dims minus model/perturbation), its content
        hashes, then mark it done. Variables without a ``sample`` dim (examples) are written whole for (model,
        perturbation)."""
        record = {name: self._write(name, lambda dims: selection(dims, model, perturbation, sample_slice), values)
                  for name, values in arrays.items()}
        write_json(region_record(self.path, (model, perturbation, chunk)), record)
        self.group["done"][model, perturbation, chunk] = 1
        self._log(f"region {model} {perturbation} {chunk}")

    def write_model(self, model: int, arrays: Mapping[str, np.ndarray]) -> None:
        record = {name: self._write(name, lambda dims: selection(dims, model, None, None), values)
                  for name, values in arrays.items()}
        write_json(model_record(self.path, model), record)
        self.group["model_done"][model] = 1
        self._log(f"model {model}")

    def check_model(self, index: int, name: str, fingerprint: str) -> None:
        """Refuse to add results of model ``index`` computed with other weights than its results already stored;
        record the fingerprint when the model has none yet."""
        path = self.path / SIDECAR / "weights" / f"{index}.json"
        try:
            stored = read_json(path).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            stored = None
        if stored == fingerprint:
            return
        if stored is not None and (self.done_mask()[index].any() or self.model_done_mask()[index]):
            raise StoreError(f"model {name!r} has other weights than the ones the store {self.path} holds results "
                             f"of (parameter fingerprint {fingerprint[:12]} now, {stored[:12]} in the store); "
                             f"resuming would mix two models in one cube. Pass the original weights, give this "
                             f"model another name, or use a new --store path / --overwrite")
        write_json(path, {"model": name, "fingerprint": fingerprint})

    def repair(self, template: xr.Dataset) -> None:
        """Verify the store; restore edited array metadata from the manifest and coordinates from ``template``,
        mark damaged regions pending (they are recomputed) and verified but unflagged ones done."""
        report = verify_store(self.path)
        fixed = report.lines()
        if report.problems:
            raise StoreError(self._corrupt("; ".join(report.problems)))
        if report.metadata:
            manifest = Manifest.read(self.path)
            for name in report.metadata:
                write_json(self.path / name / "zarr.json", manifest.arrays[name])
            self._group = None
            report = verify_store(self.path)
            if report.problems or report.metadata:
                raise StoreError(self._corrupt("; ".join(report.lines()[:5])))
            fixed += report.lines()
        group = self.group
        for name in report.coords:
            group[name][...] = template[name].values
        for region in report.regions:
            group["done"][region] = 0
        for region in report.unflagged:
            group["done"][region] = 1
        for model in report.models:
            group["model_done"][model] = 0
        for model in report.unflagged_models:
            group["model_done"][model] = 1
        if fixed:
            shown = "\n  ".join(fixed[:20]) + (f"\n  … and {len(fixed) - 20} more" if len(fixed) > 20 else "")
            warnings.warn(StoreRepairWarning(f"the store {self.path} was damaged; repairing it (damaged regions are "
                                             f"recomputed):\n  {shown}"), stacklevel=3)

    def _log(self, line: str) -> None:
        # One short O_APPEND write per finished region: atomic on local file systems, so concurrent workers'
        # lines never interleave. It is an audit trail (which region was written how often, by which process).
        with open(self.path / LOG_NAME, "a") as log:
            log.write(f"{line} pid={os.getpid()}\n")

    def write_log(self) -> list[str]:
        """Lines of the audit log: ``region M P C pid=…`` / ``model M pid=…``, one per write."""
        path = self.path / LOG_NAME
        return path.read_text().splitlines() if path.exists() else []

    # -- reading --------------------------------------------------------------------------------------------------
    def open(self) -> xr.Dataset:
        """The cube, lazily (dask-backed)."""
        try:
            with _quiet():
                return xr.open_zarr(self.path, consolidated=False)
        except Exception as error:
            raise StoreError(self._corrupt(f"xarray cannot open it ({error})")) from error


def _sample_chunk(template: xr.Dataset) -> int:
    for var in template.data_vars.values():
        if "sample" in var.dims and var.chunks:
            return int(var.chunks[var.dims.index("sample")][0])
    return max(1, template.sizes.get("sample", 1))


__all__ = ["CubeStore", "STORE_FORMAT", "StoreError", "StoreRepairWarning", "holds_results", "is_store",
           "model_fingerprint", "remove_stale_staging"]
