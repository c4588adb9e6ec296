"""RISE against a slow per-mask loop of the paper's formula on the same seeded grids."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import robustviz
from robustviz.methods.rise import rise_grids, rise_masks
from robustviz.validation import InputError


def reference_rise(model, image, target, grids, shifts, keep_probability):
    """Σ_i softmax(f(x ⊙ m_i))_t · m_i / (N·p), one mask at a time (upsample, then crop by slicing)."""
    height, width = image.shape[-2:]
    grid_size = grids.shape[-1]
    cell_h, cell_w = math.ceil(height / grid_size), math.ceil(width / grid_size)
    saliency = torch.zeros(height, width, dtype=torch.float64)
    for grid, (row, col) in zip(grids, shifts.tolist()):
        big = F.interpolate(grid[None, None], size=((grid_size + 1) * cell_h, (grid_size + 1) * cell_w),
                            mode="bilinear", align_corners=False)[0, 0]
        mask = big[row:row + height, col:col + width]
        with torch.no_grad():
            probability = torch.softmax(model((image * mask)[None]).double(), dim=1)[0, target]
        saliency += probability * mask.double()
    return saliency / (len(grids) * keep_probability)


def test_rise_matches_the_per_mask_loop(tiny_model, batch):
    images, targets, seeds = batch
    method = robustviz.create("method", "rise", n_masks=20, grid_size=4, keep_probability=0.5, batch_masks=16)
    maps = method.attribute(tiny_model, images, targets, seeds=seeds)
    grids, shifts = rise_grids(seeds, 20, 4, 0.5, (32, 32))
    for index in (0, 2):
        expected = reference_rise(tiny_model, images[index], int(targets[index]), grids[index], shifts[index], 0.5)
        torch.testing.assert_close(maps[index, 0].double(), expected, atol=1e-5, rtol=1e-5)


def test_masks_depend_only_on_the_sample_seed(tiny_model, batch):
    images, targets, seeds = batch
    method = robustviz.create("method", "rise", n_masks=24, batch_masks=7)
    together = method.attribute(tiny_model, images, targets, seeds=seeds)
    alone = method.attribute(tiny_model, images[2:], targets[2:], seeds=seeds[2:])
    torch.testing.assert_close(together[2:], alone, atol=1e-6, rtol=1e-6)
    masks_a = rise_masks(torch.tensor([5, 6]), 10, 8, 0.1, (32, 32))
    masks_b = rise_masks(torch.tensor([7, 6]), 10, 8, 0.1, (32, 32))
    assert torch.equal(masks_a[1], masks_b[1]) and not torch.equal(masks_a[0], masks_b[0])


def test_mask_statistics():
    masks = rise_masks(torch.tensor([3]), 2000, 8, 0.1, (48, 40))
    assert masks.shape == (1, 2000, 48, 40)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.1) < 0.01  # bilinear upsampling keeps the keep rate on average


def test_bad_parameters():
    with pytest.raises(InputError, match="keep_probability"):
        robustviz.create("method", "rise", keep_probability=0.0)
