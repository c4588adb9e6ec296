"""Input checks shared by every layer: one clear error naming what was wrong and what to do.

Imports nothing of robustviz (like ``registry``, ``spec`` and ``rng``).
"""

from __future__ import annotations

import torch


class InputError(ValueError):
    """Bad user input (images, labels, parameters): the message says what was wrong and how to fix it."""


def check_images(images: object, *, name: str = "images", channels: int | tuple[int, ...] | None = None,
                 check_range: bool = True) -> torch.Tensor:
    """Validate the image contract: a float tensor ``N×C×H×W`` with finite values in [0, 1].

    Returns the tensor unchanged. Raises :class:`InputError` naming the problem and the fix.
    """
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape N×C×H×W in [0, 1], got {type(images).__name__}; "
                         f"convert with torch.as_tensor(x).permute(0, 3, 1, 2) / 255 for uint8 N×H×W×C arrays")
    if images.ndim != 4:
        hint = " (add a batch dimension with images.unsqueeze(0))" if images.ndim == 3 else ""
        raise InputError(f"{name} must have 4 dimensions N×C×H×W, got shape {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise InputError(f"{name} must be floating point in [0, 1], got dtype {images.dtype}; "
                         f"divide integer images by 255 (images.float() / 255)")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if images.shape[1] not in allowed:
            layout = " (did you pass N×H×W×C? use images.permute(0, 3, 1, 2))" if images.shape[-1] in allowed else ""
            raise InputError(f"{name} must have {' or '.join(map(str, allowed))} channels, "
                             f"got {images.shape[1]} in shape {tuple(images.shape)}{layout}")
    if images.numel() and check_range:
        # one pass: NaN makes both comparisons false, ±inf falls outside [0, 1]
        low, high = (float(v) for v in torch.aminmax(images.detach()))
        if not (low >= 0.0 and high <= 1.0):
            if not bool(torch.isfinite(images).all()):
                bad = int((~torch.isfinite(images)).sum())
                raise InputError(f"{name} contain {bad} NaN or infinite values; clean or drop those images first")
            raise InputError(f"{name} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]; robustviz works in "
                             f"pixel space — undo any normalisation (the model wrapper normalises) or divide by 255")
    return images


def check_labels(labels: object, n: int, *, num_classes: int | None = None, name: str = "labels") -> torch.Tensor:
    """Validate integer class labels of length ``n`` (and < ``num_classes`` when given)."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"{name} must be a 1-D tensor with one label per image ({n}), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise InputError(f"{name} must be integer class indices, got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or (num_classes is not None and int(labels.max()) >= num_classes)):
        raise InputError(f"{name} must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    return labels.long()


def check_severity(severity: object, severities: tuple[int, ...], name: str) -> int:
    """Severity must be 0 (identity) or one of the perturbation's severities."""
    if isinstance(severity, bool) or not isinstance(severity, int):
        raise InputError(f"severity of {name!r} must be an int, got {severity!r}")
    if severity != 0 and severity not in severities:
        raise InputError(f"severity {severity} is not defined for {name!r}; choose 0 (clean) or one of {severities}")
    return severity


__all__ = ["InputError", "check_images", "check_labels", "check_severity"]
