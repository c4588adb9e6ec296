"""Datasets: the procedural "shapes" set (with ground-truth masks), scikit-image's sample photos, and the user's
own image folders or tensors. Every loader returns an :class:`ImageSet` (float32 N×C×H×W in [0, 1] + labels)."""

from .._optional import import_submodules
from .base import ImageSet

import_submodules(__name__, ("shapes", "skimage_samples", "folders", "class_map"))

from .class_map import apply_class_map  # noqa: E402
from .folders import from_tensors, load_image_folder  # noqa: E402
from .shapes import SHAPE_CLASSES, make_shapes, render_shape  # noqa: E402

__all__ = ["SHAPE_CLASSES", "ImageSet", "apply_class_map", "from_tensors", "load_image_folder", "make_shapes", "render_shape"]
