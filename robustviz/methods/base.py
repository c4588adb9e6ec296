"""The explanation Method contract (see docs/design.md).

``method.attribute(model, images, target, seeds=seeds) -> N×1×H×W``: a channel-reduced attribution map (sum over
colour channels, sign kept) at the input resolution, as a detached float32 tensor on the images' device. Methods wrap
Captum where Captum has them; hooks are removed in ``finally`` blocks / context managers and no autograd graph
survives a call. ``seeds`` (one int64 per sample) drives every random choice (RISE masks, SmoothGrad noise, baselines),
so a sample's map does not depend on its batch and the clean and perturbed image of a sample share their draws.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ..validation import InputError, check_images, check_labels


class Method(ABC):
    """Base class for explanation methods; subclasses implement :meth:`explain`."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # "gradient", "cam", "perturbation", ...

    def attribute(self, model: torch.nn.Module, images: torch.Tensor, target: torch.Tensor, *,
                  seeds: torch.Tensor) -> torch.Tensor:
        """Validated entry point: returns ``N×1×H×W`` float32 maps, detached, on ``images.device``."""
        check_images(images)
        target = check_labels(target, images.shape[0], name="target").to(images.device)
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if seeds.shape[0] != images.shape[0]:
            raise InputError(f"{self.name}: got {seeds.shape[0]} seeds for {images.shape[0]} images")
        maps = self.explain(model, images, target, seeds=seeds)
        if maps.ndim == 4 and maps.shape[1] != 1:
            maps = maps.sum(dim=1, keepdim=True)
        expected = (images.shape[0], 1, images.shape[2], images.shape[3])
        if tuple(maps.shape) != expected:
            raise RuntimeError(f"{self.name} returned maps of shape {tuple(maps.shape)}, expected {expected}")
        return maps.detach().float()

    @abstractmethod
    def explain(self, model: torch.nn.Module, images: torch.Tensor, target: torch.Tensor, *,
                seeds: torch.Tensor) -> torch.Tensor:
        """Compute maps (``N×C×H×W`` or ``N×1×H×W``) for validated inputs."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


__all__ = ["Method"]
