"""Severity tables of the ImageNet-C / CIFAR-10-C corruptions, the rule for other image sizes, and the base class.

Two published tables exist: ImageNet-C at 224 px (as in the ``imagecorruptions`` 1.1.2 package, the reference
implementation) and CIFAR-10-C at 32 px (Hendrycks' ``make_cifar_c.py``). For any other size we apply one rule:

1. the image *size* is ``min(H, W)``;
2. the reference table is the one whose size is nearer on a log scale — CIFAR-10-C (32 px) when
   ``size ≤ √(32·224) ≈ 84.7``, ImageNet-C (224 px) above;
3. *spatial* constants (blur σ and radii, displacement amplitudes, shuffle distances, flake sizes — marked per
   corruption in :data:`SPATIAL`) are multiplied by ``size / reference_size``; photometric constants (noise levels,
   blend weights, thresholds, zoom factors, JPEG quality, pixelation factor) are kept.

So 224 px and 32 px reproduce the published constants exactly, 64 px uses the CIFAR table with spatial constants
doubled, 448 px the ImageNet table doubled. :func:`severity_constants` exposes the result (and is what tests check).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from ..validation import InputError
from .base import Perturbation

IMAGENET_SIZE = 224
CIFAR_SIZE = 32
#: Sizes up to this use the CIFAR-10-C table (the geometric mean of 32 and 224).
CIFAR_LIMIT = math.sqrt(IMAGENET_SIZE * CIFAR_SIZE)


def _rows(keys: tuple[str, ...], *values: tuple) -> list[dict[str, Any]]:
    return [dict(zip(keys, row)) for row in values]


_SNOW_KEYS = ("loc", "scale", "zoom", "threshold", "radius", "sigma", "blend")
_SPATTER_KEYS = ("loc", "scale", "sigma", "threshold", "intensity", "mud")

IMAGENET_C: dict[str, list[dict[str, Any]]] = {
    "gaussian_noise": _rows(("sigma",), (.08,), (.12,), (.18,), (.26,), (.38,)),
    "shot_noise": _rows(("photons",), (60,), (25,), (12,), (5,), (3,)),
    "impulse_noise": _rows(("amount",), (.03,), (.06,), (.09,), (.17,), (.27,)),
    "speckle_noise": _rows(("sigma",), (.15,), (.2,), (.35,), (.45,), (.6,)),
    "gaussian_blur": _rows(("sigma",), (1,), (2,), (3,), (4,), (6,)),
    "glass_blur": _rows(("sigma", "max_delta", "iterations"),
                        (0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": _rows(("radius", "alias_blur"), (3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "motion_blur": _rows(("radius", "sigma"), (10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": _rows(("zooms",), ((1, 1.11, 0.01),), ((1, 1.16, 0.01),), ((1, 1.21, 0.02),),
                       ((1, 1.26, 0.02),), ((1, 1.31, 0.03),)),
    "snow": _rows(_SNOW_KEYS, (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                  (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                  (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "frost": _rows(("image_weight", "frost_weight"), (1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": _rows(("strength", "decay"), (1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)),
    "brightness": _rows(("shift",), (.1,), (.2,), (.3,), (.4,), (.5,)),
    "contrast": _rows(("factor",), (.4,), (.3,), (.2,), (.1,), (.05,)),
    # imagecorruptions 1.1.2: dx = gaussian(U(−a, a), σ) · α with a = 0.005·H, σ = 0.01·H, no affine part.
    "elastic_transform": _rows(("alpha", "sigma", "amplitude", "affine"),
                               *[(250 * k, 2.24, 1.12, 0.0) for k in (0.05, 0.065, 0.085, 0.1, 0.12)]),
    "pixelate": _rows(("factor", "upsample"), *[(f, "nearest") for f in (0.6, 0.5, 0.4, 0.3, 0.25)]),
    "jpeg_compression": _rows(("quality",), (25,), (18,), (15,), (10,), (7,)),
    "spatter": _rows(_SPATTER_KEYS, (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
                     (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)),
    "saturate": _rows(("scale", "offset"), (0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
}

CIFAR_10_C: dict[str, list[dict[str, Any]]] = {
    "gaussian_noise": _rows(("sigma",), (0.04,), (0.06,), (.08,), (.09,), (.10,)),
    "shot_noise": _rows(("photons",), (500,), (250,), (100,), (75,), (50,)),
    "impulse_noise": _rows(("amount",), (.01,), (.02,), (.03,), (.05,), (.07,)),
    "speckle_noise": _rows(("sigma",), (.06,), (.1,), (.12,), (.16,), (.2,)),
    "gaussian_blur": _rows(("sigma",), (.4,), (.6,), (0.7,), (.8,), (1,)),
    "glass_blur": _rows(("sigma", "max_delta", "iterations"),
                        (0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "defocus_blur": _rows(("radius", "alias_blur"), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "motion_blur": _rows(("radius", "sigma"), (6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": _rows(("zooms",), ((1, 1.06, 0.01),), ((1, 1.11, 0.01),), ((1, 1.16, 0.01),),
                       ((1, 1.21, 0.01),), ((1, 1.26, 0.01),)),
    "snow": _rows(_SNOW_KEYS, (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                  (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                  (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": _rows(("image_weight", "frost_weight"), (1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": _rows(("strength", "decay"), (.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": _rows(("shift",), (.05,), (.1,), (.15,), (.2,), (.3,)),
    "contrast": _rows(("factor",), (.75,), (.5,), (.4,), (.3,), (0.15,)),
    # make_cifar_c.py: random affine (corner jitter c[2]) then dx = gaussian(U(−1, 1), c[1]) · c[0].
    "elastic_transform": _rows(("alpha", "sigma", "amplitude", "affine"),
                               *[(32 * a, 32 * s, 1.0, 32 * f) for a, s, f in
                                 ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                                  (0.1, 0.03, 0.03))]),
    "pixelate": _rows(("factor", "upsample"), *[(f, "box") for f in (0.95, 0.9, 0.85, 0.75, 0.65)]),
    "jpeg_compression": _rows(("quality",), (80,), (65,), (58,), (50,), (40,)),
    "spatter": _rows(_SPATTER_KEYS, (0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                     (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
    "saturate": _rows(("scale", "offset"), (0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}

#: Constants measured in pixels, scaled with the image size (see the module docstring). Spatter's "intensity" is
#: the mud blur σ when ``mud == 1`` (and a colour gain otherwise), so it is scaled only in that case.
SPATIAL: dict[str, frozenset[str]] = {
    "gaussian_blur": frozenset({"sigma"}),
    "glass_blur": frozenset({"sigma", "max_delta"}),
    "defocus_blur": frozenset({"radius", "alias_blur"}),
    "motion_blur": frozenset({"radius", "sigma"}),
    "snow": frozenset({"zoom", "radius", "sigma"}),
    "elastic_transform": frozenset({"alpha", "sigma", "amplitude", "affine"}),
    "spatter": frozenset({"sigma"}),
}

BENCHMARK_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
                         "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
                         "elastic_transform", "pixelate", "jpeg_compression")
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


def reference_table(height: int, width: int, table: str = "auto") -> tuple[str, float]:
    """Which table a ``height×width`` image uses (``"imagenet"``/``"cifar"``) and the spatial scale factor."""
    size = min(int(height), int(width))
    if table == "auto":
        table = "cifar" if size <= CIFAR_LIMIT else "imagenet"
    if table not in ("imagenet", "cifar"):
        raise InputError(f"table must be 'auto', 'imagenet' or 'cifar', got {table!r}")
    return table, size / (CIFAR_SIZE if table == "cifar" else IMAGENET_SIZE)


def severity_constants(name: str, severity: int, height: int, width: int, table: str = "auto") -> dict[str, Any]:
    """The constants corruption ``name`` uses at ``severity`` (1..5) on ``height×width`` images (rule above)."""
    if name not in IMAGENET_C:
        raise InputError(f"unknown corruption {name!r}; choose one of {', '.join(sorted(IMAGENET_C))}")
    if severity not in (1, 2, 3, 4, 5):
        raise InputError(f"severity must be 1..5, got {severity!r}")
    chosen, scale = reference_table(height, width, table)
    constants = dict((CIFAR_10_C if chosen == "cifar" else IMAGENET_C)[name][severity - 1])
    spatial = set(SPATIAL.get(name, ()))
    if name == "spatter" and constants["mud"] == 1:
        spatial.add("intensity")
    for key in spatial:
        constants[key] = constants[key] * scale
    if name == "glass_blur":
        constants["max_delta"] = max(1, int(round(constants["max_delta"])))
    if name == "zoom_blur":
        constants["zooms"] = tuple(np.arange(*constants["zooms"]).tolist())
    constants["reference"], constants["spatial_scale"] = chosen, scale
    return constants


class Corruption(Perturbation):
    """An ImageNet-C corruption: looks its constants up with :func:`severity_constants` and applies ``corrupt``.

    Parameters
    ----------
    table:
        ``"auto"`` (default: the size rule of this module), ``"imagenet"`` or ``"cifar"`` to force a table (its
        spatial constants are still scaled to the image size).

    RGB and greyscale images are accepted; greyscale ones are corrupted as grey RGB and converted back with
    ITU-R 601 luma (as ``imagecorruptions`` does for L-mode images).
    """

    family: ClassVar[str] = ""

    def __init__(self, table: str = "auto"):
        reference_table(IMAGENET_SIZE, IMAGENET_SIZE, table)  # validates the name
        self.table = table

    def constants(self, severity: int, height: int, width: int) -> dict[str, Any]:
        """The constants used for ``severity`` on ``height×width`` images."""
        return severity_constants(self.name, severity, height, width, self.table)

    def apply(self, images: torch.Tensor, severity: int, *, seeds: torch.Tensor,
              model: torch.nn.Module | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        channels = images.shape[1]
        if channels not in (1, 3):
            raise InputError(f"{self.name} corrupts RGB or greyscale images, got {channels} channels in shape "
                             f"{tuple(images.shape)}; select 3 channels first (images[:, :3])")
        rgb = images.expand(-1, 3, -1, -1) if channels == 1 else images
        constants = self.constants(severity, images.shape[-2], images.shape[-1])
        out = self.corrupt(rgb.to(torch.float32), seeds.to(torch.int64), constants).clamp(0.0, 1.0)
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=out.device).reshape(1, 3, 1, 1)
            out = (out * weights).sum(dim=1, keepdim=True)
        return out.to(images.dtype)

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        """Corrupt RGB float32 ``images`` with the given constants (one seed per image)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self.table!r})"


__all__ = ["BENCHMARK_CORRUPTIONS", "CIFAR_10_C", "CIFAR_LIMIT", "Corruption", "EXTRA_CORRUPTIONS", "IMAGENET_C",
           "SPATIAL", "reference_table", "severity_constants"]
