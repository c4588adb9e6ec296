"""Captum wrappers agree with calling Captum directly on the same inputs (and the same noise for SmoothGrad)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum import attr as captum_attr

import robustviz
from robustviz.methods.captum_methods import seed_int, smoothgrad_noise
from robustviz.validation import InputError


def direct(name, model, images, targets):
    """The Captum call each wrapper stands for, summed over colour channels."""
    x = images.clone().requires_grad_(True)
    if name == "saliency":
        out = captum_attr.Saliency(model).attribute(x, target=targets)  # abs=True, Captum's default
    elif name == "integrated_gradients":
        out = captum_attr.IntegratedGradients(model).attribute(x, baselines=0.0, target=targets, n_steps=32)
    elif name == "deeplift":
        out = captum_attr.DeepLift(model).attribute(x, baselines=torch.zeros_like(x), target=targets)
    elif name == "input_x_gradient":
        out = captum_attr.InputXGradient(model).attribute(x, target=targets)
    elif name == "guided_backprop":
        out = captum_attr.GuidedBackprop(model).attribute(x, target=targets)
    elif name == "lrp":
        out = captum_attr.LRP(model).attribute(x, target=targets)
    elif name == "occlusion":  # 32 px: window max(4, round(16·32/224)) = 4, stride 2
        out = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2),
                                                     baselines=0.0, target=targets, perturbations_per_eval=64)
    elif name == "grad_cam":
        cam = captum_attr.LayerGradCam(model, model.cam_layer).attribute(x, target=targets, relu_attributions=True)
        out = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    elif name == "guided_grad_cam":
        out = captum_attr.GuidedGradCam(model, model.cam_layer).attribute(x, target=targets)
    model.zero_grad(set_to_none=True)
    return out.detach().sum(dim=1, keepdim=True)


NAMES = ["saliency", "integrated_gradients", "deeplift", "input_x_gradient", "guided_backprop", "lrp", "occlusion",
         "grad_cam", "guided_grad_cam"]


@pytest.mark.parametrize("name", NAMES)
def test_wrapper_equals_direct_captum_call(name, tiny_model, batch):
    images, targets, seeds = batch
    ours = robustviz.create("method", name).attribute(tiny_model, images, targets, seeds=seeds)
    expected = direct(name, tiny_model, images, targets)
    assert ours.shape == (3, 1, 32, 32) and expected.abs().max() > 0
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    assert all(parameter.grad is None and parameter.requires_grad for parameter in tiny_model.parameters())
    assert not ours.requires_grad


def test_smoothgrad_equals_noise_tunnel_given_the_same_noise(tiny_model, batch, monkeypatch):
    images, targets, seeds = batch
    ours = robustviz.create("method", "smoothgrad", nt_samples=6, stdevs=0.15, nt_batch=4).attribute(
        tiny_model, images, targets, seeds=seeds)
    noise = smoothgrad_noise(seeds, 6, tuple(images.shape[1:]), 0.15)
    calls = []

    def same_noise(mean, std):  # NoiseTunnel draws torch.normal(0, std) of shape (N·nt, C, H, W)
        calls.append(tuple(std.shape))
        assert tuple(std.shape) == tuple(noise.shape) and float(std.flatten()[0]) == pytest.approx(0.15)
        return noise.clone()

    monkeypatch.setattr(torch, "normal", same_noise)
    tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(tiny_model))
    expected = tunnel.attribute(images.clone().requires_grad_(True), nt_type="smoothgrad", nt_samples=6,
                                stdevs=0.15, target=targets).detach().sum(dim=1, keepdim=True)
    assert calls, "NoiseTunnel did not draw through torch.normal"
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)


def test_smoothgrad_is_seeded_per_sample(tiny_model, batch):
    images, targets, seeds = batch
    method = robustviz.create("method", "smoothgrad", nt_samples=4)
    together = method.attribute(tiny_model, images, targets, seeds=seeds)
    alone = method.attribute(tiny_model, images[2:], targets[2:], seeds=seeds[2:])
    torch.testing.assert_close(together[2:], alone, atol=1e-6, rtol=1e-5)
    other = method.attribute(tiny_model, images, targets, seeds=seeds + 1)
    assert not torch.allclose(together, other)


def test_gradient_shap_equals_captum_with_the_same_seeding(tiny_model, batch):
    images, targets, seeds = batch
    method = robustviz.create("method", "gradient_shap", n_samples=5, n_baselines=3)
    state = torch.random.get_rng_state()
    ours = method.attribute(tiny_model, images, targets, seeds=seeds)
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG must be left as it was"
    baselines = method.baselines(seeds, tuple(images.shape[1:]), "cpu")
    for index in range(len(images)):
        torch.manual_seed(seed_int(seeds[index]))
        np.random.seed(seed_int(seeds[index]) % 2**32)
        expected = captum_attr.GradientShap(tiny_model).attribute(
            images[index:index + 1].clone().requires_grad_(True), baselines=baselines[index], n_samples=5,
            target=targets[index:index + 1]).detach().sum(dim=1, keepdim=True)
        torch.testing.assert_close(ours[index:index + 1], expected, atol=1e-6, rtol=1e-5)
    alone = method.attribute(tiny_model, images[1:2], targets[1:2], seeds=seeds[1:2])
    torch.testing.assert_close(ours[1:2], alone)


def test_lrp_on_an_unsupported_model_raises_a_clear_error(batch):
    images, targets, seeds = batch
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()
    with pytest.raises(InputError, match="lrp cannot explain"):
        robustviz.create("method", "lrp").attribute(model, images, targets, seeds=seeds)


def test_methods_run_on_the_zoo_model(zoo_model, batch):
    images, targets, seeds = batch
    images = F.interpolate(images, size=64)
    for name in ("saliency", "integrated_gradients", "grad_cam", "guided_grad_cam"):
        maps = robustviz.create("method", name).attribute(zoo_model, images, targets, seeds=seeds)
        assert maps.shape == (3, 1, 64, 64) and torch.isfinite(maps).all()
