"""Merge and diff results cubes, keeping the provenance of both.

- :func:`merge_cubes` joins two cubes of the same samples along ``model``, ``perturbation``, ``severity``,
  ``method`` (and extra dims such as ``band``): the union of the coordinates, each cell taken from the cube that
  has it. A cell both cubes have must hold the same value in both (NaN-aware, exact for integers and booleans, a
  relative tolerance of 1e-6 for floats); otherwise a :class:`CubeConflictError` names the variable, the number of
  conflicting cells and the first one. Samples (ids and labels) and the data fingerprint must agree: a merge never
  mixes different data.
- :func:`diff_cubes` compares two cubes on the cells both have: ``b − a`` per numeric variable, as a Dataset, with
  :func:`diff_summary` counting the cells that differ.

A missing value is NaN for floats and -1 for ``pred``; ``correct`` (a bool) is missing where ``pred`` is, and the
stored example images (uint8) where their (model, perturbation, severity) cell has no prediction. Store
bookkeeping (``done``, ``model_done``, ``chunk``) is dropped: a merged cube is complete where its parts were.
The result's attrs keep both specs (``specs``), both cubes' attrs (``parents``) and ``provenance``: the operation,
the time, the git commit of the robustviz checkout when there is one, and the numpy / xarray / torch / robustviz
versions that did the merge.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from .io import STORE_ONLY
from .schema import CubeError

#: dims along which cubes may differ (the union is taken)
JOIN_DIMS = ("model", "perturbation", "severity", "method", "example")


class CubeConflictError(CubeError):
    """Two cubes disagree on a cell they both have, or were made from different data."""


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance(operation: str) -> dict[str, Any]:
    """Who made a derived cube: operation, time, git commit (or None) and library versions."""
    from .. import __version__

    return {"operation": operation, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _git_commit(), "robustviz_version": __version__, "numpy_version": np.__version__,
            "xarray_version": xr.__version__, "torch_version": _version("torch")}


def _strip(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.drop_vars([name for name in STORE_ONLY if name in ds.variables])
    if "chunk" in ds.dims:
        ds = ds.drop_dims("chunk")
    return ds


def _check_same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    for name in ("sample",):
        left, right = a[name].values, b[name].values
        if left.shape != right.shape or not np.array_equal(left, right):
            raise CubeConflictError(f"the cubes hold different samples ({len(left)} vs {len(right)} ids, or another "
                                    f"order); merge cubes evaluated on the same dataset and n_samples")
    if not np.array_equal(a["label"].values, b["label"].values):
        raise CubeConflictError("the cubes give the same samples different labels; they come from different data")
    fingerprints = a.attrs.get("data_fingerprint"), b.attrs.get("data_fingerprint")
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        raise CubeConflictError(f"the cubes were evaluated on different images (data fingerprints "
                                f"{fingerprints[0]} and {fingerprints[1]})")
    if "family" in a.coords and "family" in b.coords:
        shared = sorted(set(map(str, a["perturbation"].values)) & set(map(str, b["perturbation"].values)))
        for name in shared:
            if str(a["family"].sel(perturbation=name).values) != str(b["family"].sel(perturbation=name).values):
                raise CubeConflictError(f"perturbation {name!r} has a different family in each cube")
    targets = a.attrs.get("attribution_target"), b.attrs.get("attribution_target")
    if "method" in a.dims and "method" in b.dims and all(targets) and targets[0] != targets[1]:
        raise CubeConflictError(f"the cubes explain different classes (attribution_target {targets[0]!r} vs "
                                f"{targets[1]!r}); their explanation metrics do not compare")


def _as_float(ds: xr.Dataset, name: str) -> xr.DataArray:
    """A variable as float64 with NaN where missing (pred −1; correct where pred is missing)."""
    values = ds[name]
    if name == "pred":
        return values.where(values >= 0).astype(np.float64)
    if name == "correct" and "pred" in ds:
        return values.astype(np.float64).where(ds["pred"] >= 0)
    if values.dtype.kind == "u" and "pred" in ds:  # uint8 example images: missing where their cell is
        written = (ds["pred"] >= 0).any("sample")
        return values.astype(np.float64).where(written)
    return values.astype(np.float64)


def _first_conflict(left: xr.DataArray, right: xr.DataArray, exact: bool) -> tuple[int, dict[str, Any] | None]:
    both = left.notnull() & right.notnull()
    if exact:
        differ = both & (left != right)
    else:
        differ = both & (np.abs(left - right) > 1e-6 * np.maximum(np.abs(left), np.abs(right)) + 1e-12)
    count = int(differ.sum())
    if not count:
        return 0, None
    index = np.unravel_index(int(np.argmax(differ.values)), differ.shape)
    cell = {}
    for dim, position in zip(differ.dims, index):
        value = differ[dim].values[position] if dim in differ.coords else int(position)
        cell[dim] = value.item() if isinstance(value, np.generic) else value
    return count, cell


def merge_cubes(a: xr.Dataset, b: xr.Dataset) -> xr.Dataset:
    """The union of two cubes of the same samples (see the module docstring); raises :class:`CubeConflictError`
    when they disagree on a shared cell or were made from different data."""
    for name, ds in (("a", a), ("b", b)):
        if not isinstance(ds, xr.Dataset) or "sample" not in ds.dims:
            raise CubeError(f"merge_cubes: {name} is not a robustviz cube (an xarray.Dataset with a 'sample' dim)")
    a, b = _strip(a), _strip(b)
    _check_same_data(a, b)
    left, right = xr.align(a, b, join="outer", exclude={"sample"})
    order = {}  # a's coordinates first, then b's new ones (xarray's outer join sorts them); severities ascending
    for dim in left.dims:
        if dim in a.coords and dim in b.coords and dim not in ("sample", "severity"):
            first = list(a[dim].values)
            values = first + [value for value in b[dim].values if value not in set(first)]
            order[dim] = np.array(values, dtype=a[dim].dtype)  # object strings stay variable-length in zarr
    left, right = left.reindex(order), right.reindex(order)
    merged = {}
    for name in sorted(set(left.data_vars) | set(right.data_vars)):
        if name not in right.data_vars or name not in left.data_vars:
            source = left if name in left.data_vars else right
            merged[name] = _as_float(source, name)
            continue
        dtype = a[name].dtype
        x, y = _as_float(left, name), _as_float(right, name)
        count, cell = _first_conflict(x, y, exact=dtype.kind in "biu")
        if count:
            raise CubeConflictError(f"the cubes disagree on {count} cell(s) of {name!r}, e.g. at {cell}: "
                                    f"{float(x.sel(cell).values)} vs {float(y.sel(cell).values)}; merge results of "
                                    f"the same spec and code, or drop one side's cells first")
        merged[name] = x.combine_first(y).assign_attrs(a[name].attrs or b[name].attrs)
    out = xr.Dataset(merged)
    for name, values in merged.items():  # back to the stored dtypes, with their missing values
        dtype = (a[name] if name in a.data_vars else b[name]).dtype
        if dtype.kind == "i":
            out[name] = values.fillna(-1).astype(dtype)
        elif dtype.kind == "b":
            out[name] = values.fillna(0).astype(bool)
        elif dtype.kind == "u":
            out[name] = values.fillna(0).astype(dtype)
        else:
            out[name] = values.astype(dtype)
        out[name].attrs = dict((a[name] if name in a.data_vars else b[name]).attrs)
    if "family" in left.coords and "family" in right.coords:  # a perturbation only one side has is NaN on the other
        out = out.assign_coords(family=left["family"].combine_first(right["family"]).astype(object))
    out.attrs = _merged_attrs(a, b, "merge_cubes")
    return out


def _merged_attrs(a: xr.Dataset, b: xr.Dataset, operation: str) -> dict[str, Any]:
    attrs = {key: value for key, value in a.attrs.items() if b.attrs.get(key) == value}
    attrs.update({
        "spec": a.attrs.get("spec", "{}"),
        "specs": json.dumps([json.loads(a.attrs.get("spec", "{}")), json.loads(b.attrs.get("spec", "{}"))]),
        "parents": json.dumps([dict(a.attrs), dict(b.attrs)], default=str),
        "provenance": json.dumps(provenance(operation)),
    })
    for key in ("robustviz_version", "torch_version", "captum_version", "seed", "device", "created",
                "schema_version"):
        if key not in attrs and key in a.attrs:
            attrs[key] = a.attrs[key]
    return attrs


def diff_cubes(a: xr.Dataset, b: xr.Dataset, variables: Iterable[str] | None = None) -> xr.Dataset:
    """``b − a`` (float64) of each shared per-sample variable on the cells both cubes have (inner join of the
    coordinates; missing values stay NaN). The attrs keep both specs and the provenance."""
    a, b = _strip(a), _strip(b)
    _check_same_data(a, b)
    shared = [name for name in a.data_vars if name in b.data_vars and "sample" in a[name].dims
              and a[name].dtype.kind in "biuf" and not name.startswith("example_")]
    names = list(variables) if variables is not None else shared
    unknown = [name for name in names if name not in shared]
    if unknown:
        raise CubeError(f"diff_cubes: {unknown} are not per-sample numeric variables of both cubes; shared: {shared}")
    left, right = xr.align(a[names], b[names], join="inner", exclude={"sample"})
    if any(left.sizes[dim] == 0 for dim in left.dims):
        raise CubeError("diff_cubes: the cubes share no (model, perturbation, severity, method) cell")
    out = xr.Dataset({name: (_as_float(right, name) - _as_float(left, name)).assign_attrs(
        direction="none", long_name=f"{name}: b − a") for name in names})
    out.attrs = _merged_attrs(a, b, "diff_cubes")
    return out


def diff_summary(diff: xr.Dataset, atol: float = 0.0) -> pd.DataFrame:
    """Per variable: cells compared (both present), cells with ``|b − a| > atol``, and the largest ``|b − a|``."""
    rows = []
    for name, values in diff.data_vars.items():
        present = values.notnull()
        magnitude = np.abs(values)
        rows.append({"variable": name, "cells": int(present.sum()), "changed": int((magnitude > atol).sum()),
                     "max_abs": float(magnitude.max()) if bool(present.any()) else float("nan")})
    return pd.DataFrame(rows, columns=["variable", "cells", "changed", "max_abs"]).set_index("variable")


__all__ = ["CubeConflictError", "diff_cubes", "diff_summary", "merge_cubes", "provenance"]
