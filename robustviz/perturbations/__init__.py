"""Perturbations: ImageNet-C corruptions, noise, spectral bands (I-ASIDE), adversarial, and files on disk."""

from .._optional import import_submodules
from .base import Perturbation

import_submodules(__name__, ("corruptions", "noise", "spectral", "adversarial", "attacks", "files"))

__all__ = ["Perturbation"]
