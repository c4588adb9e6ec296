"""Extend a finished cube with new models and perturbations without recomputing what it already holds.

:func:`extend_cube` compares a spec with the spec a cube was made from. Everything but ``models`` and
``perturbations`` must agree (dataset, samples, seed, severities, methods, metrics, target, examples; batch size,
device, sample chunking and name may differ, as results do not depend on them). It then evaluates only the new
regions — new models × every perturbation of the spec, and the cube's models × the new perturbations — and merges
them into the cube with :func:`~robustviz.cube.merge.merge_cubes`. The clean (severity-0) cells of the cube's
models are computed again for the new perturbations and must equal the cube's bit for bit (the merge checks it),
which also catches a changed model or code.

The result is a new in-memory cube (``store=PATH`` also writes it to a new zarr directory); the original store is
not modified — appending in place to a zarr store is not supported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from ..cube.io import to_zarr
from ..cube.merge import merge_cubes
from ..data.base import ImageSet
from ..spec import EvaluationSpec
from ..validation import InputError
from .engine import evaluate
from .plan import coordinate_labels

#: spec fields that do not change any result, so an extension may set them differently
_FREE = ("models", "perturbations", "batch_size", "device", "sample_chunk", "name")


def _part(spec: EvaluationSpec, models: list[int], perturbations: list[int], *, data: ImageSet | None,
          model_objects: Mapping[str, torch.nn.Module] | None, progress: bool) -> xr.Dataset:
    """Evaluate the given model × perturbation indices of ``spec``, relabelled with the full spec's labels."""
    part = dataclasses.replace(spec, models=tuple(spec.models[i] for i in models),
                               perturbations=tuple(spec.perturbations[i] for i in perturbations))
    ds = evaluate(part, progress=progress, data=data, models=model_objects)
    model_labels, perturbation_labels = coordinate_labels(spec.models), coordinate_labels(spec.perturbations)
    return ds.assign_coords(model=np.array([model_labels[i] for i in models], dtype=object),
                            perturbation=np.array([perturbation_labels[i] for i in perturbations], dtype=object))


def extend_cube(cube: xr.Dataset, spec: EvaluationSpec, *, store: str | os.PathLike[str] | None = None,
                progress: bool = True, data: ImageSet | None = None,
                models: Mapping[str, torch.nn.Module] | None = None) -> xr.Dataset:
    """``cube`` plus the models and perturbations ``spec`` adds (see the module docstring)."""
    if not isinstance(spec, EvaluationSpec):
        raise InputError(f"extend_cube needs an EvaluationSpec, got {type(spec).__name__}")
    try:
        original = json.loads(cube.attrs["spec"])
    except (KeyError, TypeError, ValueError) as error:
        raise InputError("extend_cube: the cube has no readable 'spec' attr; it was not made by robustviz.evaluate"
                         ) from error
    wanted = json.loads(spec.to_json())
    differ = sorted(key for key in set(original) | set(wanted)
                    if key not in _FREE and original.get(key) != wanted.get(key))
    if differ:
        raise InputError(f"extend_cube: the spec differs from the cube's in {differ}; only models and "
                         f"perturbations may be added (evaluate a new cube for anything else)")
    if not cube.rv.is_complete():
        raise InputError("extend_cube: the cube has unwritten regions; resume its evaluation first")
    if store is not None and Path(store).exists():
        raise InputError(f"extend_cube: {store} already exists; give a new path (the result is a new store)")
    have_models = set(map(str, cube["model"].values))
    have_perturbations = set(map(str, cube["perturbation"].values))
    model_labels, perturbation_labels = coordinate_labels(spec.models), coordinate_labels(spec.perturbations)
    old_models = [i for i, label in enumerate(model_labels) if label in have_models]
    new_models = [i for i, label in enumerate(model_labels) if label not in have_models]
    new_perturbations = [i for i, label in enumerate(perturbation_labels) if label not in have_perturbations]
    result = cube
    options: dict[str, Any] = dict(data=data, model_objects=models, progress=progress)
    if new_models:
        result = merge_cubes(result, _part(spec, new_models, list(range(len(spec.perturbations))), **options))
    if old_models and new_perturbations:
        result = merge_cubes(result, _part(spec, old_models, new_perturbations, **options))
    if result is cube:
        return cube
    order = [label for label in model_labels if label in set(map(str, result["model"].values))]
    extra = [label for label in map(str, result["model"].values) if label not in set(order)]
    result = result.sel(model=order + extra, perturbation=[
        label for label in perturbation_labels + sorted(have_perturbations - set(perturbation_labels))
        if label in set(map(str, result["perturbation"].values))])
    result.attrs["spec"] = spec.to_json()
    if store is not None:
        to_zarr(result, store)
    return result


__all__ = ["extend_cube"]
