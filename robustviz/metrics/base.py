"""The Metric contract (see docs/design.md).

A per-sample metric declares ``name``, ``direction`` ("higher" or "lower" is better), ``category`` and ``needs`` —
the fields of :class:`MetricContext` the engine must fill — and returns one score per sample (a length-N tensor).
Aggregation (means, CIs, CE/mCE) happens in the cube accessor, never inside a metric. A metric that needs
``attributions`` is computed per explanation method and gets the ``method`` dim in the cube.

A model-level analysis (:class:`ModelMetric`, e.g. I-ASIDE) is computed once per model on the clean samples and
returns arrays with their own dims (e.g. ``band``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

#: Context fields a metric may ask for.
NEEDS = frozenset({
    "model", "images", "clean_images", "labels", "logits", "clean_logits", "attributions", "clean_attributions",
    "method", "masks", "seeds", "target",
})

CATEGORIES = frozenset({
    "accuracy", "model-robustness", "explanation-robustness", "faithfulness", "sensitivity", "localisation",
    "complexity", "randomisation", "calibration",
})


@dataclass
class MetricContext:
    """What the engine knows about one batch of one (model, perturbation, severity[, method]) cell."""

    model: torch.nn.Module | None = None
    images: torch.Tensor | None = None  # perturbed images, N×C×H×W in [0, 1]
    clean_images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # on the perturbed images
    clean_logits: torch.Tensor | None = None
    attributions: torch.Tensor | None = None  # N×1×H×W, of the perturbed images
    clean_attributions: torch.Tensor | None = None
    method: Any = None  # the Method object that made the attributions
    masks: torch.Tensor | None = None  # ground-truth object masks N×1×H×W, when the dataset has them
    seeds: torch.Tensor | None = None  # per-sample int64 seeds for this cell
    method_seeds: torch.Tensor | None = None  # the seeds the method was given for ``attributions``
    target: torch.Tensor | None = None  # the class attributions were computed for (default: clean prediction)
    perturbation: str = ""
    severity: int = 0


class Metric(ABC):
    """Per-sample metric: subclasses set the class attributes and implement :meth:`compute`."""

    name: ClassVar[str] = ""
    direction: ClassVar[str] = "higher"
    category: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    scope: ClassVar[str] = "sample"

    @property
    def value_coords(self) -> Mapping[str, Any]:
        """Coordinates of extra per-sample dims (after ``sample``) for a metric whose value per sample is an array,
        e.g. a pooled map; empty (the default) for a scalar score."""
        return {}

    @property
    def per_method(self) -> bool:
        """True when the metric depends on an explanation method (gets the ``method`` dim)."""
        return bool({"attributions", "clean_attributions", "method"} & set(self.needs))

    def __call__(self, context: MetricContext) -> torch.Tensor:
        missing = [need for need in self.needs if getattr(context, need) is None]
        if missing:
            raise ValueError(f"metric {self.name!r} needs {', '.join(sorted(missing))}, which the caller did not "
                             f"provide (for masks: use a dataset with ground-truth masks, e.g. 'shapes')")
        scores = torch.as_tensor(self.compute(context)).detach().float()
        return scores.reshape(-1, *(len(values) for values in self.value_coords.values()))

    @abstractmethod
    def compute(self, context: MetricContext) -> torch.Tensor:
        """Scores of shape ``(N,)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, direction={self.direction!r})"


class ModelMetric(ABC):
    """Model-level analysis computed once per model on clean samples (e.g. I-ASIDE's SID/SRS).

    :meth:`compute` returns ``{variable: (dims, array)}`` where ``dims`` excludes ``model`` (the engine adds it);
    :attr:`coords` gives the coordinates of any extra dims (e.g. ``{"band": [0, …, M-1]}``).
    """

    name: ClassVar[str] = ""
    direction: ClassVar[str] = "higher"
    category: ClassVar[str] = "model-robustness"
    scope: ClassVar[str] = "model"

    @property
    def coords(self) -> Mapping[str, Any]:
        """Coordinates of the extra dims this analysis adds (e.g. ``{"band": range(M)}``)."""
        return {}

    @property
    def variables(self) -> Mapping[str, tuple[str, ...]]:
        """``{variable: dims}`` (without ``model``) of what :meth:`compute` returns — the engine lays out the
        store before computing anything. Defaults to ``{name: ()}``: one scalar per model."""
        return {self.name: ()}

    @abstractmethod
    def compute(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                seed: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Model-level results as ``{variable: (dims, array)}``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


__all__ = ["CATEGORIES", "NEEDS", "Metric", "MetricContext", "ModelMetric"]
