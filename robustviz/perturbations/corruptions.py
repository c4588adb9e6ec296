"""The 19 ImageNet-C corruptions (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019) as batched, seeded torch perturbations.

15 benchmark corruptions (:data:`BENCHMARK_CORRUPTIONS`) and 4 extras (:data:`EXTRA_CORRUPTIONS`), registered
under their ImageNet-C names (``robustviz.create("perturbation", "glass_blur")``), grouped in ImageNet-C's families
noise / blur / weather / digital. Each runs on the images' device, draws its randomness from the per-sample seeds
(:mod:`robustviz.rng`) and matches the reference implementation ``imagecorruptions`` 1.1.2 — to ≥ 35 dB PSNR for
the deterministic ones, in distribution for the random ones (see docs/perturbations.md for formulas, constants,
the rule for image sizes other than 224 and 32 px, and the deliberate differences: glass blur and frost).
"""

from __future__ import annotations

from ._corruption_base import (BENCHMARK_CORRUPTIONS, CIFAR_10_C, EXTRA_CORRUPTIONS, IMAGENET_C, MONOTONE,
                               SEVERITY_SCALES, Corruption, reference_table, severity_constants)
from ._digital import Contrast, ElasticTransform, JpegCompression, Pixelate, Saturate
from ._noise_blur import (DefocusBlur, GaussianBlur, GaussianNoise, GlassBlur, ImpulseNoise, MotionBlur, ShotNoise,
                          SpeckleNoise, ZoomBlur)
from ._weather import Brightness, Fog, Frost, Snow, Spatter

ALL_CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS

__all__ = [
    "ALL_CORRUPTIONS", "BENCHMARK_CORRUPTIONS", "CIFAR_10_C", "EXTRA_CORRUPTIONS", "IMAGENET_C", "MONOTONE",
    "SEVERITY_SCALES", "Brightness",
    "Contrast", "Corruption", "DefocusBlur", "ElasticTransform", "Fog", "Frost", "GaussianBlur", "GaussianNoise",
    "GlassBlur", "ImpulseNoise", "JpegCompression", "MotionBlur", "Pixelate", "Saturate", "ShotNoise", "Snow",
    "Spatter", "SpeckleNoise", "ZoomBlur", "reference_table", "severity_constants",
]
