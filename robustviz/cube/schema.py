"""The results cube's schema: dims, coordinates, variables and provenance attributes.

A cube is an ``xarray.Dataset`` with dims ``model, perturbation, severity, sample`` (+ ``method`` when explanation
methods were evaluated; + extra dims such as ``band`` for model-level analyses). ``severity`` 0 is the clean image and
is present for every perturbation. Non-dim coords: ``family`` (on perturbation), ``label`` (on sample).
Per-sample variables keep ``sample``; summaries are computed by the ``ds.rv`` accessor, never stored twice.

This package stands alone (xarray/numpy only).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

SCHEMA_VERSION = 1

#: Dims of every per-sample model-output variable, in storage order.
SAMPLE_DIMS: tuple[str, ...] = ("model", "perturbation", "severity", "sample")
#: Dims of per-sample explanation variables.
METHOD_DIMS: tuple[str, ...] = ("model", "perturbation", "severity", "method", "sample")
CORE_DIMS: tuple[str, ...] = ("model", "perturbation", "severity", "method", "sample")

#: Variables every cube has: what the model did on each (perturbed) sample.
BASE_VARIABLES: dict[str, dict[str, Any]] = {
    # float32 1.0 / 0.0 rather than bool: a region not written yet reads NaN (missing), never "wrong"
    "correct": {"dtype": "float32", "long_name": "prediction equals the label (1), or not (0)", "direction": "higher",
                "category": "accuracy"},
    "pred": {"dtype": "int64", "long_name": "predicted class index", "direction": "none", "category": "accuracy"},
    "prob_true": {"dtype": "float32", "long_name": "softmax probability of the true class", "direction": "higher",
                  "category": "accuracy"},
    "confidence": {"dtype": "float32", "long_name": "softmax probability of the predicted class",
                   "direction": "none", "category": "accuracy"},
}

#: Optional stored examples (the first ``n_examples`` samples) so panels can show images and maps without a model.
#: ``example`` is a dim whose coordinate holds the sample ids of the examples.
EXAMPLE_VARIABLES: dict[str, tuple[str, ...]] = {
    "example_image": ("model", "perturbation", "severity", "example", "channel", "y", "x"),  # uint8 0..255
    "example_attribution": ("model", "perturbation", "severity", "method", "example", "y", "x"),  # float16
}

REQUIRED_ATTRS = ("robustviz_version", "torch_version", "captum_version", "spec", "seed", "device", "created",
                  "schema_version")


class CubeError(ValueError):
    """A Dataset that does not follow the cube schema; the message lists every problem found."""


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the schema; raise :class:`CubeError` listing all problems, else return ``ds``."""
    problems: list[str] = []
    for dim in SAMPLE_DIMS:
        if dim not in ds.dims:
            problems.append(f"missing dim {dim!r}")
    if "severity" in ds.coords:
        severities = np.asarray(ds["severity"].values)
        if severities.size and severities[0] != 0:
            problems.append("severity must start with 0 (the clean image)")
        if np.any(np.diff(severities) <= 0):
            problems.append("severity coordinate must be strictly increasing")
    for coord, dim in (("family", "perturbation"), ("label", "sample")):
        if coord not in ds.coords:
            problems.append(f"missing coord {coord!r} on {dim!r}")
        elif ds[coord].dims != (dim,):
            problems.append(f"coord {coord!r} must lie on dim {dim!r}, has dims {ds[coord].dims}")
    for name, info in BASE_VARIABLES.items():
        if name not in ds.data_vars:
            problems.append(f"missing variable {name!r}")
        elif ds[name].dims != SAMPLE_DIMS:
            problems.append(f"variable {name!r} must have dims {SAMPLE_DIMS}, has {ds[name].dims}")
    for name, var in ds.data_vars.items():
        if name in EXAMPLE_VARIABLES:
            if var.dims != EXAMPLE_VARIABLES[name]:
                problems.append(f"variable {name!r} must have dims {EXAMPLE_VARIABLES[name]}, has {var.dims}")
            continue
        if "method" in var.dims and var.dims[:3] != METHOD_DIMS[:3]:
            problems.append(f"variable {name!r} with a method dim must have dims {METHOD_DIMS}, has {var.dims}")
        if "direction" not in var.attrs and name not in ("done",) and name not in EXAMPLE_VARIABLES:
            problems.append(f"variable {name!r} lacks a 'direction' attr ('higher', 'lower' or 'none')")
    if "correct" in ds and "pred" in ds and "label" in ds.coords:
        # only written cells are compared: a missing prediction (pred -1) must come with a missing `correct` (NaN)
        correct = ds["correct"].astype("float64")
        written = ds["pred"] >= 0
        agree = ((ds["pred"] == ds["label"]) == (correct == 1)) | ~written
        if not bool(agree.all()):
            problems.append("'correct' disagrees with pred == label")
        if not bool((written == correct.notnull()).all()):
            problems.append("'correct' and 'pred' disagree on which cells are missing (NaN / -1)")
    if "prob_true" in ds:
        values = ds["prob_true"]
        if bool(((values < 0) | (values > 1)).any()):
            problems.append("'prob_true' has values outside [0, 1]")
    for attr in REQUIRED_ATTRS:
        if attr not in ds.attrs:
            problems.append(f"missing attr {attr!r}")
    if "spec" in ds.attrs:
        try:
            json.loads(ds.attrs["spec"])
        except (TypeError, ValueError):
            problems.append("attr 'spec' is not JSON")
    if problems:
        raise CubeError("not a valid robustviz cube:\n- " + "\n- ".join(problems))
    return ds


__all__ = ["BASE_VARIABLES", "CORE_DIMS", "CubeError", "EXAMPLE_VARIABLES", "METHOD_DIMS", "REQUIRED_ATTRS", "SAMPLE_DIMS",
           "SCHEMA_VERSION", "validate"]
