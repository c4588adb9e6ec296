"""Complexity of an explanation: how concentrated a map is (a concise map is easier to read).

Each metric works on ``a = |Φ(x)|`` flattened to ``D`` values per sample (the map of the cube's perturbed image):

- sparseness (Chalasani et al., ICML 2020): the Gini index of ``a``. With ``a`` divided by its maximum, ``1e-7``
  added (Quantus's convention, which keeps the index defined for a map with zeros) and sorted ascending,
  ``G = Σ_i (2i − D − 1) a_(i) / (D Σ_i a_(i))``: 0 for a uniform map, → 1 when one pixel holds everything
  (higher = sparser = better).
- complexity (Bhatt, Weller & Moura, IJCAI 2020): the Shannon entropy (nats) of ``p = a / Σ a``,
  ``H = −Σ p log p`` with ``0 log 0 = 0``: 0 for one pixel, ``log D`` for a uniform map (lower = better).
- effective complexity (Nguyen & Martínez, 2020): the number of pixels with ``a / max a > eps`` (``eps = 1e-5``,
  Quantus's default) (lower = better).

A map without any non-zero value has no distribution to measure: every metric gives NaN for it.
"""

from __future__ import annotations

import torch

from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def _magnitudes(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``|maps|`` flattened to ``N×D`` float64 and a mask of the samples whose map is not all zero."""
    maps = torch.as_tensor(maps)
    if maps.ndim < 2:
        raise InputError(f"maps must be N×… (one map per sample), got shape {tuple(maps.shape)}")
    values = maps.reshape(maps.shape[0], -1).double().abs()
    return values, values.amax(dim=1) > 0


def _nan_where(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, scores, torch.full_like(scores, float("nan")))


def gini_sparseness(maps: torch.Tensor, epsilon: float = 1e-7) -> torch.Tensor:
    """Gini index of ``|maps|`` per sample (each divided by its max, ``epsilon`` added); NaN for zero maps."""
    values, valid = _magnitudes(maps)
    values = values / values.amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny) + epsilon
    values = values.sort(dim=1).values
    count = values.shape[1]
    weights = 2 * torch.arange(1, count + 1, dtype=torch.float64, device=values.device) - count - 1
    return _nan_where((values * weights).sum(dim=1) / (count * values.sum(dim=1)), valid)


def entropy_complexity(maps: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``|maps| / Σ|maps|`` per sample; NaN for zero maps."""
    values, valid = _magnitudes(maps)
    share = values / values.sum(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return _nan_where(-torch.special.xlogy(share, share).sum(dim=1), valid)


def effective_complexity(maps: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Number of pixels with ``|m| / max|m| > eps`` per sample; NaN for zero maps."""
    values, valid = _magnitudes(maps)
    scaled = values / values.amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return _nan_where((scaled > eps).sum(dim=1).double(), valid)


class _ComplexityMetric(Metric):
    category = "complexity"
    needs = frozenset({"attributions"})


@register("metric", "sparseness")
class Sparseness(_ComplexityMetric):
    """Gini index of the absolute attribution map (Chalasani et al. 2020); higher is sparser."""

    name = "sparseness"
    direction = "higher"

    def __init__(self, epsilon: float = 1e-7):
        self.epsilon = epsilon

    def compute(self, context: MetricContext) -> torch.Tensor:
        return gini_sparseness(context.attributions, self.epsilon)


@register("metric", "complexity")
class Complexity(_ComplexityMetric):
    """Entropy of the normalised absolute attribution map (Bhatt et al. 2020); lower is simpler."""

    name = "complexity"
    direction = "lower"

    def compute(self, context: MetricContext) -> torch.Tensor:
        return entropy_complexity(context.attributions)


@register("metric", "effective_complexity")
class EffectiveComplexity(_ComplexityMetric):
    """Number of pixels whose absolute attribution exceeds ``eps`` × the map's maximum; lower is simpler."""

    name = "effective_complexity"
    direction = "lower"

    def __init__(self, eps: float = 1e-5):
        if not eps >= 0:
            raise InputError(f"effective_complexity: eps must be >= 0, got {eps}")
        self.eps = eps

    def compute(self, context: MetricContext) -> torch.Tensor:
        return effective_complexity(context.attributions, self.eps)


__all__ = ["Complexity", "EffectiveComplexity", "Sparseness", "effective_complexity", "entropy_complexity",
           "gini_sparseness"]
