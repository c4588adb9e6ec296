"""Build an empty, lazily-filled cube whose layout matches what the evaluator will write.

The template is an ``xarray.Dataset`` of dask arrays filled with "missing" values (NaN for floats, -1 for ints;
``correct`` is stored as float32 1/0 so that it too has a missing value, NaN). ``template.to_zarr(path,
compute=False)`` writes only metadata and coordinates; the evaluator then writes each region's chunks directly.
Chunks are aligned to regions (one model × one perturbation × one sample chunk), so regions written concurrently
never share a chunk file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr


@dataclass(frozen=True)
class VariableSpec:
    """A cube variable: dims, dtype and attrs (``direction``, ``category``, ``long_name``)."""

    dims: tuple[str, ...]
    dtype: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fill_value(self) -> Any:
        kind = np.dtype(self.dtype).kind
        return np.nan if kind == "f" else (False if kind == "b" else -1 if kind == "i" else 0)


def _strings(values: Sequence[str]) -> np.ndarray:
    # object dtype → variable-length strings in zarr (fixed-width strings warn in zarr 3)
    return np.array(list(values), dtype=object)


def make_template(*, models: Sequence[str], perturbations: Sequence[str], families: Sequence[str],
                  severities: Sequence[int], sample_ids: Sequence[int], labels: Sequence[int],
                  methods: Sequence[str], variables: Mapping[str, VariableSpec], sample_chunk: int,
                  extra_coords: Mapping[str, Sequence[Any]] | None = None,
                  example_ids: Sequence[int] = (), image_shape: tuple[int, int, int] | None = None,
                  attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """An empty cube with region-aligned chunks, plus a ``done`` mask over (model, perturbation, chunk)."""
    n_chunks = -(-len(sample_ids) // sample_chunk)
    coords: dict[str, Any] = {
        "model": ("model", _strings(models)),
        "perturbation": ("perturbation", _strings(perturbations)),
        "family": ("perturbation", _strings(families)),
        "severity": ("severity", np.asarray([0, *severities], dtype=np.int64)),
        "sample": ("sample", np.asarray(sample_ids, dtype=np.int64)),
        "label": ("sample", np.asarray(labels, dtype=np.int64)),
        "chunk": ("chunk", np.arange(n_chunks, dtype=np.int64)),
    }
    if methods:
        coords["method"] = ("method", _strings(methods))
    if len(example_ids):
        coords["example"] = ("example", np.asarray(example_ids, dtype=np.int64))
    if image_shape is not None:
        channels, height, width = image_shape
        coords.update(channel=("channel", np.arange(channels)), y=("y", np.arange(height)), x=("x", np.arange(width)))
    for name, values in (extra_coords or {}).items():
        coords[name] = (name, np.asarray(values))
    sizes = {name: len(value[1]) for name, value in coords.items() if value[0] == name}
    region_chunks = {"model": 1, "perturbation": 1, "sample": sample_chunk}

    data_vars: dict[str, Any] = {}
    for name, spec in variables.items():
        shape = tuple(sizes[dim] for dim in spec.dims)
        chunks = tuple(region_chunks.get(dim, sizes[dim]) for dim in spec.dims)
        data = da.full(shape, spec.fill_value, dtype=spec.dtype, chunks=chunks)
        data_vars[name] = xr.Variable(spec.dims, data, attrs=dict(spec.attrs))
    done_shape = (sizes["model"], sizes["perturbation"], n_chunks)
    data_vars["done"] = xr.Variable(("model", "perturbation", "chunk"),
                                    da.zeros(done_shape, dtype="int8", chunks=(1, 1, 1)),
                                    attrs={"long_name": "region written (1) or pending (0)", "direction": "none"})
    data_vars["model_done"] = xr.Variable(("model",), da.zeros((sizes["model"],), dtype="int8", chunks=(1,)),
                                          attrs={"long_name": "model-level analyses written", "direction": "none"})
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))


def materialize(template: xr.Dataset) -> xr.Dataset:
    """A writable in-memory copy of a template (numpy arrays filled with the missing values)."""
    data_vars = {}
    for name, var in template.data_vars.items():
        fill = VariableSpec(var.dims, str(var.dtype)).fill_value if name not in ("done", "model_done") else 0
        data_vars[name] = xr.Variable(var.dims, np.full(var.shape, fill, dtype=var.dtype), attrs=var.attrs)
    return xr.Dataset(data_vars, coords=template.coords, attrs=template.attrs)


def encoding_for(template: xr.Dataset) -> dict[str, dict[str, Any]]:
    """zarr encodings: chunks as laid out, and the missing value as zarr's fill value, so unwritten regions read as
    missing (NaN for floats — xarray's default — and -1 for signed ints such as ``pred``), never as a result."""
    encoding = {}
    for name, var in template.data_vars.items():
        if not var.chunks:
            continue
        encoding[name] = {"chunks": tuple(c[0] for c in var.chunks)}
        if var.dtype.kind == "i" and name not in ("done", "model_done"):
            encoding[name]["fill_value"] = -1
    return encoding


__all__ = ["VariableSpec", "encoding_for", "make_template", "materialize"]
