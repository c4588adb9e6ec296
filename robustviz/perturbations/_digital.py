"""ImageNet-C digital corruptions: contrast, elastic transform, pixelate, JPEG (+ the extra saturate).

Formulas (x in [0, 1], constants c from :mod:`._corruption_base`, results clipped to [0, 1]):

- contrast: (x − μ)·c + μ with μ the per-channel mean of the image;
- elastic_transform: optional random affine warp (CIFAR-10-C: the three points (c ± s) jittered by U(−a, a),
  border REFLECT_101), then displacement fields dx, dy = α·G_σ ∗ U(−A, A) (Gaussian truncated at 3σ, half-sample
  symmetric border) and bilinear resampling at (y + dy, x + dx) with a half-sample symmetric border;
- pixelate: Pillow BOX downsampling by ``factor`` then NEAREST (ImageNet-C) or BOX (CIFAR-10-C) upsampling;
- jpeg_compression: libjpeg-style round trip at quality q (:mod:`._jpeg`);
- saturate: HSV saturation S ← clip(S·a + b).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from ..registry import register
from . import _ops
from ._corruption_base import Corruption
from ._jpeg import jpeg_compress
from ._sampling import uniform_like


@register("perturbation", "contrast")
class Contrast(Corruption):
    """Contrast reduction towards the per-channel mean."""

    name = "contrast"
    family = "digital"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        means = images.mean(dim=(2, 3), keepdim=True)
        return (images - means) * constants["factor"] + means


@register("perturbation", "saturate")
class Saturate(Corruption):
    """Saturation scaled (and offset) in HSV."""

    name = "saturate"
    family = "digital"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return _ops.hsv_saturation_affine(images, constants["scale"], constants["offset"])


@register("perturbation", "jpeg_compression")
class JpegCompression(Corruption):
    """JPEG compression at quality 25 … 7 (4:2:0, IJG tables)."""

    name = "jpeg_compression"
    family = "digital"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return jpeg_compress(images, constants["quality"])


@lru_cache(maxsize=64)
def _pixelate_taps(size: int, factor: float, upsample: str):
    small = max(1, int(size * factor))
    down = _ops.pil_box_taps(size, small)
    up = _ops.pil_box_taps(small, size) if upsample == "box" else _ops.pil_nearest_taps(small, size)
    return down, up


@register("perturbation", "pixelate")
class Pixelate(Corruption):
    """Pixelation: box-downsample by 0.6 … 0.25 and enlarge back."""

    name = "pixelate"
    family = "digital"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        height, width = images.shape[-2:]
        (row_down, row_up) = _pixelate_taps(height, constants["factor"], constants["upsample"])
        (col_down, col_up) = _pixelate_taps(width, constants["factor"], constants["upsample"])
        # Pillow resamples horizontally first, storing 8-bit values between passes; we keep floats.
        small = _ops.resample_axis(_ops.resample_axis(images, -1, *col_down), -2, *row_down)
        return _ops.resample_axis(_ops.resample_axis(small, -1, *col_up), -2, *row_up)


def _affine_grids(seeds: torch.Tensor, height: int, width: int, jitter: float, device) -> torch.Tensor:
    """Sampling grids (align_corners=True convention) of CIFAR-10-C's random affine warp, one per image.

    OpenCV's ``getAffineTransform`` maps three source points onto three jittered ones; ``warpAffine`` samples the
    input at the inverse map. Solved in closed form, elementwise (no batched linear algebra whose rounding could
    depend on the batch size).
    """
    centre_r, centre_c, side = float(height // 2), float(width // 2), float(min(height, width) // 3)
    # make_cifar_c.py builds the points in (row, col) order and hands them to OpenCV as (x, y); we do the same.
    source = torch.tensor([[centre_r + side, centre_c + side], [centre_r + side, centre_c - side],
                           [centre_r - side, centre_c - side]], dtype=torch.float64)
    noise = uniform_like(seeds, torch.empty(seeds.shape[0], 3, 2), "affine").to(torch.float64) * 2 - 1
    target = source.unsqueeze(0) + jitter * noise  # N×3×2
    # inverse map: source = A·target + b, from the three correspondences (Cramer's rule on [t_x, t_y, 1])
    tx, ty = target[..., 0], target[..., 1]
    det = tx[:, 0] * (ty[:, 1] - ty[:, 2]) - ty[:, 0] * (tx[:, 1] - tx[:, 2]) + (tx[:, 1] * ty[:, 2] - tx[:, 2] * ty[:, 1])

    def solve(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = (values[0] * (ty[:, 1] - ty[:, 2]) - ty[:, 0] * (values[1] - values[2])
             + (values[1] * ty[:, 2] - values[2] * ty[:, 1])) / det
        b = (tx[:, 0] * (values[1] - values[2]) - values[0] * (tx[:, 1] - tx[:, 2])
             + (tx[:, 1] * values[2] - tx[:, 2] * values[1])) / det
        c = (tx[:, 0] * (ty[:, 1] * values[2] - ty[:, 2] * values[1]) - ty[:, 0] * (tx[:, 1] * values[2]
             - tx[:, 2] * values[1]) + values[0] * (tx[:, 1] * ty[:, 2] - tx[:, 2] * ty[:, 1])) / det
        return a.reshape(-1, 1, 1), b.reshape(-1, 1, 1), c.reshape(-1, 1, 1)

    ys = torch.arange(height, dtype=torch.float64).reshape(1, -1, 1)
    xs = torch.arange(width, dtype=torch.float64).reshape(1, 1, -1)
    grids = []
    for axis, size in ((0, width), (1, height)):
        a, b, c = solve(source[:, axis])
        grids.append((a * xs + b * ys + c) * (2.0 / max(size - 1, 1)) - 1.0)
    return torch.stack(grids, dim=-1).to(torch.float32).to(device)


@register("perturbation", "elastic_transform")
class ElasticTransform(Corruption):
    """Elastic deformation: smooth random displacement fields (plus a random affine warp on the CIFAR table)."""

    name = "elastic_transform"
    family = "digital"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        count, _, height, width = images.shape
        if constants["affine"] > 0:
            grid = _affine_grids(seeds, height, width, constants["affine"], images.device)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        plane = images[:, :1]
        fields = []
        for axis in ("dx", "dy"):
            field = (uniform_like(seeds, plane, "elastic", axis) * 2.0 - 1.0) * constants["amplitude"]
            if constants["sigma"] > 0:
                field = _ops.gaussian_blur(field, constants["sigma"], mode="reflect", truncate=3.0)
            fields.append(field[:, 0] * constants["alpha"])
        dx, dy = fields
        ys = torch.arange(height, device=images.device, dtype=torch.float32).reshape(1, -1, 1)
        xs = torch.arange(width, device=images.device, dtype=torch.float32).reshape(1, 1, -1)
        # align_corners=False: normalised = (2·pixel + 1)/size − 1; "reflection" is then half-sample symmetric
        grid = torch.stack([(2.0 * (xs + dx) + 1.0) / width - 1.0, (2.0 * (ys + dy) + 1.0) / height - 1.0], dim=-1)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


__all__ = ["Contrast", "ElasticTransform", "JpegCompression", "Pixelate", "Saturate"]
