"""A procedural "shapes" dataset: coloured shapes on textured backgrounds, with ground-truth object masks.

Every sample is a pure function of ``(seed, split, sample id)``: its class is ``sample_id % 8`` and all its random
parameters (position, scale, rotation, colour, background texture) come from :mod:`robustviz.rng` counter-based
draws seeded by :func:`robustviz.rng.derive_seeds`. So sample ``i`` is identical whether you ask for 10 or 10 000
images, and the scene is defined in normalised coordinates: the same sample rendered at 32, 64 or 224 pixels shows
the same shape in the same place.

Rendering is vectorised: each shape is a signed distance function (SDF) evaluated on a coordinate grid
(after Quilez's 2-D distance functions, https://iquilezles.org/articles/distfunctions2d/). The object mask is
``sdf < 0``; the colour is blended with a one-pixel anti-aliasing ramp ``alpha = clamp(0.5 - sdf_pixels, 0, 1)``,
so pixels further than half a pixel outside the shape are exactly the background.

Colours are chosen so the object always stands out: shapes are saturated and bright (HSV saturation >= 0.75,
value >= 0.85), backgrounds are muted (grey level in [0.3, 0.7] with a tint of at most 0.08 per channel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import ImageSet

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart")
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Object radius (fraction of the half image width) and background parameters.
_RADIUS_RANGE = (0.28, 0.5)
_GREY_RANGE = (0.3, 0.7)
_TINT = 0.08


# -- signed distance functions in the shape's unit frame (shape fits in the unit disc) --------------------------
def _length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + y * y)


def _triangle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Equilateral triangle with circumradius 1, centred on its centroid (Quilez's sdEquilateralTriangle)."""
    half_side, k = math.sqrt(3.0) / 2, math.sqrt(3.0)
    x = x.abs() - half_side
    y = y + half_side / k
    fold = x + k * y > 0
    x, y = torch.where(fold, (x - k * y) / 2, x), torch.where(fold, (-k * x - y) / 2, y)
    x = x - x.clamp(-2 * half_side, 0.0)
    return -_length(x, y) * torch.sign(y)


def _box(x: torch.Tensor, y: torch.Tensor, half_width: float, half_height: float) -> torch.Tensor:
    dx, dy = x.abs() - half_width, y.abs() - half_height
    outside = _length(dx.clamp(min=0), dy.clamp(min=0))
    return outside + torch.maximum(dx, dy).clamp(max=0)


def _star(x: torch.Tensor, y: torch.Tensor, radius: float = 1.0, inner: float = 0.45) -> torch.Tensor:
    """Five-pointed star (Quilez's sdStar5); ``inner`` sets how deep the notches are."""
    k1x, k1y = 0.809016994375, -0.587785252292
    k2x, k2y = -k1x, k1y
    x = x.abs()
    dot = (k1x * x + k1y * y).clamp(min=0)
    x, y = x - 2 * dot * k1x, y - 2 * dot * k1y
    dot = (k2x * x + k2y * y).clamp(min=0)
    x, y = x - 2 * dot * k2x, y - 2 * dot * k2y
    x = x.abs()
    y = y - radius
    bax, bay = inner * -k1y, inner * k1x - 1.0
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(0.0, radius)
    return _length(x - bax * h, y - bay * h) * torch.sign(y * bax - x * bay)


def _crescent(x: torch.Tensor, y: torch.Tensor, offset: float = 0.45, outer: float = 0.8, cut: float = 0.85,
              rounding: float = 0.1) -> torch.Tensor:
    """A disc of radius ``outer`` minus a disc of radius ``cut`` shifted by ``offset`` (Quilez's exact sdMoon),
    grown by ``rounding`` so the horns end in round caps instead of sub-pixel slivers: the result spans radius 0.9
    with a cut of radius 0.75."""
    y = y.abs()
    a = (outer ** 2 - cut ** 2 + offset ** 2) / (2 * offset)
    b = math.sqrt(max(outer ** 2 - a * a, 0.0))
    horn = offset * (x * b - y * a) > offset ** 2 * (b - y).clamp(min=0)
    body = torch.maximum(_length(x, y) - outer, -(_length(x - offset, y) - cut))
    return torch.where(horn, _length(x - a, y - b), body) - rounding


def _heart(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Quilez's sdHeart, scaled by 0.6 and shifted so the heart is centred in the unit disc (tip towards -y)."""
    scale = 0.6
    qx, qy = (x * scale).abs(), y * scale + 0.5
    lobe = _length(qx - 0.25, qy - 0.75) - math.sqrt(2.0) / 4.0
    tip_distance = torch.sqrt(torch.minimum(qx * qx + (qy - 1.0) ** 2,
                                            (qx - 0.5 * (qx + qy).clamp(min=0)) ** 2
                                            + (qy - 0.5 * (qx + qy).clamp(min=0)) ** 2))
    body = tip_distance * torch.sign(qx - qy)
    return torch.where(qx + qy > 1.0, lobe, body) / scale


def _shape_sdf(class_index: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    name = SHAPE_CLASSES[class_index]
    if name == "circle":
        return _length(x, y) - 0.9
    if name == "square":  # circumradius 1
        return _box(x, y, math.sqrt(0.5), math.sqrt(0.5))
    if name == "triangle":
        return _triangle(x, y)
    if name == "star":
        return _star(x, y)
    if name == "cross":
        return torch.minimum(_box(x, y, 0.95, 0.3), _box(x, y, 0.3, 0.95))
    if name == "ring":
        return (_length(x, y) - 0.7).abs() - 0.22
    if name == "crescent":
        return _crescent(x, y)
    if name == "heart":
        return _heart(x, y)
    raise AssertionError(name)  # pragma: no cover - SHAPE_CLASSES and this table are edited together


# -- colours and backgrounds -------------------------------------------------------------------------------------
def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(N,) HSV in [0, 1] -> (N, 3) RGB."""
    k = torch.stack([(5 + hue * 6) % 6, (3 + hue * 6) % 6, (1 + hue * 6) % 6], dim=1)
    weight = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * weight


def _muted_colours(uniforms: torch.Tensor) -> torch.Tensor:
    """(N, 4) uniforms -> (N, 3) muted colours: a grey level plus a small per-channel tint."""
    grey = _GREY_RANGE[0] + (_GREY_RANGE[1] - _GREY_RANGE[0]) * uniforms[:, :1]
    return grey + _TINT * (2 * uniforms[:, 1:4] - 1)


def _backgrounds(seeds: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Per-sample textured backgrounds (N, 3, H, W): smooth noise, stripes or a linear gradient."""
    size = xs.shape[-1]
    kind = rng.randint(rng.substream(seeds, "background-kind"), 3)
    params = rng.uniform(rng.substream(seeds, "background-params"), (12,))
    colour_a, colour_b = _muted_colours(params[:, 0:4]), _muted_colours(params[:, 4:8])
    angle = 2 * math.pi * params[:, 8, None, None]
    along = xs * torch.cos(angle) + ys * torch.sin(angle)  # (N, H, W), in [-sqrt 2, sqrt 2]
    stripes = 0.5 + 0.5 * torch.sin(math.pi * (2 + 4 * params[:, 9, None, None]) * along
                                    + 2 * math.pi * params[:, 10, None, None])
    gradient = (along / math.sqrt(2) + 1) / 2
    grid = rng.uniform(rng.substream(seeds, "background-noise"), (1, 5, 5))
    noise = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True).clamp(0, 1)[:, 0]
    mix = torch.where(kind[:, None, None] == 0, noise, torch.where(kind[:, None, None] == 1, stripes, gradient))
    background = colour_a[:, :, None, None] + (colour_b - colour_a)[:, :, None, None] * mix[:, None]
    return background


# -- rendering ---------------------------------------------------------------------------------------------------
def render(labels: torch.Tensor, seeds: torch.Tensor, image_size: int = 64,
           return_background: bool = False) -> tuple[torch.Tensor, ...]:
    """Render one image per (label, seed): returns ``(images N×3×H×W float32 in [0,1], masks N×1×H×W bool)``
    and, with ``return_background=True``, the background alone as a third tensor (for tests and ablations)."""
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    if labels.shape != seeds.shape:
        raise InputError(f"need one seed per label, got {labels.shape[0]} labels and {seeds.shape[0]} seeds")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(SHAPE_CLASSES)):
        raise InputError(f"shape class indices must lie in [0, {len(SHAPE_CLASSES)}), got {labels.tolist()[:10]}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise InputError(f"image_size must be an int >= 8, got {image_size!r}")
    n = labels.shape[0]
    coords = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size * 2 - 1  # pixel centres in [-1, 1]
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    xs, ys = xs.expand(n, -1, -1), ys.expand(n, -1, -1)

    params = rng.uniform(rng.substream(seeds, "object"), (7,))
    radius = _RADIUS_RANGE[0] + (_RADIUS_RANGE[1] - _RADIUS_RANGE[0]) * params[:, 0]
    margin = 1.0 - 1.1 * radius  # keep the whole shape inside the image
    centre_x = (2 * params[:, 1] - 1) * margin
    centre_y = (2 * params[:, 2] - 1) * margin
    rotation = 2 * math.pi * params[:, 3]
    colour = _hsv_to_rgb(params[:, 4], 0.75 + 0.25 * params[:, 5], 0.85 + 0.15 * params[:, 6])

    # Inverse transform of the pixel grid into each shape's unit frame.
    cos, sin = torch.cos(rotation)[:, None, None], torch.sin(rotation)[:, None, None]
    dx, dy = xs - centre_x[:, None, None], ys - centre_y[:, None, None]
    unit_x = (cos * dx + sin * dy) / radius[:, None, None]
    unit_y = (-sin * dx + cos * dy) / radius[:, None, None]
    sdf = torch.empty(n, image_size, image_size)
    for class_index in labels.unique().tolist():
        rows = labels == class_index
        sdf[rows] = _shape_sdf(class_index, unit_x[rows], unit_y[rows])
    sdf_pixels = sdf * radius[:, None, None] * (image_size / 2)
    alpha = (0.5 - sdf_pixels).clamp(0, 1)[:, None]

    background = _backgrounds(seeds, xs, ys)
    images = (background * (1 - alpha) + colour[:, :, None, None] * alpha).clamp(0, 1).contiguous()
    masks = (sdf < 0)[:, None]
    if return_background:
        return images, masks, background
    return images, masks


def shape_seeds(sample_ids: torch.Tensor, seed: int = 0, split: str = "test") -> torch.Tensor:
    """Per-sample seeds of the shapes dataset: a pure function of (seed, split, sample id)."""
    if split not in SPLITS:
        raise InputError(f"unknown shapes split {split!r}; choose one of {', '.join(SPLITS)}")
    return rng.derive_seeds(int(seed), sample_ids, "shapes", split)


def _check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"the number of samples must be a non-negative int, got {n!r}")
    return n


def make_shapes(n: int, image_size: int = 64, seed: int = 0, split: str = "test", start: int = 0) -> ImageSet:
    """``n`` shapes images (samples ``start .. start+n-1`` of ``split``), classes balanced round-robin
    (``label = sample_id % 8``), with ground-truth object masks.

    Splits "train", "val" and "test" use independent seed streams, so they never share an image.
    """
    _check_count(n)
    sample_ids = torch.arange(int(start), int(start) + n, dtype=torch.int64)
    labels = sample_ids % len(SHAPE_CLASSES)
    images, masks = render(labels, shape_seeds(sample_ids, seed, split), image_size)
    return ImageSet(images, labels, list(SHAPE_CLASSES), masks=masks, sample_ids=sample_ids, name="shapes",
                    metadata={"dataset": "shapes", "split": split, "seed": int(seed), "image_size": image_size})


def render_shape(class_index: int | str, n: int, image_size: int = 64, seed: int = 0,
                 split: str = "test") -> ImageSet:
    """``n`` images that all show ``class_index`` (an index into :data:`SHAPE_CLASSES` or a class name).

    Their seeds come from a stream of their own per class, so they are not the images ``make_shapes`` returns;
    use this to build class-controlled inputs such as 2×2 localisation grids.
    """
    _check_count(n)
    if isinstance(class_index, str):
        if class_index not in SHAPE_CLASSES:
            raise InputError(f"unknown shape class {class_index!r}; choose one of {', '.join(SHAPE_CLASSES)}")
        class_index = SHAPE_CLASSES.index(class_index)
    if not 0 <= int(class_index) < len(SHAPE_CLASSES):
        raise InputError(f"shape class index must lie in [0, {len(SHAPE_CLASSES)}), got {class_index}")
    if split not in SPLITS:
        raise InputError(f"unknown shapes split {split!r}; choose one of {', '.join(SPLITS)}")
    sample_ids = torch.arange(n, dtype=torch.int64)
    labels = torch.full((n,), int(class_index), dtype=torch.int64)
    seeds = rng.derive_seeds(int(seed), sample_ids, "shapes-class", split, int(class_index))
    images, masks = render(labels, seeds, image_size)
    return ImageSet(images, labels, list(SHAPE_CLASSES), masks=masks, sample_ids=sample_ids, name="shapes",
                    metadata={"dataset": "shapes", "split": split, "seed": int(seed), "image_size": image_size,
                              "class": SHAPE_CLASSES[int(class_index)]})


@register("dataset", "shapes")
def shapes_dataset(n_samples: int, image_size: int = 64, seed: int = 0, split: str = "test") -> ImageSet:
    """Registry factory for the shapes dataset (see :func:`make_shapes`)."""
    return make_shapes(n_samples, image_size=image_size, seed=seed, split=split)


def make_gridpg_shapes(n: int, image_size: int = 64, seed: int = 0, split: str = "test",
                       start: int = 0) -> ImageSet:
    """``n`` GridPG grids (Böhle et al. 2022) of shapes: each a 2×2 grid of four shapes of four different classes,
    each rendered at ``image_size`` and averaged over 2×2 blocks, so a grid is ``image_size`` square like the
    model's input. The label is the class of the explained cell (drawn uniformly) and the mask marks that cell;
    ``metadata`` holds ``cells``, ``cell_labels`` (``n×4``) and the shapes' ``object_masks``.

    Grid ``i`` is a pure function of ``(seed, split, i)`` (classes, cell and the four shapes), like :func:`make_shapes`.
    """
    from ..metrics.localisation import downscale_half, tile_grid

    _check_count(n)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16 or image_size % 2:
        raise InputError(f"GridPG grids need an even image_size >= 16, got {image_size!r}")
    if split not in SPLITS:
        raise InputError(f"unknown shapes split {split!r}; choose one of {', '.join(SPLITS)}")
    sample_ids = torch.arange(int(start), int(start) + n, dtype=torch.int64)
    grid_seeds = rng.derive_seeds(int(seed), sample_ids, "gridpg-shapes", split)
    # four distinct classes per grid: the ranks of 8 uniforms are a uniform random permutation
    ranks = rng.uniform(rng.substream(grid_seeds, "classes"), (len(SHAPE_CLASSES),)).argsort(dim=1, stable=True)
    cell_labels = ranks[:, :4]
    cells = rng.randint(rng.substream(grid_seeds, "cell"), 4, (1,))[:, 0]
    cell_seeds = rng.derive_seeds(int(seed), sample_ids.repeat_interleave(4) * 4 + torch.arange(4).repeat(n),
                                  "gridpg-shapes-cell", split)
    images, masks = render(cell_labels.reshape(-1), cell_seeds, image_size)
    half = image_size // 2
    grids = tile_grid(downscale_half(images).view(n, 4, 3, half, half))
    object_masks = tile_grid(downscale_half(masks.float()).view(n, 4, 1, half, half)) > 0.5
    cell_masks = torch.zeros(n, 4, 1, half, half, dtype=torch.bool)
    cell_masks[torch.arange(n), cells] = True
    labels = cell_labels[torch.arange(n), cells]
    return ImageSet(grids.clamp(0, 1), labels, list(SHAPE_CLASSES), masks=tile_grid(cell_masks),
                    sample_ids=sample_ids, name="gridpg-shapes",
                    metadata={"dataset": "gridpg-shapes", "split": split, "seed": int(seed),
                              "image_size": image_size, "cells": cells, "cell_labels": cell_labels,
                              "object_masks": object_masks})


@register("dataset", "gridpg-shapes")
def gridpg_shapes_dataset(n_samples: int, image_size: int = 64, seed: int = 0, split: str = "test") -> ImageSet:
    """Registry factory for GridPG grids of shapes (see :func:`make_gridpg_shapes`); score with ``grid_pg``."""
    return make_gridpg_shapes(n_samples, image_size=image_size, seed=seed, split=split)


__all__ = ["SHAPE_CLASSES", "SPLITS", "gridpg_shapes_dataset", "make_gridpg_shapes", "make_shapes", "render",
           "render_shape", "shape_seeds", "shapes_dataset"]
