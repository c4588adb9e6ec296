"""Noise family for the CAM-robustness study ("noise.*", family ``"noise-study"``).

Five noise models with five severities each, on any number of channels, clipped to [0, 1]:

========================  ==============================  ======================================
name                      formula                         level per severity 1 … 5
========================  ==============================  ======================================
``noise.gaussian``        x + σ·ε, ε ~ N(0, 1)            σ = 0.02, 0.05, 0.10, 0.20, 0.30
``noise.shot``            Poisson(λ·x)/λ                  λ = 200, 100, 50, 20, 10 photons
``noise.impulse``         value → 0 or 1 w.p. p           p = 0.01, 0.02, 0.05, 0.10, 0.20
``noise.speckle``         x + x·σ·ε                       σ = 0.05, 0.10, 0.20, 0.35, 0.50
``noise.uniform``         x + a·u, u ~ U(−1, 1)           a = 0.05, 0.10, 0.20, 0.35, 0.50
========================  ==============================  ======================================

The levels span "barely visible" to "heavily degraded" for 32–224 px images, finer at the low end than the
ImageNet-C noise tables (which start at σ = 0.08) because explanation maps react to much weaker noise than
accuracy does. Pass ``levels=(...)`` (five increasing values) to use other levels.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch

from ..registry import register
from ..validation import InputError
from .base import Perturbation
from ._sampling import normal_like, poisson, salt_and_pepper, uniform_like


class StudyNoise(Perturbation):
    """Base of the study's noise models: one level per severity (``levels``), applied by :meth:`add_noise`."""

    family: ClassVar[str] = "noise-study"
    default_levels: ClassVar[tuple[float, ...]] = ()
    increasing: ClassVar[bool] = True

    def __init__(self, levels: Sequence[float] | None = None):
        levels = tuple(float(v) for v in (levels if levels is not None else self.default_levels))
        if len(levels) != 5 or any(v < 0 for v in levels):
            raise InputError(f"{self.name}: levels must be five non-negative numbers (severities 1..5), got {levels}")
        ordered = all(a < b for a, b in zip(levels, levels[1:])) if self.increasing else \
            all(a > b for a, b in zip(levels, levels[1:]))
        if not ordered:
            trend = "increase" if self.increasing else "decrease"
            raise InputError(f"{self.name}: levels must strictly {trend} with severity, got {levels}")
        self.levels = levels

    def apply(self, images: torch.Tensor, severity: int, *, seeds: torch.Tensor,
              model: torch.nn.Module | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.add_noise(images, self.levels[severity - 1], seeds)

    def add_noise(self, images: torch.Tensor, level: float, seeds: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(levels={self.levels})"


@register("perturbation", "noise.gaussian")
class StudyGaussianNoise(StudyNoise):
    """Additive Gaussian noise."""

    name = "noise.gaussian"
    default_levels = (0.02, 0.05, 0.10, 0.20, 0.30)

    def add_noise(self, images, level, seeds):
        return images + level * normal_like(seeds, images, self.name)


@register("perturbation", "noise.shot")
class StudyShotNoise(StudyNoise):
    """Poisson noise with ``level`` expected photons at full intensity (fewer photons = more noise)."""

    name = "noise.shot"
    default_levels = (200.0, 100.0, 50.0, 20.0, 10.0)
    increasing = False

    def add_noise(self, images, level, seeds):
        return poisson(images, level, seeds, self.name) / level


@register("perturbation", "noise.impulse")
class StudyImpulseNoise(StudyNoise):
    """Salt-and-pepper noise on a fraction ``level`` of the values."""

    name = "noise.impulse"
    default_levels = (0.01, 0.02, 0.05, 0.10, 0.20)

    def add_noise(self, images, level, seeds):
        return salt_and_pepper(images, level, seeds, self.name)


@register("perturbation", "noise.speckle")
class StudySpeckleNoise(StudyNoise):
    """Multiplicative Gaussian noise."""

    name = "noise.speckle"
    default_levels = (0.05, 0.10, 0.20, 0.35, 0.50)

    def add_noise(self, images, level, seeds):
        return images + images * level * normal_like(seeds, images, self.name)


@register("perturbation", "noise.uniform")
class StudyUniformNoise(StudyNoise):
    """Additive uniform noise on [−a, a]."""

    name = "noise.uniform"
    default_levels = (0.05, 0.10, 0.20, 0.35, 0.50)

    def add_noise(self, images, level, seeds):
        return images + level * (uniform_like(seeds, images, self.name) * 2.0 - 1.0)


__all__ = ["StudyGaussianNoise", "StudyImpulseNoise", "StudyNoise", "StudyShotNoise", "StudySpeckleNoise",
           "StudyUniformNoise"]
