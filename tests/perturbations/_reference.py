"""Test-only access to the reference ImageNet-C implementation (``imagecorruptions`` 1.1.2).

imagecorruptions 1.1.2 predates numpy 2, scikit-image 0.26 and setuptools without ``pkg_resources``; the shims
below make it importable *inside the test process only* (never in the package):

- ``np.float_`` (removed in numpy 2) → ``np.float64``;
- ``skimage.filters.gaussian(multichannel=True)`` → ``channel_axis=-1`` (the keyword was removed);
- ``pkg_resources.resource_filename`` → a stand-in resolving paths next to the module (its frost images ship
  inside the package).

``load_reference()`` returns the ``imagecorruptions`` module or calls ``pytest.skip`` when it is not installed.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np


def _install_shims() -> None:
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")

            def resource_filename(package: str, resource: str) -> str:
                module = sys.modules[package]
                return os.path.join(os.path.dirname(module.__file__), resource)

            shim.resource_filename = resource_filename  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = shim
    import skimage.filters

    if not getattr(skimage.filters.gaussian, "_robustviz_shim", False):
        original = skimage.filters.gaussian

        def gaussian(image, sigma=1.0, *args, multichannel=None, **kwargs):
            if multichannel:
                kwargs.setdefault("channel_axis", -1)
            return original(image, sigma, *args, **kwargs)

        gaussian._robustviz_shim = True  # type: ignore[attr-defined]
        skimage.filters.gaussian = gaussian


def load_reference():
    """The shimmed ``imagecorruptions`` module (skips the calling test when it is missing)."""
    import pytest

    pytest.importorskip("cv2")
    _install_shims()
    module = pytest.importorskip("imagecorruptions")
    # corruptions.py did ``from skimage.filters import gaussian`` at import time: patch its global too.
    import skimage.filters

    module.corruptions.gaussian = skimage.filters.gaussian
    return module


def load_reference_unchecked():
    """Like :func:`load_reference` without pytest (for benchmarks); raises ImportError when missing."""
    _install_shims()
    import imagecorruptions
    import skimage.filters

    imagecorruptions.corruptions.gaussian = skimage.filters.gaussian
    return imagecorruptions


def reference_float(module, name: str, image_uint8: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """Run reference corruption ``name`` on one H×W×3 uint8 image; float H×W×3 in [0, 1] (no uint8 truncation)."""
    from PIL import Image

    np.random.seed(seed)
    out = module.corruptions.__dict__[name](Image.fromarray(image_uint8), severity)
    return np.clip(np.asarray(out, dtype=np.float64) / 255.0, 0.0, 1.0)


def sample_images(size: int = 224, count: int = 3) -> np.ndarray:
    """``count`` scikit-image sample photos, centre-cropped square and resized to ``size``: N×H×W×3 uint8."""
    from PIL import Image
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
             "retina", "colorwheel", "motorcycle_left", "cat", "logo", "page", "camera", "moon", "horse", "coins"]
    images = []
    for name in names:
        try:
            image = getattr(data, name)()
        except Exception:  # optional downloads (pooch) may be missing offline
            continue
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        image = image[..., :3]
        if image.dtype != np.uint8:
            image = (np.clip(image.astype(np.float64) / image.max(), 0, 1) * 255).astype(np.uint8)
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        crop = Image.fromarray(image[top:top + side, left:left + side])
        images.append(np.asarray(crop.resize((size, size), Image.BICUBIC)))
        if len(images) == count:
            break
    return np.stack(images)
