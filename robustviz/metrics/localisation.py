"""Localisation: does the map point at the object? Pointing game and energy in the ground-truth mask, plus the
GridPG / DiFull grid protocol and AggAtt bins (Böhle, Fritz & Schiele, CVPR 2022 "Towards better understanding
attribution methods").

- pointing game (Zhang et al. 2018): 1 when the map's maximum is attained inside the mask (``max_mask m = max m``),
  else 0; NaN for an empty mask.
- energy in mask: ``Σ_mask ReLU(m) / Σ ReLU(m)``; NaN when the map has no positive attribution or the mask is empty.
- GridPG: ``2×2`` grids of images of four different classes, each cell the image downscaled by 2; the score of a map
  for the class of cell ``c`` is ``Σ_cell c ReLU(m) / Σ ReLU(m)`` (chance 0.25 for a uniform map).
  In the cube, the ``gridpg-shapes`` dataset supplies such grids (label = the explained cell's class, mask = that
  cell) and the ``grid_pg`` metric scores them; run it with ``target="label"`` so the map explains the cell's class.
- AggAtt: sort samples by score, cut at percentiles (0, 2, 5, 50, 95, 98, 100) and average the maps per bin.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def _maps_and_masks(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps, masks = torch.as_tensor(maps), torch.as_tensor(masks).to(maps.device)
    if maps.shape[0] != masks.shape[0] or maps.shape[-2:] != masks.shape[-2:]:
        raise InputError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} must have the same N, H and W")
    return maps.reshape(maps.shape[0], -1).double(), masks.reshape(masks.shape[0], -1) > 0.5


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1.0 where the map's maximum lies inside the mask, 0.0 where not, NaN where the mask is empty."""
    values, inside = _maps_and_masks(maps, masks)
    peak_inside = torch.where(inside, values, torch.full_like(values, -torch.inf)).max(dim=1).values
    hit = (peak_inside >= values.max(dim=1).values).double()
    return torch.where(inside.any(dim=1), hit, torch.full_like(hit, float("nan")))


def energy_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of the positive attribution inside the mask; NaN for no positive attribution or an empty mask."""
    values, inside = _maps_and_masks(maps, masks)
    positive = values.clamp_min(0)
    total = positive.sum(dim=1)
    share = (positive * inside).sum(dim=1) / total.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where((total > 0) & inside.any(dim=1), share, torch.full_like(share, float("nan")))


class GridPGSet(NamedTuple):
    """Grids ``n×C×H×W``, the explained cell (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right), its class,
    the classes and source indices of all four cells, and the grids' masks (``n×1×H×W`` or None)."""

    images: torch.Tensor
    cells: torch.Tensor
    labels: torch.Tensor
    cell_labels: torch.Tensor
    sources: torch.Tensor
    masks: torch.Tensor | None


def downscale_half(images: torch.Tensor) -> torch.Tensor:
    """Each image averaged over 2×2 blocks (``H/2×W/2``): the GridPG cell content."""
    height, width = images.shape[-2:]
    return F.interpolate(images.float(), size=(height // 2, width // 2), mode="area")


def tile_grid(quarters: torch.Tensor) -> torch.Tensor:
    """``n×4×C×h×w`` quarters → ``n×C×2h×2w`` grids (cells row-major: 0 top-left … 3 bottom-right)."""
    top = torch.cat([quarters[:, 0], quarters[:, 1]], dim=-1)
    bottom = torch.cat([quarters[:, 2], quarters[:, 3]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def make_grid_pg(images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None, *, n: int = 16,
                 seed: int = 0) -> GridPGSet:
    """``n`` GridPG grids from a labelled image set (≥ 4 classes): each grid draws four images of four different
    classes (without replacement within a grid), downscales them by 2 and tiles them; the explained cell is drawn
    uniformly. Deterministic given ``seed``."""
    labels = torch.as_tensor(labels).long().cpu()
    classes = labels.unique()
    if len(classes) < 4:
        raise InputError(f"GridPG needs images of at least 4 classes, got {len(classes)} ({classes.tolist()})")
    if images.shape[-1] % 2 or images.shape[-2] % 2:
        raise InputError(f"GridPG halves each image: height and width must be even, got {tuple(images.shape[-2:])}")
    draw_seeds = rng.derive_seeds(seed, torch.arange(n), "grid_pg")
    sources = torch.empty(n, 4, dtype=torch.long)
    cells = torch.empty(n, dtype=torch.long)
    for index in range(n):
        generator = rng.generator(draw_seeds[index])
        chosen = classes[torch.randperm(len(classes), generator=generator)[:4]]
        for position, label in enumerate(chosen):
            candidates = torch.nonzero(labels == label).flatten()
            sources[index, position] = candidates[torch.randint(len(candidates), (1,), generator=generator)]
        cells[index] = torch.randint(4, (1,), generator=generator)
    device = images.device
    grids = tile_grid(downscale_half(images[sources.flatten().to(device)]).view(n, 4, *images.shape[1:2],
                                                                         images.shape[-2] // 2, images.shape[-1] // 2))
    grid_masks = None
    if masks is not None:
        small = downscale_half(torch.as_tensor(masks)[sources.flatten().to(masks.device)].float())
        grid_masks = tile_grid(small.view(n, 4, 1, *small.shape[-2:]))
    cell_labels = labels[sources]
    target = cell_labels[torch.arange(n), cells]
    return GridPGSet(grids.to(images.dtype), cells, target, cell_labels, sources, grid_masks)


def grid_pg_score(maps: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Positive attribution inside the explained cell / all positive attribution (NaN when none is positive)."""
    maps = torch.as_tensor(maps).double()
    if maps.ndim == 4:
        maps = maps[:, 0]
    positive = maps.clamp_min(0)
    height, width = positive.shape[-2:]
    quarters = positive.reshape(-1, 2, height // 2, 2, width // 2).sum(dim=(2, 4)).reshape(-1, 4)
    total = positive.sum(dim=(1, 2))
    inside = quarters.gather(1, torch.as_tensor(cells).long().view(-1, 1).to(quarters.device))[:, 0]
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(torch.float64).tiny),
                       torch.full_like(total, float("nan")))


def cells_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """The GridPG cell (0..3) each mask marks; the mask must cover exactly one full quadrant."""
    masks = torch.as_tensor(masks)
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise InputError(f"grid_pg needs masks N×1×H×W, got {tuple(masks.shape)}")
    height, width = masks.shape[-2:]
    if height % 2 or width % 2:
        raise InputError(f"grid_pg needs even-sized 2×2 grids, got masks of {height}×{width}")
    inside = masks[:, 0] > 0.5
    quarters = inside.reshape(-1, 2, height // 2, 2, width // 2).sum(dim=(2, 4)).reshape(-1, 4)
    full = quarters == (height // 2) * (width // 2)
    valid = (full.sum(dim=1) == 1) & (quarters.sum(dim=1) == quarters.max(dim=1).values)
    if not bool(valid.all()):
        bad = torch.nonzero(~valid).flatten()[:5].tolist()
        raise InputError(f"grid_pg needs GridPG grids whose mask marks exactly one full quadrant (the explained "
                         f"cell); samples {bad} do not — object masks, perhaps. Use the 'gridpg-shapes' dataset, "
                         "whose masks mark the cell")
    return full.int().argmax(dim=1)


class AggAttBins(NamedTuple):
    """Mean map per bin ``B×H×W``, bin edges as sample positions ``B+1`` and the number of samples per bin."""

    maps: torch.Tensor
    edges: torch.Tensor
    counts: torch.Tensor


def aggatt_bins(scores: torch.Tensor, maps: torch.Tensor,
                percentiles: Sequence[float] = (0, 2, 5, 50, 95, 98, 100)) -> AggAttBins:
    """Sort samples by ascending score; bin ``b`` holds sorted positions ``[⌊P_b·N/100⌋, ⌊P_{b+1}·N/100⌋)``
    (the last bin includes the end); returns the mean map per bin (NaN maps for empty bins). NaN scores are
    dropped."""
    scores = torch.as_tensor(scores).double().flatten()
    maps = torch.as_tensor(maps).double()
    if maps.ndim == 4:
        maps = maps[:, 0]
    if maps.shape[0] != scores.shape[0]:
        raise InputError(f"got {scores.shape[0]} scores for {maps.shape[0]} maps")
    keep = ~torch.isnan(scores)
    scores, maps = scores[keep], maps[keep.to(maps.device)]
    order = scores.argsort(stable=True)
    count = len(order)
    edges = torch.tensor([int(p * count // 100) for p in percentiles])
    binned = torch.full((len(percentiles) - 1, *maps.shape[1:]), float("nan"), dtype=torch.float64,
                        device=maps.device)
    counts = (edges[1:] - edges[:-1]).clamp_min(0)
    for index in range(len(percentiles) - 1):
        if counts[index] > 0:
            binned[index] = maps[order[edges[index]:edges[index + 1]].to(maps.device)].mean(dim=0)
    return AggAttBins(binned, edges, counts)


class _MaskMetric(Metric):
    category = "localisation"
    direction = "higher"
    needs = frozenset({"attributions", "masks"})
    mask_dataset: ClassVar[str] = "shapes"  # a registered dataset whose masks this metric expects


@register("metric", "pointing_game")
class PointingGame(_MaskMetric):
    """1 when the attribution maximum lies inside the object's ground-truth mask."""

    name = "pointing_game"

    def compute(self, context: MetricContext) -> torch.Tensor:
        return pointing_game(context.attributions, context.masks)


@register("metric", "energy_in_mask")
class EnergyInMask(_MaskMetric):
    """Share of the positive attribution that falls inside the object's ground-truth mask."""

    name = "energy_in_mask"

    def compute(self, context: MetricContext) -> torch.Tensor:
        return energy_in_mask(context.attributions, context.masks)


@register("metric", "grid_pg")
class GridPG(_MaskMetric):
    """GridPG (Böhle et al. 2022): share of the positive attribution inside the explained cell of a 2×2 grid of
    four classes (chance 0.25). Needs a grid dataset whose masks mark the cell, such as ``gridpg-shapes``."""

    name = "grid_pg"
    mask_dataset = "gridpg-shapes"

    def compute(self, context: MetricContext) -> torch.Tensor:
        return grid_pg_score(context.attributions, cells_from_masks(context.masks))


__all__ = ["AggAttBins", "EnergyInMask", "GridPG", "GridPGSet", "PointingGame", "aggatt_bins", "cells_from_masks",
           "downscale_half", "energy_in_mask", "grid_pg_score", "make_grid_pg", "pointing_game", "tile_grid"]
