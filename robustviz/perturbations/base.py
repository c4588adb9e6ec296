"""The Perturbation contract (see docs/design.md).

A perturbation maps a batch of images in [0, 1] to perturbed images in [0, 1]:
``perturbation(images, severity, seeds=seeds, model=model, labels=labels)``. It is pure, batched and
device-agnostic; ``seeds`` holds one int64 per sample (``robustviz.rng.derive_seeds``) so a sample's result does not
depend on its batch. Severity 0 is the identity for every perturbation. ``model`` and ``labels`` are always passed by
the engine; only perturbations that declare ``needs_model = True`` (adversarial ones) use them, so the engine has no
special cases. Likewise ``sample_ids`` reach only sources that declare ``needs_sample_ids = True``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ..validation import InputError, check_images, check_labels, check_severity


class Perturbation(ABC):
    """Base class: subclasses set ``name``/``family`` and implement :meth:`apply` for severities ≥ 1."""

    name: str = ""  # plain attributes: a source such as PrecomputedCorruption names itself per instance
    family: str = ""
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    needs_model: ClassVar[bool] = False
    #: Sources that look samples up (pre-corrupted files on disk) set this and receive ``sample_ids=`` in apply.
    needs_sample_ids: ClassVar[bool] = False

    def __call__(self, images: torch.Tensor, severity: int, *, seeds: torch.Tensor,
                 model: torch.nn.Module | None = None, labels: torch.Tensor | None = None,
                 sample_ids: torch.Tensor | None = None) -> torch.Tensor:
        check_images(images)
        check_severity(severity, tuple(self.severities), self.name)
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if seeds.shape[0] != images.shape[0]:
            raise InputError(f"{self.name}: got {seeds.shape[0]} seeds for {images.shape[0]} images; pass one seed "
                             f"per sample (robustviz.rng.derive_seeds)")
        if severity == 0:
            return images.clone()
        if self.needs_model:
            if model is None or labels is None:
                raise InputError(f"{self.name} is an adversarial perturbation: pass model= and labels=")
            labels = check_labels(labels, images.shape[0]).to(images.device)
        extra = {}
        if self.needs_sample_ids:
            if sample_ids is None or len(sample_ids) != images.shape[0]:
                raise InputError(f"{self.name} reads stored images: pass sample_ids= (one id per image)")
            extra["sample_ids"] = torch.as_tensor(sample_ids, dtype=torch.int64)
        out = self.apply(images, severity, seeds=seeds, model=model, labels=labels, **extra)
        return out.clamp_(0.0, 1.0)

    @abstractmethod
    def apply(self, images: torch.Tensor, severity: int, *, seeds: torch.Tensor,
              model: torch.nn.Module | None, labels: torch.Tensor | None) -> torch.Tensor:
        """Perturb ``images`` at ``severity`` ≥ 1; clamping to [0, 1] is done by :meth:`__call__`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, family={self.family!r})"


__all__ = ["Perturbation"]
