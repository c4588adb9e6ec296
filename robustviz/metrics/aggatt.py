"""Per-sample pooled attribution maps, so AggAtt (Böhle, Fritz & Schiele, CVPR 2022) can bin every sample.

AggAtt sorts all samples by a score and averages their maps per percentile bin (0–2, 2–5, 5–50, 50–95, 95–98,
98–100 %). The bins depend on the scores of all samples, which a region of the cube does not know, so the cube
stores each sample's map at a coarse resolution instead: ``attribution_pooled`` is the mean of the map over each
cell of a ``grid × grid`` partition (``adaptive_avg_pool2d``: cell ``(i, j)`` covers rows ``⌊iH/G⌋ … ⌈(i+1)H/G⌉``),
sign kept, dims ``(…, method, sample, pool_y, pool_x)``. ``robustviz.figures.explanations.aggatt_from_cube`` then
bins every sample (not only the stored examples); the bin means of the pooled maps equal the pooled bin means of the
full maps, as pooling is linear.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def pooled_maps(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """``N×grid×grid`` cell means of ``N×1×H×W`` maps (float64)."""
    maps = torch.as_tensor(maps)
    if maps.ndim != 4 or maps.shape[1] != 1:
        raise InputError(f"maps must be N×1×H×W, got shape {tuple(maps.shape)}")
    if not 1 <= grid <= min(maps.shape[-2:]):
        raise InputError(f"grid must lie in [1, {min(maps.shape[-2:])}] (the map size), got {grid}")
    return F.adaptive_avg_pool2d(maps.double(), grid)[:, 0]


@register("metric", "attribution_pooled")
class AttributionPooled(Metric):
    """The attribution map averaged over a grid × grid partition, per sample, for AggAtt over all samples."""

    name = "attribution_pooled"
    direction = "none"
    category = "localisation"
    needs = frozenset({"attributions"})

    def __init__(self, grid: int = 16):
        if grid < 1:
            raise InputError(f"attribution_pooled: grid must be >= 1, got {grid}")
        self.grid = grid

    @property
    def value_coords(self) -> Mapping[str, Any]:
        return {"pool_y": list(range(self.grid)), "pool_x": list(range(self.grid))}

    def compute(self, context: MetricContext) -> torch.Tensor:
        return pooled_maps(context.attributions, self.grid)


__all__ = ["AttributionPooled", "pooled_maps"]
