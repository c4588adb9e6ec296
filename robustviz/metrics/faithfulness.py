"""Faithfulness: deletion and insertion AUCs (Petsiuk, Das & Saenko, BMVC 2018 — RISE's CausalMetric).

The score is the softmax probability of the class the model predicts on the *clean* image. Pixels are visited in
order of decreasing saliency (the perturbed image's map), ``step`` at a time (all channels of a pixel together):

- deletion starts from the image and replaces pixels with 0 (lower AUC = more faithful);
- insertion starts from a Gaussian blur of the image and puts original pixels back (higher AUC = more faithful).

With scores ``a_0..a_n`` after ``0..n`` steps (``n = ⌈HW/step⌉``), ``AUC = (Σ_i a_i − a_0/2 − a_n/2) / n``.
The blur kernel is RISE's: a ``kernel_size²`` impulse filtered by ``scipy.ndimage.gaussian_filter(σ)``, applied
per channel as a zero-padded convolution; 11 px / σ = 5 at 224 px, scaled by ``s = H/224`` for other sizes (size
``max(3, 2⌊11s/2⌋ + 1)``, σ = 5s). The default ``step`` is ``⌈HW/224⌉`` (224 pixels per step at 224², so about
224 steps at every size).

All steps of all samples are evaluated batched, ``batch_size`` images per forward pass (64 by default: on CPU,
larger blocks of small images fall out of cache and run slower per image; capped at 8 images of 224² by
:func:`robustviz._batching.images_per_pass`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from .._batching import images_per_pass
from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def rise_blur_kernel(kernel_size: int, sigma: float) -> torch.Tensor:
    """RISE's ``gkern``: a centred impulse smoothed by ``gaussian_filter(σ)`` (reflect mode), ``k×k``."""
    impulse = np.zeros((kernel_size, kernel_size))
    impulse[kernel_size // 2, kernel_size // 2] = 1
    return torch.from_numpy(gaussian_filter(impulse, sigma).astype(np.float32))


def scaled_blur(image_size: int, kernel_size: int | None = None, sigma: float | None = None) -> tuple[int, float]:
    """Kernel size and σ for ``image_size`` pixels: RISE's (11, 5) at 224 scaled by ``s = image_size/224``:
    size ``max(3, 2⌊11s/2⌋ + 1)`` (odd), σ = 5s."""
    scale = image_size / 224
    if kernel_size is None:
        kernel_size = max(3, 2 * math.floor(11 * scale / 2) + 1)
    if sigma is None:
        sigma = 5 * scale
    return int(kernel_size), float(sigma)


def blur_images(images: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Per-channel zero-padded convolution with :func:`rise_blur_kernel` (RISE's insertion substrate)."""
    channels = images.shape[1]
    kernel = rise_blur_kernel(kernel_size, sigma).to(images.device, images.dtype)
    weight = kernel.expand(channels, 1, kernel_size, kernel_size)
    return F.conv2d(images, weight, padding=kernel_size // 2, groups=channels)


def default_step(height: int, width: int) -> int:
    """``⌈HW/224⌉`` pixels per step: 224 at 224², i.e. about 224 steps at any size."""
    return max(1, math.ceil(height * width / 224))


def auc(scores: torch.Tensor) -> torch.Tensor:
    """Trapezoidal AUC on a unit interval of ``(..., n+1)`` scores: ``(Σ a − a_0/2 − a_n/2) / n``."""
    steps = scores.shape[-1] - 1
    return (scores.sum(dim=-1) - scores[..., 0] / 2 - scores[..., -1] / 2) / steps


def causal_curves(model: torch.nn.Module, images: torch.Tensor, saliency: torch.Tensor, classes: torch.Tensor,
                  mode: str, *, step: int | None = None, kernel_size: int | None = None, sigma: float | None = None,
                  batch_size: int = 64) -> torch.Tensor:
    """Deletion (``mode="deletion"``) or insertion (``"insertion"``) curves ``N×(n+1)`` of class probabilities."""
    if mode not in ("deletion", "insertion"):
        raise InputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    count, channels, height, width = images.shape
    if saliency.shape[0] != count or saliency[0].numel() != height * width:
        raise InputError(f"saliency must be N×1×H×W matching images {tuple(images.shape)}, got "
                         f"{tuple(saliency.shape)}")
    pixels = height * width
    step = step or default_step(height, width)
    n_steps = (pixels + step - 1) // step
    if mode == "deletion":
        start, finish = images, torch.zeros_like(images)
    else:
        kernel_size, sigma = scaled_blur(height, kernel_size, sigma)
        start, finish = blur_images(images, kernel_size, sigma), images
    order = saliency.reshape(count, pixels).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(pixels, device=order.device).expand(count, pixels))
    rank = rank.view(count, 1, 1, height, width)
    start, finish = start.unsqueeze(1), finish.unsqueeze(1)  # N×1×C×H×W
    scores = torch.empty(count, n_steps + 1, device=images.device, dtype=torch.float64)
    per_chunk = max(1, images_per_pass(batch_size, height, width) // count)
    with torch.no_grad():
        for first in range(0, n_steps + 1, per_chunk):
            step_index = torch.arange(first, min(n_steps + 1, first + per_chunk), device=images.device)
            replaced = rank < (step_index * step).view(1, -1, 1, 1, 1)  # N×S×1×H×W
            batch = torch.where(replaced, finish, start)
            probabilities = torch.softmax(model(batch.flatten(0, 1)).double(), dim=1)
            picked = probabilities.gather(1, classes.repeat_interleave(len(step_index)).view(-1, 1))
            scores[:, first:first + len(step_index)] = picked.view(count, -1)
    return scores


class _CausalMetric(Metric):
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions", "clean_logits"})
    mode = ""

    def __init__(self, step: int | None = None, kernel_size: int | None = None, sigma: float | None = None,
                 batch_size: int = 64):
        self.step, self.kernel_size, self.sigma, self.batch_size = step, kernel_size, sigma, batch_size

    def compute(self, context: MetricContext) -> torch.Tensor:
        classes = context.clean_logits.argmax(dim=1).to(context.images.device)
        curves = causal_curves(context.model, context.images, context.attributions.to(context.images.device),
                               classes, self.mode, step=self.step, kernel_size=self.kernel_size, sigma=self.sigma,
                               batch_size=self.batch_size)
        return auc(curves).float()


@register("metric", "deletion_auc")
class DeletionAUC(_CausalMetric):
    """Area under the deletion curve (pixels set to 0 by decreasing saliency); lower is more faithful."""

    name = "deletion_auc"
    direction = "lower"
    mode = "deletion"


@register("metric", "insertion_auc")
class InsertionAUC(_CausalMetric):
    """Area under the insertion curve (original pixels put into a blurred image); higher is more faithful."""

    name = "insertion_auc"
    direction = "higher"
    mode = "insertion"


__all__ = ["DeletionAUC", "InsertionAUC", "auc", "blur_images", "causal_curves", "default_step",
           "rise_blur_kernel", "scaled_blur"]
