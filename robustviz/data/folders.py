"""The user's own images: an ImageFolder-style directory tree, or tensors/arrays already in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import register
from ..validation import InputError
from .base import ImageSet

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _read_rgb(path: Path, resize: int | tuple[int, int] | None = None,
              crop: int | tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 H×W×3 (grey and palette images are converted, alpha is dropped), resized and
    centre-cropped as torchvision's ``Resize(resize)`` + ``CenterCrop(crop)`` do on PIL images."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if resize is not None:
                image = image.resize(resized_size(image.size, resize), Image.BILINEAR)
            if crop is not None:
                image = image.crop(centre_crop_box(image.size, crop, path))
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"cannot read image file {path}: {error}; remove or replace it") from error


def resized_size(size: tuple[int, int], resize: int | Sequence[int]) -> tuple[int, int]:
    """PIL ``(width, height)`` after torchvision's ``Resize``: an int sets the shorter side (aspect kept, the longer
    side truncated), ``(height, width)`` sets both."""
    width, height = size
    if not isinstance(resize, int):
        target_height, target_width = (int(v) for v in resize)
        return target_width, target_height
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def centre_crop_box(size: tuple[int, int], crop: int | Sequence[int], path: Path | None = None
                    ) -> tuple[int, int, int, int]:
    """PIL crop box ``(left, top, right, bottom)`` of torchvision's ``CenterCrop`` (offsets rounded half to even)."""
    width, height = size
    crop_height, crop_width = (crop, crop) if isinstance(crop, int) else (int(v) for v in crop)
    if crop_height > height or crop_width > width:
        raise InputError(f"image {path or ''} is {height}×{width}, smaller than crop {crop_height}×{crop_width}; "
                         f"resize it first (resize: 256 with crop: 224) or lower crop")
    top, left = int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0))
    return left, top, left + crop_width, top + crop_height


def _resize(images: torch.Tensor, image_size: int | tuple[int, int]) -> torch.Tensor:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def list_image_folder(root: str | Path) -> tuple[list[Path], list[int], list[str]]:
    """Files, labels and class names of ``root/<class>/<image>`` — without opening any image.

    Classes are the sub-directory names in sorted order (label = position); files are sorted by name within each
    class. A sample's id is its position in this list, which is also how the ImageNet-C layout numbers its files.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"image folder {root} does not exist; pass the directory that holds one folder per class")
    if not root.is_dir():
        raise InputError(f"image folder {root} is a file, not a directory of class folders")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not class_dirs:
        raise InputError(f"image folder {root} has no class sub-directories; expected root/<class>/<image>.png")
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        found = sorted(path for path in class_dir.iterdir()
                       if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise InputError(f"class folder {class_dir} contains no image files ({', '.join(IMAGE_SUFFIXES)}); "
                             f"add images or remove the folder")
        files.extend(found)
        labels.extend([label] * len(found))
    return files, labels, [d.name for d in class_dirs]


def load_image_folder(root: str | Path, image_size: int | tuple[int, int] | None = None, *,
                      resize: int | tuple[int, int] | None = None, crop: int | tuple[int, int] | None = None,
                      indices: Sequence[int] | None = None, class_map: Any = None) -> ImageSet:
    """Load ``root/<class name>/<image file>`` (torchvision's ImageFolder layout) into an :class:`ImageSet`.

    Classes are the sub-directory names in sorted order (label = position; see :func:`list_image_folder`); only the
    files at ``indices`` (positions in that order; all when None) are opened, so a subset of a large folder costs
    only its own images. Each image is converted to RGB, then ``resize`` (an int: the shorter side, aspect kept; or
    (H, W)) and ``crop`` (centre crop, int or (H, W)) follow torchvision's ``Resize`` + ``CenterCrop`` on PIL images
    — ``resize=256, crop=224`` is the ImageNet evaluation transform. ``image_size`` instead resizes to a square
    with torch's antialiased bilinear interpolation. ``class_map`` labels the images with a model's class indices
    (see :mod:`robustviz.data.class_map`).
    """
    root = Path(root)
    files, labels, class_names = list_image_folder(root)
    chosen = list(range(len(files))) if indices is None else [int(i) for i in indices]
    bad = [i for i in chosen if not 0 <= i < len(files)]
    if bad:
        raise InputError(f"image indices {bad[:5]} are outside the {len(files)} images of {root}")
    arrays = [_read_rgb(files[i], resize, crop) for i in chosen]
    tensors = [torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0) for array in arrays]
    if image_size is not None:
        tensors = [_resize(tensor, image_size) for tensor in tensors]
    sizes = {tuple(tensor.shape[-2:]) for tensor in tensors}
    if len(sizes) > 1:
        raise InputError(f"images in {root} have different sizes {sorted(sizes)[:5]}; pass resize=256, crop=224 "
                         f"(or image_size=...) to bring them to one size")
    if not tensors:
        raise InputError(f"no images selected from {root}")
    data = ImageSet(torch.cat(tensors), torch.tensor([labels[i] for i in chosen], dtype=torch.int64), class_names,
                    sample_ids=torch.tensor(chosen, dtype=torch.int64), name=root.name,
                    metadata={"dataset": "folder", "root": str(root), "resize": resize, "crop": crop})
    if class_map is not None:
        from .class_map import apply_class_map

        data = apply_class_map(data, class_map)
    return data


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


SUBSETS = ("first", "balanced")


@register("dataset", "folder")
def folder_dataset(root: str | Path, n_samples: int | None = None, image_size: int | None = None, seed: int = 0,
                   resize: int | tuple[int, int] | None = None, crop: int | tuple[int, int] | None = None,
                   class_map: Any = None, subset: str = "first") -> ImageSet:
    """Registry factory: ``n_samples`` images of an ImageFolder tree (all when None), read lazily — only the chosen
    files are opened. ``subset="first"`` takes the first files in sorted order; ``"balanced"`` takes classes in
    turn (the first file of each class, then the second, …). Sample ids are positions in the full sorted listing,
    so pre-corrupted files of the same folder (ImageNet-C layout) line up. ``resize``/``crop``/``class_map``: see
    :func:`load_image_folder`."""
    if subset not in SUBSETS:
        raise InputError(f"subset must be one of {SUBSETS}, got {subset!r}")
    files, labels, _ = list_image_folder(root)
    if n_samples is not None and n_samples > len(files):
        raise InputError(f"asked for {n_samples} samples but {root} holds only {len(files)} images")
    count = len(files) if n_samples is None else n_samples
    if subset == "first":
        indices = list(range(count))
    else:
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(label, []).append(index)
        turns = [members[rank] for rank in range(max(map(len, by_class.values())))
                 for members in by_class.values() if rank < len(members)]
        indices = sorted(turns[:count])
    return load_image_folder(root, image_size=image_size, resize=resize, crop=crop, indices=indices,
                             class_map=class_map)


__all__ = ["IMAGE_SUFFIXES", "SUBSETS", "centre_crop_box", "folder_dataset", "from_tensors", "list_image_folder",
           "load_image_folder", "resized_size"]
