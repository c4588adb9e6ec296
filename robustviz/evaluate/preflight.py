"""Checks the evaluator runs on a user's model and data: before work (does the model's output index the dataset's
labels? does it run on these images?) and after (are the clean predictions plausible?).

A model whose classes the labels do not index — a different number of outputs, or the same class names in another
order — is refused with the ``class_map`` that fixes it, on one image, before a store is created. After the run,
the clean-prediction checks of :mod:`robustviz.cube.checks` (accuracy at or below chance, one class for every
sample) are stored in the cube's ``warnings`` attr and raised as warnings.
"""

from __future__ import annotations

import json

import torch
import xarray as xr

from ..data.base import ImageSet
from ..validation import InputError
from .checks import logits_of, model_errors
from .plan import Plan
from .store import CubeStore


def check_label_space(name: str, model: torch.nn.Module, logits: torch.Tensor, data: ImageSet) -> None:
    """Refuse a model whose classes the dataset's labels do not index: a different number of outputs, or the same
    class names in another order (the labels would silently be wrong); name the ``class_map`` fix."""
    classes = list(data.class_names)
    mapped = data.metadata.get("label_space") == "model"
    if logits.ndim != 2:
        raise InputError(f"model {name!r} returned outputs of shape {tuple(logits.shape)}; expected logits (N, K)")
    width = logits.shape[1]
    if mapped:
        top = int(data.labels.max()) if len(data.labels) else -1
        if top >= width or (len(classes) > width):
            raise InputError(f"model {name!r} has {width} outputs but the dataset's class_map sends labels up to "
                             f"{max(top, len(classes) - 1)}; the class_map must use the model's class indices")
        return
    source = data.metadata.get("dataset", "")
    how = " (labelled by sorted folder names)" if source == "folder" else ""
    if width != len(classes):
        raise InputError(f"model {name!r} has {width} outputs but the dataset has {len(classes)} classes{how}: "
                         f"{', '.join(classes[:8])}{', …' if len(classes) > 8 else ''}. Map the dataset's classes "
                         f"to the model's with the dataset's class_map (a {{folder name: model index}} mapping, or "
                         f"the model's class list: wnids or names in index order)")
    model_classes = getattr(model, "class_names", None)
    if model_classes is None or list(model_classes) == [str(i) for i in range(width)]:
        return
    model_classes = [str(c) for c in model_classes]
    if classes != model_classes and set(classes) == set(model_classes):
        suggestion = ", ".join(f"{c}: {model_classes.index(c)}" for c in classes[:8])
        raise InputError(f"model {name!r} orders its classes {model_classes[:8]} but the dataset{how} orders them "
                         f"{classes[:8]}: the labels would be wrong. Give the dataset class_map: {{{suggestion}}}")


def probe_models(plan: Plan) -> None:
    """Create each model once and run it on one image: its methods, its output width and its class order are
    checked (:func:`check_label_space`) before anything is written. One model is in memory at a time."""
    data = plan.data
    for index, name in enumerate(plan.model_names):
        model = plan.create_model(index)
        images = data.images[:1].to(plan.device)
        with torch.no_grad(), model_errors(name, images):
            logits = logits_of(model, model(images), name).float()
        check_label_space(name, model, logits, data)
        del model


def record_warnings(plan: Plan, cube: xr.Dataset, store: CubeStore | None) -> xr.Dataset:
    """Run the clean-prediction checks (:mod:`robustviz.cube.checks`) on a finished cube: store the messages in its
    ``warnings`` attr (and the store's), and raise them as Python warnings."""
    from ..cube.checks import clean_prediction_warnings, emit

    hints = {}
    for name, component in zip(plan.model_names, plan.spec.models):
        if "normalize" in component.kwargs:
            continue
        if component.name == "file":
            hints[name] = "its spec entry declares no normalize: (no normalisation was applied)"
        elif component.name in plan.model_overrides and not hasattr(plan.model_overrides[component.name],
                                                                     "normalization"):
            hints[name] = ("it was passed to evaluate(models=...) without a normalisation: declare normalize: in "
                           "its spec entry or wrap it in NormalizedModel(model, mean, std)")
    messages = clean_prediction_warnings(cube, hints)
    # the plan's own warnings (degenerate metric settings) stay beside the clean-prediction ones
    cube.attrs["warnings"] = json.dumps(list(plan.warnings) + [m for m in messages if m not in plan.warnings])
    if store is not None:
        store.group.attrs["warnings"] = cube.attrs["warnings"]
    emit(messages, stacklevel=3)
    return cube


__all__ = ["check_label_space", "probe_models", "record_warnings"]
