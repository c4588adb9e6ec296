"""The zarr store a cube is written to, region by region, with a ``done`` mask that makes reruns resume.

A region is one model × one perturbation × one sample chunk. Its arrays are computed in memory first, then written
(data, then the ``done`` flag), so a crash at any point leaves at worst a region whose flag is still 0 — it is
recomputed on the next run and nothing half-written is ever read as done. New stores are laid out in a temporary
sibling directory and renamed into place, so a crash during creation leaves no half-initialised store.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import xarray as xr
import zarr

from ..cube.template import encoding_for

STORE_FORMAT = "robustviz-store-1"
LOG_NAME = "robustviz-writes.log"


class StoreError(RuntimeError):
    """A store that cannot be used as asked (different spec, corrupt, …); the message names the fix."""


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence zarr's notes about consolidated metadata and about the write log beside the arrays."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")
        yield


class CubeStore:
    """A local zarr directory holding one cube. Use :meth:`create_or_open`."""

    def __init__(self, path: str | os.PathLike[str]):
        if "://" in str(path):
            raise StoreError(f"{path}: object-store URLs are not supported yet (stores need atomic rename and "
                             f"append); use a directory on a file system every worker mounts (see docs/scale-out.md)")
        self.path = Path(path)
        self._group: zarr.Group | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, path: str | os.PathLike[str], template: xr.Dataset, *, overwrite: bool = False,
                       resume: bool = True) -> "CubeStore":
        """Open ``path`` if it holds this template's cube (same spec and data), else create it.

        Raises :class:`StoreError` if the store belongs to another spec, is corrupt, or ``resume`` is False and the
        store already holds results.
        """
        store = cls(path)
        if store.path.exists() and overwrite:
            shutil.rmtree(store.path)
        if not store.path.exists():
            store._create(template)
            return store
        store._check_matches(template)
        if not resume and store.done_mask().any():
            raise StoreError(f"{store.path} already holds results of this spec; resume it (robustviz run --resume, "
                             f"evaluate(..., resume=True)) or start over (--overwrite / overwrite=True)")
        return store

    def _create(self, template: xr.Dataset) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        template = template.assign_attrs(store_format=STORE_FORMAT)
        try:
            with _quiet():
                template.to_zarr(staging, mode="w", compute=False, encoding=encoding_for(template),
                                 consolidated=False)
            # to_zarr(compute=False) skips dask-backed variables' data; the done masks must read as zeros
            group = zarr.open_group(staging, mode="r+")
            group["done"][...] = 0
            group["model_done"][...] = 0
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.replace(staging, self.path)

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            try:
                self._group = zarr.open_group(self.path, mode="r+")
            except Exception as error:
                raise StoreError(self._corrupt(f"its zarr metadata cannot be read ({error})")) from error
        return self._group

    def _corrupt(self, why: str) -> str:
        return (f"the store {self.path} is corrupt: {why}. Delete it, or rerun with a new --store path "
                f"(or --overwrite / overwrite=True to start it over)")

    def _check_matches(self, template: xr.Dataset) -> None:
        group = self.group
        attrs = dict(group.attrs)
        if attrs.get("store_format") != STORE_FORMAT:
            raise StoreError(self._corrupt("it is not a robustviz store, or its creation did not finish"))
        for key, what in (("spec_fingerprint", "spec"), ("data_fingerprint", "data")):
            if attrs.get(key) != template.attrs.get(key):
                raise StoreError(self._mismatch(attrs, template, what))
        for name, var in template.data_vars.items():
            if name not in group:
                raise StoreError(self._corrupt(f"variable {name!r} is missing"))
            array = group[name]
            if tuple(array.shape) != tuple(var.shape):
                raise StoreError(self._corrupt(f"variable {name!r} has shape {array.shape}, expected {var.shape}"))
        try:
            self.done_mask()
        except Exception as error:
            raise StoreError(self._corrupt(f"its done mask cannot be read ({error})")) from error

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

    def write_region(self, model: int, perturbation: int, chunk: int, sample_slice: slice,
                     arrays: Mapping[str, np.ndarray]) -> None:
        """Write one region's arrays (each laid out as its variable's dims minus model/perturbation), then mark it
        done. Variables without a ``sample`` dim (examples) are written whole for (model, perturbation)."""
        group = self.group
        for name, values in arrays.items():
            array = group[name]
            dims = array.attrs.get("_ARRAY_DIMENSIONS") or array.metadata.dimension_names
            index: list[Any] = [model, perturbation] + [slice(None)] * (len(dims) - 2)
            if "sample" in dims:
                index[list(dims).index("sample")] = sample_slice
            array[tuple(index)] = values
        group["done"][model, perturbation, chunk] = 1
        self._log(f"region {model} {perturbation} {chunk}")

    def write_model(self, model: int, arrays: Mapping[str, np.ndarray]) -> None:
        group = self.group
        for name, values in arrays.items():
            group[name][model, ...] = values
        group["model_done"][model] = 1
        self._log(f"model {model}")

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


__all__ = ["CubeStore", "STORE_FORMAT", "StoreError"]
