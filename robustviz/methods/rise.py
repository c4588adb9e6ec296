"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

``N`` binary grids of ``s×s`` cells, each cell kept with probability ``p``, are upsampled bilinearly to
``(s+1)·⌈H/s⌉`` pixels and cropped at a random shift to ``H×W``; the saliency of class ``t`` is
``S = Σ_i f_t(x ⊙ m_i) · m_i / (N · p)`` with ``f_t`` the softmax probability. The masks of sample ``n`` are a pure
function of ``seeds[n]`` (so a sample's clean and perturbed images share masks when the engine passes the same
method seeds), and the model sees at most ``batch_masks`` masked images per forward pass (fewer above 40 px:
:func:`robustviz._batching.images_per_pass`); masks are built chunk by chunk, so memory does not grow with ``N``.

Difference from the reference code: the upsampling is ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` instead of ``skimage.transform.resize(order=1, mode="reflect")``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import rng
from .._batching import images_per_pass
from ..registry import register
from ..validation import InputError
from .base import Method


def rise_grids(seeds: torch.Tensor, n_masks: int, grid_size: int, keep_probability: float,
               image_size: tuple[int, int], device: torch.device | str | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample binary grids ``(N, n_masks, s, s)`` and crop shifts ``(N, n_masks, 2)`` (row, column)."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    grids = (rng.uniform(rng.substream(seeds, "rise-grid"), (n_masks, grid_size, grid_size), device)
             < keep_probability).float()
    cell_h, cell_w = (math.ceil(size / grid_size) for size in image_size)
    shift_rows = rng.randint(rng.substream(seeds, "rise-shift-row"), cell_h, (n_masks,), device)
    shift_cols = rng.randint(rng.substream(seeds, "rise-shift-col"), cell_w, (n_masks,), device)
    return grids, torch.stack([shift_rows, shift_cols], dim=-1)


def grids_to_masks(grids: torch.Tensor, shifts: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Upsample ``(..., s, s)`` grids to ``(s+1)·cell`` and crop at ``shifts`` to ``(..., H, W)`` masks."""
    height, width = image_size
    grid_size = grids.shape[-1]
    cell_h, cell_w = math.ceil(height / grid_size), math.ceil(width / grid_size)
    lead = grids.shape[:-2]
    flat = grids.reshape(-1, 1, grid_size, grid_size)
    upsampled = F.interpolate(flat, size=((grid_size + 1) * cell_h, (grid_size + 1) * cell_w), mode="bilinear",
                              align_corners=False)[:, 0]
    shifts = shifts.reshape(-1, 2)
    rows = shifts[:, :1] + torch.arange(height, device=grids.device)  # M × H
    cols = shifts[:, 1:] + torch.arange(width, device=grids.device)  # M × W
    index = torch.arange(flat.shape[0], device=grids.device)
    masks = upsampled[index[:, None, None], rows[:, :, None], cols[:, None, :]]
    return masks.reshape(*lead, height, width)


def rise_masks(seeds: torch.Tensor, n_masks: int, grid_size: int, keep_probability: float,
               image_size: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """All masks ``(N, n_masks, H, W)`` of the given seeds (for tests and figures; RISE itself builds them in
    chunks)."""
    grids, shifts = rise_grids(seeds, n_masks, grid_size, keep_probability, image_size, device)
    return grids_to_masks(grids, shifts, image_size)


@register("method", "rise")
class RISE(Method):
    """RISE saliency; ``n_masks`` (6000), ``grid_size`` s (8), ``keep_probability`` p (0.1), ``batch_masks`` masked
    images per forward pass. Black-box: only forward passes, no gradients."""

    name = "rise"
    family = "perturbation"

    def __init__(self, n_masks: int = 6000, grid_size: int = 8, keep_probability: float = 0.1,
                 batch_masks: int = 256):
        if n_masks < 1 or grid_size < 1 or not 0.0 < keep_probability <= 1.0 or batch_masks < 1:
            raise InputError(f"rise needs n_masks >= 1, grid_size >= 1, 0 < keep_probability <= 1 and "
                             f"batch_masks >= 1; got {n_masks}, {grid_size}, {keep_probability}, {batch_masks}")
        self.n_masks, self.grid_size = n_masks, grid_size
        self.keep_probability, self.batch_masks = keep_probability, batch_masks

    def explain(self, model, images, target, *, seeds):
        count, _, height, width = images.shape
        grids, shifts = rise_grids(seeds, self.n_masks, self.grid_size, self.keep_probability, (height, width),
                                   images.device)
        saliency = torch.zeros(count, height, width, device=images.device, dtype=torch.float64)
        per_chunk = max(1, images_per_pass(self.batch_masks, height, width) // count)
        with torch.no_grad():
            for start in range(0, self.n_masks, per_chunk):
                stop = min(self.n_masks, start + per_chunk)
                masks = grids_to_masks(grids[:, start:stop], shifts[:, start:stop], (height, width))  # N×B×H×W
                masked = images.unsqueeze(1) * masks.unsqueeze(2)  # N×B×C×H×W
                probabilities = torch.softmax(model(masked.flatten(0, 1)).double(), dim=1)
                scores = probabilities.gather(1, target.repeat_interleave(stop - start).view(-1, 1))
                saliency += torch.einsum("nb,nbhw->nhw", scores.view(count, stop - start), masks.double())
        saliency /= self.n_masks * self.keep_probability
        return saliency.float().unsqueeze(1)


__all__ = ["RISE", "grids_to_masks", "rise_grids", "rise_masks"]
