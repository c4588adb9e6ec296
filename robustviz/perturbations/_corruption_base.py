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

Severity scales. The published constants do not always make a corruption worse from one severity to the next
(mean SSIM to the clean image rises at e.g. glass blur 3→4 at 224 px, or all along CIFAR-10-C's elastic
transform). ``severity_scale="published"`` (the default) keeps them, for comparison with ImageNet-C / CIFAR-10-C
results; ``severity_scale="monotone"`` swaps in :data:`MONOTONE` — per reference table, the few levels that are
reordered or replaced (every other level is the published one) so that mean SSIM falls by a clear margin at each
step. The overrides go through the same size rule (spatial constants scaled), and were checked at 32 and 64 px
(CIFAR table) and 224 px (ImageNet table); ``benchmarks/severity_calibration.py`` reproduces the numbers.
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

SEVERITY_SCALES = ("published", "monotone")


def _level(table: str, name: str, level: int, **changes: Any) -> dict[str, Any]:
    """Published level ``level`` of ``name`` in ``table`` with some constants changed (for :data:`MONOTONE`)."""
    row = dict((IMAGENET_C if table == "imagenet" else CIFAR_10_C)[name][level - 1])
    unknown = set(changes) - set(row)
    if unknown:
        raise KeyError(f"{name} has no constants {sorted(unknown)}")
    row.update(changes)
    return row


#: ``severity_scale="monotone"``: per reference table and corruption, the levels that differ from the published table
#: (a published level moved to another severity, or one with a single constant changed). Levels not listed are the
#: published ones. Why each entry: mean SSIM to clean on the calibration photos (benchmarks/severity_calibration.py)
#: does not fall by ≥ 0.01 at that step with the published constants.
MONOTONE: dict[str, dict[str, dict[int, dict[str, Any]]]] = {
    "imagenet": {
        # published 3 (σ 1, δ 2, 3 sweeps) is milder than 4: drop it, shift 4, 5 down, add 5 with a third sweep
        "glass_blur": {3: _level("imagenet", "glass_blur", 4), 4: _level("imagenet", "glass_blur", 5),
                       5: _level("imagenet", "glass_blur", 5, iterations=3)},
        # published 3–5 average zooms 0.02/0.03 apart (fewer, so less blur than 2): use 0.01 steps throughout
        "zoom_blur": {3: {"zooms": (1, 1.21, 0.01)}, 4: {"zooms": (1, 1.26, 0.01)}, 5: {"zooms": (1, 1.31, 0.01)}},
        # published 3 is milder than 2 (swap them); published 4 and 5 are milder than 2 on flat images: 4 and 5
        # are published 2 with more flakes (loc 0.2 → 0.25, 0.3)
        "snow": {2: _level("imagenet", "snow", 3), 3: _level("imagenet", "snow", 2),
                 4: _level("imagenet", "snow", 2, loc=0.25), 5: _level("imagenet", "snow", 2, loc=0.3)},
        # 3 → 4 only lowers the image weight 0.7 → 0.65 (a near-tie): frost weight 0.7 → 0.725 too
        "frost": {4: _level("imagenet", "frost", 4, frost_weight=0.725)},
        # mud 4 is milder than water 3: more mud (loc, scale halfway to 5's)
        "spatter": {4: _level("imagenet", "spatter", 4, loc=0.66, scale=0.35)},
        # desaturation (1, 2) vs saturation (3–5) ranks differently on drab and colourful images: saturation only,
        # ×1.5, ×2 (published 3), ×3, then published 4, 5
        "saturate": {1: _level("imagenet", "saturate", 3, scale=1.5), 2: _level("imagenet", "saturate", 3),
                     3: _level("imagenet", "saturate", 3, scale=3)},
    },
    "cifar": {
        # larger σ hides the shuffling at 32–64 px: order by damage 3, 1, 5, 4 (kept), then 5 with a third sweep
        "glass_blur": {1: _level("cifar", "glass_blur", 3), 2: _level("cifar", "glass_blur", 1),
                       3: _level("cifar", "glass_blur", 5),
                       5: _level("cifar", "glass_blur", 5, iterations=3)},
        # 3 and 4 share σ 2 (the radius only bounds the kernel): identical images; σ 2.25 for 4
        "motion_blur": {4: _level("cifar", "motion_blur", 4, sigma=2.25)},
        # 5's smaller flakes tie with 4: blend 0.8 → 0.75
        "snow": {5: _level("cifar", "snow", 5, blend=0.75)},
        # 3 → 4 only lowers the image weight 0.9 → 0.85: frost weight 0.4 → 0.43 too
        "frost": {4: _level("cifar", "frost", 4, frost_weight=0.43)},
        # the affine jitter shrinks with severity, so damage falls from 1 to 5: reversed
        "elastic_transform": {k: _level("cifar", "elastic_transform", 6 - k) for k in (1, 2, 4, 5)},
        # mud (4, 5) is milder than water 3 (and near-invisible at 64 px, as is 2 there): water only — 1, then 3
        # with the ripple gain 0.3, 0.5 (published 3), 0.7, 1.0
        "spatter": {2: _level("cifar", "spatter", 3, intensity=0.3), 4: _level("cifar", "spatter", 3, intensity=0.7),
                    5: _level("cifar", "spatter", 3, intensity=1.0)},
        # as for ImageNet: saturation only, ×1.25, ×1.5 (published 3), ×2, then published 4, 5
        "saturate": {1: _level("cifar", "saturate", 3, scale=1.25), 2: _level("cifar", "saturate", 3),
                     3: _level("cifar", "saturate", 3, scale=2)},
        # factors 0.9 → 0.85 can alias to no change on flat images: 0.8, 0.7, 0.6 for 3–5 (1, 2 kept)
        "pixelate": {3: _level("cifar", "pixelate", 3, factor=0.8), 4: _level("cifar", "pixelate", 4, factor=0.7),
                     5: _level("cifar", "pixelate", 5, factor=0.6)},
    },
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


def check_severity_scale(severity_scale: str) -> str:
    """Validate the ``severity_scale`` choice (``"published"`` or ``"monotone"``)."""
    if not isinstance(severity_scale, str) or severity_scale not in SEVERITY_SCALES:
        raise InputError(f"severity_scale must be 'published' (the ImageNet-C / CIFAR-10-C constants, default) or "
                         f"'monotone' (robustviz's scale whose mean SSIM to clean falls at every step), "
                         f"got {severity_scale!r}")
    return severity_scale


def severity_constants(name: str, severity: int, height: int, width: int, table: str = "auto",
                       severity_scale: str = "published") -> dict[str, Any]:
    """The constants corruption ``name`` uses at ``severity`` (1..5) on ``height×width`` images (rule above);
    ``severity_scale="monotone"`` applies the :data:`MONOTONE` overrides of the chosen table."""
    if name not in IMAGENET_C:
        raise InputError(f"unknown corruption {name!r}; choose one of {', '.join(sorted(IMAGENET_C))}")
    if severity not in (1, 2, 3, 4, 5):
        raise InputError(f"severity must be 1..5, got {severity!r}")
    check_severity_scale(severity_scale)
    chosen, scale = reference_table(height, width, table)
    override = MONOTONE[chosen].get(name, {}).get(severity) if severity_scale == "monotone" else None
    constants = dict(override if override is not None
                     else (CIFAR_10_C if chosen == "cifar" else IMAGENET_C)[name][severity - 1])
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
    severity_scale:
        ``"published"`` (default: the ImageNet-C / CIFAR-10-C constants, comparable with published results, not
        always monotonic) or ``"monotone"`` (robustviz's scale, :data:`MONOTONE`: mean SSIM to the clean image
        falls at every step). (Not to be confused with :attr:`severities`, the tuple of valid levels.)

    RGB and greyscale images are accepted; greyscale ones are corrupted as grey RGB and converted back with
    ITU-R 601 luma (as ``imagecorruptions`` does for L-mode images).
    """

    family: ClassVar[str] = ""

    def __init__(self, table: str = "auto", severity_scale: str = "published"):
        reference_table(IMAGENET_SIZE, IMAGENET_SIZE, table)  # validates the name
        self.table = table
        self.severity_scale = check_severity_scale(severity_scale)

    def constants(self, severity: int, height: int, width: int) -> dict[str, Any]:
        """The constants used for ``severity`` on ``height×width`` images."""
        return severity_constants(self.name, severity, height, width, self.table, self.severity_scale)

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
        return f"{type(self).__name__}(table={self.table!r}, severity_scale={self.severity_scale!r})"


__all__ = ["BENCHMARK_CORRUPTIONS", "CIFAR_10_C", "CIFAR_LIMIT", "Corruption", "EXTRA_CORRUPTIONS", "IMAGENET_C",
           "MONOTONE", "SEVERITY_SCALES", "SPATIAL", "check_severity_scale", "reference_table", "severity_constants"]
