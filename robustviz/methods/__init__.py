"""Explanation methods: Captum wrappers, the CAM family and RISE."""

from .._optional import import_submodules
from .base import Method

import_submodules(__name__, ("captum_methods", "cam", "fullgrad", "captum_perturbation", "rise"))

__all__ = ["Method"]
