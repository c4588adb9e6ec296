"""Pre-corrupted images read from disk as a perturbation source (the published ImageNet-C / CIFAR-10-C files).

``PrecomputedCorruption(root, corruption, layout=...)`` returns, for each sample id, the stored corrupted image at
the requested severity instead of computing one — so a run can use the official benchmark files while the engine
treats them like any other perturbation. The clean images must come from the same dataset in the same order
(sample id = position in the layout's ordering below), at the same size — the ``folder`` dataset numbers its
samples the same way (``resize: 256, crop: 224`` reproduces ImageNet-C's preprocessing of the validation set).

In the cube the perturbation is named by its corruption (``gaussian_noise``), so ``ds.rv.mce()`` works on such
cubes; the ``perturbation_sources`` attr records that it was read from files. Give ``label:`` in the spec to keep
it apart from the on-the-fly corruption of the same name in one cube.

Layouts:

- ``"imagenet-c"``: ``<root>/<corruption>/<severity>/<class>/<image>`` — sample id ``i`` is the ``i``-th file when
  classes (folder names) and then files are sorted by name (torchvision ``ImageFolder`` order). The
  family sub-folders of the official archive (``<root>/noise/gaussian_noise/...``) are found too.
- ``"cifar-10-c"``: ``<root>/<corruption>.npy``, uint8 of shape (5·n, H, W, 3) holding severities 1..5 one after
  the other (n = 10000 for CIFAR-10-C), with ``labels.npy`` beside it — sample id ``i`` is row
  ``(severity − 1)·n + i``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..registry import register
from ..validation import InputError
from ._corruption_base import IMAGENET_C
from .base import Perturbation

_IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}
_FAMILIES = {"noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
             "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
             "weather": ("snow", "frost", "fog", "brightness", "spatter"),
             "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate")}
LAYOUTS = ("imagenet-c", "cifar-10-c")


def _family(corruption: str) -> str:
    for family, names in _FAMILIES.items():
        if corruption in names:
            return family
    return "precomputed"


@register("perturbation", "precomputed")
class PrecomputedCorruption(Perturbation):
    """Stored corrupted images looked up by sample id (see the module docstring for the layouts)."""

    name: ClassVar[str] = "precomputed"
    family: ClassVar[str] = "precomputed"
    needs_sample_ids: ClassVar[bool] = True

    def __init__(self, root: str | Path, corruption: str, layout: str = "imagenet-c"):
        if layout not in LAYOUTS:
            raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.root, self.corruption, self.layout = Path(root), str(corruption), layout
        # the cube names the perturbation by its corruption, so ImageNet-C tables (mCE) apply; that it came from
        # files is provenance, kept in the cube's ``perturbation_sources`` attr
        self.name = self.coordinate = self.corruption
        self.source = f"precomputed files ({layout} layout)"
        self.family = _family(self.corruption)
        if not self.root.is_dir():
            raise InputError(f"{self.root} is not a directory; pass the folder that holds the {layout} files")
        self._files: dict[int, list[Path]] = {}
        self._array: np.ndarray | None = None
        if layout == "cifar-10-c":
            path = self.root / f"{self.corruption}.npy"
            if not path.is_file():
                raise InputError(f"{path} not found; the cifar-10-c layout expects <root>/<corruption>.npy "
                                 f"(known corruptions: {', '.join(sorted(IMAGENET_C))})")
            self._array = np.load(path, mmap_mode="r")
            if self._array.ndim != 4 or self._array.shape[0] % 5 or self._array.shape[-1] not in (1, 3):
                raise InputError(f"{path} must hold 5·n images of shape H×W×C (C = 1 or 3), got "
                                 f"{self._array.shape}")
        else:
            self._corruption_dir = self._find_imagenet_dir()

    # -- lookup ---------------------------------------------------------------------------------------------
    def _find_imagenet_dir(self) -> Path:
        for candidate in [self.root / self.corruption, *(p / self.corruption for p in sorted(self.root.iterdir())
                                                        if p.is_dir())]:
            if candidate.is_dir():
                return candidate
        raise InputError(f"no folder {self.corruption!r} under {self.root}; the imagenet-c layout expects "
                         f"<root>/<corruption>/<severity>/<class>/<image>")

    def files(self, severity: int) -> list[Path]:
        """Image files of ``severity`` in sample-id order (sorted class folders, then sorted names)."""
        if severity not in self._files:
            folder = self._corruption_dir / str(severity)
            if not folder.is_dir():
                raise InputError(f"{folder} not found: severity {severity} of {self.corruption} is missing")
            self._files[severity] = [path for class_dir in sorted(p for p in folder.iterdir() if p.is_dir())
                                     for path in sorted(class_dir.iterdir())
                                     if path.suffix.lower() in _IMAGE_SUFFIXES]
        return self._files[severity]

    def count(self, severity: int = 1) -> int:
        """Number of stored samples per severity."""
        if self._array is not None:
            return self._array.shape[0] // 5
        return len(self.files(severity))

    def labels(self) -> np.ndarray:
        """Stored labels per sample id (cifar-10-c: ``labels.npy``; imagenet-c: the class folder index)."""
        if self._array is not None:
            path = self.root / "labels.npy"
            if not path.is_file():
                raise InputError(f"{path} not found; CIFAR-10-C ships labels.npy beside the corruption files")
            return np.asarray(np.load(path))[: self.count()]
        files = self.files(1)
        classes = sorted({path.parent.name for path in files})
        return np.array([classes.index(path.parent.name) for path in files])

    def load(self, severity: int, sample_ids: torch.Tensor) -> np.ndarray:
        """Stored images N×H×W×C (uint8) for ``sample_ids`` at ``severity``."""
        ids = [int(i) for i in torch.as_tensor(sample_ids).reshape(-1)]
        count = self.count(severity)
        bad = [i for i in ids if not 0 <= i < count]
        if bad:
            raise InputError(f"sample ids {bad[:5]} are outside the {count} stored samples of {self.corruption}")
        if self._array is not None:
            rows = [(severity - 1) * count + i for i in ids]
            return np.stack([np.asarray(self._array[row]) for row in rows])
        from PIL import Image

        files = self.files(severity)
        return np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in ids])

    # -- perturbation -------------------------------------------------------------------------------------------
    def apply(self, images, severity, *, seeds, model=None, labels=None, sample_ids=None):
        stored = self.load(severity, sample_ids)
        out = torch.as_tensor(stored).permute(0, 3, 1, 2).to(device=images.device, dtype=images.dtype) / 255.0
        if out.shape[1] == 3 and images.shape[1] == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=out.device, dtype=out.dtype).reshape(1, 3, 1, 1)
            out = (out * weights).sum(dim=1, keepdim=True)
        if out.shape[1:] != images.shape[1:]:
            raise InputError(f"stored {self.corruption} images have shape {tuple(out.shape[1:])} but the clean "
                             f"images are {tuple(images.shape[1:])}; preprocess the clean images as the benchmark "
                             f"did (ImageNet-C: resize 256, centre-crop 224)")
        return out

    def __repr__(self) -> str:
        return f"PrecomputedCorruption(root={str(self.root)!r}, corruption={self.corruption!r}, layout={self.layout!r})"


__all__ = ["LAYOUTS", "PrecomputedCorruption"]
