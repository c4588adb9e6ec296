"""Natural photos that scikit-image ships offline, as a small "real image" dataset.

The photos are resized (bilinear, antialiased) to a square ``image_size``; grey photos are repeated to three
channels. Each photo is its own class (label = its index in :data:`SKIMAGE_SAMPLE_NAMES`), which suits explanation
studies that attribute to the model's own prediction rather than to a meaningful label.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import register
from ..validation import InputError
from .base import ImageSet

# Photos bundled with scikit-image (no download needed): colour first, then grey ones.
SKIMAGE_SAMPLE_NAMES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                                         "hubble_deep_field", "camera", "coins", "moon", "clock", "brick", "grass",
                                         "gravel")


def load_skimage_photo(name: str, image_size: int = 224) -> torch.Tensor:
    """One scikit-image sample photo as float32 ``3×H×W`` in [0, 1], resized to ``image_size`` square."""
    if name not in SKIMAGE_SAMPLE_NAMES:
        raise InputError(f"unknown scikit-image sample {name!r}; choose one of {', '.join(SKIMAGE_SAMPLE_NAMES)}")
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    array = array[:, :, :3]
    if array.dtype != np.uint8:
        raise InputError(f"scikit-image sample {name!r} has dtype {array.dtype}, expected uint8")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div(255).unsqueeze(0)
    tensor = F.interpolate(tensor, size=(image_size, image_size), mode="bilinear", align_corners=False,
                           antialias=True)
    return tensor.clamp(0, 1)[0]


@register("dataset", "skimage")
def skimage_samples(n_samples: int | None = None, image_size: int = 224, seed: int = 0,
                    split: str = "test", names: tuple[str, ...] | None = None) -> ImageSet:
    """scikit-image's sample photos; ``n_samples`` repeats the list cyclically (or truncates it) deterministically.

    ``seed`` and ``split`` are accepted for a uniform dataset signature and ignored (the photos are fixed); repeats
    keep distinct sample ids, so their perturbation seeds differ.
    """
    names = tuple(names) if names is not None else SKIMAGE_SAMPLE_NAMES
    if not names:
        raise InputError("names must list at least one scikit-image sample")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise InputError(f"image_size must be an int >= 8, got {image_size!r}")
    count = len(names) if n_samples is None else n_samples
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"n_samples must be a non-negative int, got {n_samples!r}")
    photos = torch.stack([load_skimage_photo(name, image_size) for name in names])
    index = torch.arange(count) % len(names)
    return ImageSet(photos[index], index.clone(), list(names), name="skimage",
                    metadata={"dataset": "skimage", "image_size": image_size})


__all__ = ["SKIMAGE_SAMPLE_NAMES", "load_skimage_photo", "skimage_samples"]
