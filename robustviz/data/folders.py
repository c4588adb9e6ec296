"""The user's own images: an ImageFolder-style directory tree, or tensors/arrays already in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import register
from ..validation import InputError
from .base import ImageSet

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _read_rgb(path: Path) -> np.ndarray:
    """One image file as uint8 H×W×3 (grey and palette images are converted, alpha is dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"cannot read image file {path}: {error}; remove or replace it") from error


def _resize(images: torch.Tensor, image_size: int | tuple[int, int]) -> torch.Tensor:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def load_image_folder(root: str | Path, image_size: int | tuple[int, int] | None = None) -> ImageSet:
    """Load ``root/<class name>/<image file>`` (torchvision's ImageFolder layout) into an :class:`ImageSet`.

    Classes are the sub-directory names in sorted order (label = position); files are read in sorted order with
    PIL and converted to RGB. Images of different sizes need ``image_size`` (an int for square, or (H, W)); they are
    resized bilinearly with antialiasing.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"image folder {root} does not exist; pass the directory that holds one folder per class")
    if not root.is_dir():
        raise InputError(f"image folder {root} is a file, not a directory of class folders")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not class_dirs:
        raise InputError(f"image folder {root} has no class sub-directories; expected root/<class>/<image>.png")
    arrays, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(path for path in class_dir.iterdir()
                       if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"class folder {class_dir} contains no image files ({', '.join(IMAGE_SUFFIXES)}); "
                             f"add images or remove the folder")
        for path in files:
            arrays.append(_read_rgb(path))
            labels.append(label)
    tensors = [torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0) for array in arrays]
    if image_size is not None:
        tensors = [_resize(tensor, image_size) for tensor in tensors]
    sizes = {tuple(tensor.shape[-2:]) for tensor in tensors}
    if len(sizes) > 1:
        raise InputError(f"images in {root} have different sizes {sorted(sizes)[:5]}; pass image_size=... to "
                         f"resize them to one size")
    return ImageSet(torch.cat(tensors), torch.tensor(labels, dtype=torch.int64), [d.name for d in class_dirs],
                    name=root.name, metadata={"dataset": "folder", "root": str(root)})


def from_tensors(images: torch.Tensor | np.ndarray, labels: Sequence[int] | torch.Tensor | np.ndarray,
                 class_names: Sequence[str] | None = None) -> ImageSet:
    """Wrap in-memory images as an :class:`ImageSet`.

    Accepts uint8 ``N×H×W×C`` (values 0–255, channels last, as numpy/PIL give them) or floating point ``N×C×H×W``
    in [0, 1]. ``class_names`` defaults to ``"0" .. str(max label)``. Everything else is checked by ImageSet
    (finite values in [0, 1], integer labels in range).
    """
    tensor = torch.as_tensor(images) if not isinstance(images, torch.Tensor) else images
    if tensor.dtype == torch.uint8:
        if tensor.ndim != 4 or tensor.shape[-1] not in (1, 3):
            raise InputError(f"uint8 images must be N×H×W×C with 1 or 3 channels last, got shape "
                             f"{tuple(tensor.shape)}")
        tensor = tensor.permute(0, 3, 1, 2).float().div(255)
        if tensor.shape[1] == 1:
            tensor = tensor.expand(-1, 3, -1, -1)
    elif not tensor.is_floating_point():
        raise InputError(f"images must be uint8 N×H×W×C or float N×C×H×W in [0, 1], got dtype {tensor.dtype}")
    elif tensor.ndim == 4 and tensor.shape[1] not in (1, 3):
        layout = " (channels last? use images.permute(0, 3, 1, 2))" if tensor.shape[-1] in (1, 3) else ""
        raise InputError(f"float images must be N×C×H×W with 1 or 3 channels, got shape {tuple(tensor.shape)}"
                         f"{layout}")
    labels_tensor = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if class_names is None:
        if labels_tensor.numel() and (labels_tensor.is_floating_point() or labels_tensor.dtype == torch.bool):
            raise InputError(f"labels must be integer class indices, got dtype {labels_tensor.dtype}")
        count = int(labels_tensor.max()) + 1 if labels_tensor.numel() else 0
        class_names = [str(index) for index in range(count)]
    return ImageSet(tensor.float().contiguous() if tensor.is_floating_point() else tensor, labels_tensor,
                    list(class_names), name="tensors", metadata={"dataset": "tensors"})


@register("dataset", "folder")
def folder_dataset(root: str | Path, n_samples: int | None = None, image_size: int | None = None,
                   seed: int = 0) -> ImageSet:
    """Registry factory: the first ``n_samples`` images of an ImageFolder tree (all when None)."""
    images = load_image_folder(root, image_size=image_size)
    if n_samples is not None:
        if n_samples > len(images):
            raise InputError(f"asked for {n_samples} samples but {root} holds only {len(images)} images")
        images = images.subset(slice(0, n_samples))
    return images


__all__ = ["IMAGE_SUFFIXES", "folder_dataset", "from_tensors", "load_image_folder"]
