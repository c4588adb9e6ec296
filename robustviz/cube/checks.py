"""Sanity checks on a cube's clean predictions: the loud warnings a forgotten input normalisation or a wrong
label mapping should raise.

A model evaluated on its own data should beat chance on clean images. Two symptoms say it did not see the inputs
it was trained on (most often: the input normalisation was not declared, or the dataset's classes are not mapped
to the model's):

- clean accuracy **at or below chance**, chance being ``1 / (number of distinct labels in the cube)``;
- a **constant prediction**: every clean sample predicted as the same class while the labels differ.

The checks read only the cube (``correct``, ``pred``, the ``label`` coordinate at severity 0), so they apply to any
cube, including merged or re-opened ones. The evaluator stores their messages in the ``warnings`` attribute (a
JSON list); ``ds.rv.summary()`` and the CLI repeat them.

This module stands alone (xarray/numpy only), like the rest of :mod:`robustviz.cube`.
"""

from __future__ import annotations

import json
import warnings
from typing import Mapping

import numpy as np
import xarray as xr

#: Below this many clean samples the checks say nothing (two samples at chance prove little).
MIN_SAMPLES = 4


class CleanAccuracyWarning(UserWarning):
    """A model scores at or below chance on clean images, or predicts one class for everything."""


def clean_prediction_warnings(ds: xr.Dataset, hints: Mapping[str, str] | None = None) -> list[str]:
    """One message per model whose clean predictions look wrong (see the module docstring); ``hints`` adds a
    per-model likely cause (e.g. "its input normalisation was not declared")."""
    if not {"correct", "pred"} <= set(ds.data_vars) or "label" not in ds.coords:
        return []
    clean = ds[["correct", "pred"]].sel(severity=0).isel(perturbation=0)
    labels = np.asarray(ds["label"].values)
    classes = np.unique(labels)
    if labels.size < MIN_SAMPLES or classes.size < 2:
        return []
    chance = 1.0 / classes.size
    messages = []
    for model in np.asarray(ds["model"].values):
        pred = np.asarray(clean["pred"].sel(model=model).values)
        written = pred >= 0  # -1: not computed yet
        if written.sum() < MIN_SAMPLES:
            continue
        correct = np.asarray(clean["correct"].sel(model=model).values)[written]
        accuracy = float(correct.mean())
        predicted = np.unique(pred[written])
        symptoms = []
        if accuracy <= chance + 1e-12:
            symptoms.append(f"clean accuracy {accuracy:.3f} is at or below chance ({chance:.3f} for "
                            f"{classes.size} classes)")
        if predicted.size == 1 and np.unique(labels[written]).size > 1:
            symptoms.append(f"every clean sample is predicted as class {int(predicted[0])}")
        if not symptoms:
            continue
        hint = (hints or {}).get(str(model))
        messages.append(f"model {str(model)!r}: {' and '.join(symptoms)}. Check the model's input normalisation "
                        f"(normalize: imagenet or {{mean: [...], std: [...]}}) and the dataset's class mapping "
                        f"(class_map)" + (f"; {hint}" if hint else ""))
    return messages


def stored_warnings(ds: xr.Dataset) -> list[str]:
    """The messages in the cube's ``warnings`` attribute (a JSON list; empty when absent or unreadable)."""
    try:
        values = json.loads(ds.attrs.get("warnings", "[]"))
    except (TypeError, ValueError):
        return []
    return [str(value) for value in values] if isinstance(values, list) else []


def emit(messages: list[str], stacklevel: int = 3) -> None:
    """Raise each message as a :class:`CleanAccuracyWarning` (shown once per message and call site)."""
    for message in messages:
        warnings.warn(message, CleanAccuracyWarning, stacklevel=stacklevel)


__all__ = ["CleanAccuracyWarning", "MIN_SAMPLES", "clean_prediction_warnings", "emit", "stored_warnings"]
