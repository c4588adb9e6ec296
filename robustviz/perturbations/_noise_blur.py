"""ImageNet-C noise and blur corruptions (Hendrycks & Dietterich, ICLR 2019) as batched torch operations.

Formulas (x in [0, 1], constants c from :mod:`._corruption_base`, every result clipped to [0, 1]):

- gaussian_noise: x + c·ε, ε ~ N(0, 1); speckle_noise: x + x·c·ε; shot_noise: Poisson(c·x)/c;
  impulse_noise: each value replaced by 0 or 1 (equal odds) with probability c;
- gaussian_blur: Gaussian filter σ = c (truncated at 4σ, edge-replicated border);
- defocus_blur: correlation with an anti-aliased disk of radius r (:func:`._ops.disk_kernel`);
- motion_blur: Gaussian-weighted sum of 2r+1 copies shifted along a random angle θ ~ U(−45°, 45°);
- zoom_blur: mean of the image and its centre zooms by each factor in the severity's list;
- glass_blur: Gaussian blur, quantise to 8 bits, ``iterations`` rounds of local pixel shuffling within ±d, blur.

Glass blur is the reference algorithm, run in parallel: ImageNet-C visits interior pixels one by one in a Python
loop (≈1 s per 224 px image) and copies x[p + o_p] into x[p] (its "swap" of numpy views only copies); here the
copy chains of one sweep are resolved at once by pointer doubling (:func:`_sweep_sources`), which gives exactly
the sequential result for the same offsets — only the random numbers differ (per-sample seeded instead of numpy's
global generator, so glass blur becomes reproducible).
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import register
from . import _ops
from ._corruption_base import Corruption
from ._sampling import normal_like, poisson, salt_and_pepper, uniform_like, uniform_pair_like


@register("perturbation", "gaussian_noise")
class GaussianNoise(Corruption):
    """Additive Gaussian noise, σ = 0.08 … 0.38 at 224 px."""

    name = "gaussian_noise"
    family = "noise"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return images + constants["sigma"] * normal_like(seeds, images, self.name)


@register("perturbation", "shot_noise")
class ShotNoise(Corruption):
    """Poisson (photon) noise with ``photons`` = 60 … 3 expected counts at full intensity."""

    name = "shot_noise"
    family = "noise"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        photons = float(constants["photons"])
        return poisson(images, photons, seeds, self.name) / photons


@register("perturbation", "impulse_noise")
class ImpulseNoise(Corruption):
    """Salt-and-pepper noise on a fraction ``amount`` of the values (each channel independently)."""

    name = "impulse_noise"
    family = "noise"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return salt_and_pepper(images, constants["amount"], seeds, self.name)


@register("perturbation", "speckle_noise")
class SpeckleNoise(Corruption):
    """Multiplicative Gaussian noise x·(1 + σε)."""

    name = "speckle_noise"
    family = "noise"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return images + images * constants["sigma"] * normal_like(seeds, images, self.name)


@register("perturbation", "gaussian_blur")
class GaussianBlur(Corruption):
    """Gaussian blur (scikit-image ``filters.gaussian``: truncate 4σ, edge-replicated border)."""

    name = "gaussian_blur"
    family = "blur"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return _ops.gaussian_blur(images, constants["sigma"])


@register("perturbation", "defocus_blur")
class DefocusBlur(Corruption):
    """Defocus: correlation with an anti-aliased disk (OpenCV ``filter2D``, border REFLECT_101)."""

    name = "defocus_blur"
    family = "blur"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        kernel = _ops.disk_kernel(constants["radius"], constants["alias_blur"])
        return _ops.filter2d(images, kernel, "mirror")


@register("perturbation", "motion_blur")
class MotionBlur(Corruption):
    """Motion blur along a random direction θ ~ U(−45°, 45°) per image."""

    name = "motion_blur"
    family = "blur"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        angles = uniform_like(seeds, seeds.reshape(-1, 1), "angle").reshape(-1) * 90.0 - 45.0
        return _ops.motion_blur(images, constants["radius"], constants["sigma"], angles)


@register("perturbation", "zoom_blur")
class ZoomBlur(Corruption):
    """Zoom blur: average of the image and centre zooms by 1.00 … 1.30."""

    name = "zoom_blur"
    family = "blur"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        total = images.clone()
        for zoom in constants["zooms"]:
            total += _ops.clipped_zoom(images, zoom)
        return total / (len(constants["zooms"]) + 1)


@register("perturbation", "glass_blur")
class GlassBlur(Corruption):
    """Frosted-glass blur: blur, local pixel shuffling within ±``max_delta``, blur (see module notes)."""

    name = "glass_blur"
    family = "blur"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        sigma, delta = constants["sigma"], constants["max_delta"]
        blurred = _ops.gaussian_blur(images, sigma)
        out = torch.floor(blurred.clamp(0, 1) * 255.0) / 255.0
        count, channels, height, width = out.shape
        plane = torch.empty(count, height, width, device=out.device)
        for iteration in range(constants["iterations"]):
            draws = uniform_pair_like(seeds, plane, "glass", iteration)
            dy, dx = (torch.floor(u * (2 * delta)).long() - delta for u in draws)  # [−d, d − 1] like randint(−d, d)
            source = _sweep_sources(dy, dx, delta).unsqueeze(1).expand(-1, channels, -1)
            out = out.reshape(count, channels, -1).gather(2, source).reshape(out.shape)
        return _ops.gaussian_blur(out, sigma)


def _sweep_sources(dy: torch.Tensor, dx: torch.Tensor, delta: int) -> torch.Tensor:
    """For one sweep of the reference's glass-blur loop, the flat index of the pixel whose value each pixel ends
    with (N×H·W).

    The reference visits interior pixels p (d < h ≤ H − d, d < w ≤ W − d) from bottom-right to top-left and sets
    x[p] ← x[p + o_p]. (Its "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` assigns numpy views, so it only
    copies.) If p + o_p is an interior pixel visited earlier — later in raster order — it already holds its new
    value, so values flow along chains p → p + o_p → … until a pixel not yet visited; chains are resolved in
    parallel by pointer doubling, which gives exactly the sequential result for the same offsets.
    """
    count, height, width = dy.shape
    device = dy.device
    rows = torch.arange(height, device=device).reshape(1, -1, 1)
    cols = torch.arange(width, device=device).reshape(1, 1, -1)

    def interior(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (r > delta) & (r <= height - delta) & (c > delta) & (c <= width - delta)

    inside = interior(rows, cols).expand(count, -1, -1)
    target_rows, target_cols = rows + dy, cols + dx
    here = (rows * width + cols).expand(count, -1, -1)
    target = (target_rows * width + target_cols).clamp(0, height * width - 1)
    linked = inside & interior(target_rows, target_cols) & (target > here)
    base = torch.where(inside, target, here).reshape(count, -1)
    jump = torch.where(linked, target, here).reshape(count, -1)
    while True:
        jumped = jump.gather(1, jump)
        if torch.equal(jumped, jump):
            break
        jump = jumped
    return base.gather(1, jump)


__all__ = ["DefocusBlur", "GaussianBlur", "GaussianNoise", "GlassBlur", "ImpulseNoise", "MotionBlur", "ShotNoise",
           "SpeckleNoise", "ZoomBlur"]
