"""DeepLiftShap, FeatureAblation, LIME and KernelSHAP wrappers against Captum's classes called directly with the
same baselines, feature masks and per-sample seeds; seeding and batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum import attr as captum_attr
from torch import nn

import robustviz
from robustviz.methods.captum_methods import seed_int
from robustviz.methods.captum_perturbation import feature_masks
from robustviz.validation import InputError


class Scaled(nn.Module):
    """A model with larger logits, so LIME's Lasso (α = 0.01) keeps some coefficients."""

    def __init__(self, model, scale=200.0):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, images):
        return self.scale * self.model(images)


@pytest.fixture
def shape_batch():
    """Three 32-px images of the shapes dataset (SLIC finds real superpixels on them, unlike on noise)."""
    data = robustviz.create("dataset", "shapes", n_samples=3, image_size=32)
    return data.images, torch.tensor([0, 2, 4]), torch.tensor([11, 22, 33], dtype=torch.int64)


def test_deeplift_shap_equals_captum_with_the_same_baselines(tiny_model, batch):
    images, targets, seeds = batch
    method = robustviz.create("method", "deeplift_shap", n_baselines=4, baseline="zeros+uniform")
    ours = method.attribute(tiny_model, images, targets, seeds=seeds)
    baselines = method.baselines(seeds, tuple(images.shape[1:]), images.device)
    assert baselines.shape == (3, 5, 3, 32, 32) and torch.equal(baselines[:, 0], torch.zeros_like(images))
    for index in range(len(images)):
        expected = captum_attr.DeepLiftShap(tiny_model).attribute(
            images[index:index + 1].clone().requires_grad_(True), baselines=baselines[index],
            target=targets[index:index + 1]).detach().sum(dim=1, keepdim=True)
        assert expected.abs().max() > 0
        torch.testing.assert_close(ours[index:index + 1], expected, atol=1e-6, rtol=1e-5)
    assert all(parameter.grad is None and parameter.requires_grad for parameter in tiny_model.parameters())


@pytest.mark.parametrize("segmentation", ["grid", "slic"])
def test_feature_ablation_equals_captum_per_image(segmentation, tiny_model, shape_batch):
    images, targets, seeds = shape_batch
    ours = robustviz.create("method", "feature_ablation", segmentation=segmentation, n_segments=16).attribute(
        tiny_model, images, targets, seeds=seeds)
    masks = feature_masks(images, segmentation, n_segments=16)
    for index in range(len(images)):
        expected = captum_attr.FeatureAblation(tiny_model).attribute(
            images[index:index + 1], baselines=0.0, target=targets[index:index + 1],
            feature_mask=masks[index:index + 1]).sum(dim=1, keepdim=True)
        assert expected.abs().max() > 0
        torch.testing.assert_close(ours[index:index + 1], expected, atol=1e-6, rtol=1e-5)


def test_feature_masks_grid_cells_and_slic_labels(shape_batch):
    images = shape_batch[0]
    grid = feature_masks(images, "grid", cell=8)
    assert grid.shape == (3, 1, 32, 32) and int(grid.max()) == 15  # 4 × 4 cells of 8 px
    assert int(grid[0, 0, 9, 17]) == 1 * 4 + 2
    slic = feature_masks(images, "slic", n_segments=20)
    for mask in slic:  # ids 0 … F−1 with every id used
        assert torch.equal(torch.unique(mask), torch.arange(int(mask.max()) + 1))
        assert int(mask.max()) >= 3
    noise = feature_masks(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), "slic")
    assert int(noise.max()) >= 3  # SLIC merges pure noise into one segment: the grid stands in
    with pytest.raises(InputError, match="segmentation"):
        feature_masks(images, "voronoi")


@pytest.mark.parametrize("name, captum_class", [("lime", captum_attr.Lime), ("kernel_shap", captum_attr.KernelShap)])
def test_sampled_methods_equal_captum_under_the_sample_seed(name, captum_class, tiny_model, shape_batch):
    pytest.importorskip("sklearn")
    images, targets, seeds = shape_batch
    model = Scaled(tiny_model)
    method = robustviz.create("method", name, n_samples=40, n_segments=16)
    ours = method.attribute(model, images, targets, seeds=seeds)
    masks = feature_masks(images, "slic", n_segments=16)
    for index in range(len(images)):
        torch.manual_seed(seed_int(seeds[index]))
        np.random.seed(seed_int(seeds[index]) % 2**32)
        expected = captum_class(model).attribute(images[index:index + 1], baselines=0.0,
                                                 target=targets[index:index + 1], feature_mask=masks[index:index + 1],
                                                 n_samples=40, perturbations_per_eval=50).sum(dim=1, keepdim=True)
        torch.testing.assert_close(ours[index:index + 1], expected, atol=1e-6, rtol=1e-5)
    assert ours.abs().amax(dim=(1, 2, 3)).gt(0).sum() >= 2
    alone = method.attribute(model, images[1:2], targets[1:2], seeds=seeds[1:2])
    torch.testing.assert_close(alone, ours[1:2], atol=1e-6, rtol=1e-5)
    other = method.attribute(model, images, targets, seeds=seeds + 1)
    assert not torch.allclose(other, ours)
    state = torch.random.get_rng_state()
    method.attribute(model, images[:1], targets[:1], seeds=seeds[:1])
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left as it was


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="segmentation"):
        robustviz.create("method", "lime", segmentation="voronoi")
    with pytest.raises(InputError, match="n_samples"):
        robustviz.create("method", "kernel_shap", n_samples=1)
    with pytest.raises(InputError, match="baseline"):
        robustviz.create("method", "deeplift_shap", baseline="blur")
