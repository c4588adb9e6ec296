"""The dataset contract: every loader returns an :class:`ImageSet` (images in [0, 1] + labels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..validation import InputError, check_images, check_labels


@dataclass
class ImageSet:
    """Images ``N×C×H×W`` float32 in [0, 1], integer labels, class names; optional ground-truth masks ``N×1×H×W``.

    ``sample_ids`` are stable integer ids (default 0..N-1) used to derive per-sample seeds.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    masks: torch.Tensor | None = None
    sample_ids: torch.Tensor | None = None
    name: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_images(self.images)
        self.images = self.images.float()
        self.labels = check_labels(self.labels, self.images.shape[0], num_classes=len(self.class_names))
        if self.masks is not None:
            masks = torch.as_tensor(self.masks)
            if masks.ndim == 3:
                masks = masks.unsqueeze(1)
            if masks.shape[0] != self.images.shape[0] or masks.shape[2:] != self.images.shape[2:]:
                raise InputError(f"masks of shape {tuple(masks.shape)} do not match images {tuple(self.images.shape)}")
            self.masks = masks.bool()
        if self.sample_ids is None:
            self.sample_ids = torch.arange(self.images.shape[0], dtype=torch.int64)
        self.sample_ids = torch.as_tensor(self.sample_ids, dtype=torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: slice | torch.Tensor) -> "ImageSet":
        """The samples at ``index`` (keeps their ids, so their seeds are unchanged)."""
        return ImageSet(self.images[index], self.labels[index], self.class_names,
                        None if self.masks is None else self.masks[index], self.sample_ids[index], self.name,
                        dict(self.metadata))


__all__ = ["ImageSet"]
