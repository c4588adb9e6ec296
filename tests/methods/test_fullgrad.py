"""FullGrad against an explicit computation (tensor hooks on each biased layer, numpy post-processing, scipy
upsampling) and the completeness property Σ ∇ₓf⊙x + Σ bias-gradients = f(x) on piecewise-linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

import robustviz
from robustviz.methods.fullgrad import full_gradient_decomposition
from robustviz.validation import InputError


def reference_fullgrad(model, image, target):
    """One image: bias-gradients from ``retain_grad`` on each conv output, the paper's ψ in numpy."""
    outputs = []

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append((module, output))

    handles = [module.register_forward_hook(keep) for module in model.modules() if isinstance(module, nn.Conv2d)]
    try:
        x = image[None].clone().requires_grad_(True)
        model(x)[0, target].backward()
    finally:
        for handle in handles:
            handle.remove()
    model.zero_grad(set_to_none=True)

    def psi(array):
        array = np.abs(array)
        array = array - array.min()
        return array / (array.max() + 1e-6)

    size = image.shape[-1]
    saliency = psi((x.grad[0] * image).double().numpy()).sum(0)
    for module, output in outputs:
        bias_gradient = (output.grad[0] * module.bias[:, None, None]).detach().double().numpy()
        for channel in psi(bias_gradient):
            saliency += ndimage.zoom(channel, size / channel.shape[0], order=1, grid_mode=False, mode="nearest")
    return saliency


def test_fullgrad_matches_the_explicit_computation(tiny_model, batch):
    images, targets, seeds = batch
    maps = robustviz.create("method", "fullgrad").attribute(tiny_model, images, targets, seeds=seeds)
    for index in range(len(images)):
        expected = reference_fullgrad(tiny_model, images[index], int(targets[index]))
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, rtol=1e-4, atol=1e-5)
    assert all(parameter.grad is None and parameter.requires_grad for parameter in tiny_model.parameters())


def _completeness(model, images, targets):
    """(decomposition, Σ input-gradient·x + Σ bias gradients, target logits): the two sums FullGrad must match."""
    decomposition = full_gradient_decomposition(model, images, targets)
    total = (decomposition.input_gradient * images).flatten(1).sum(1)
    total = total + sum(bias.flatten(1).sum(1) for bias in decomposition.bias_gradients)
    with torch.no_grad():
        logits = model(images).gather(1, targets.view(-1, 1)).squeeze(1)
    return decomposition, total, logits


@pytest.mark.parametrize("name", ["tiny", "smallcnn-standard", "tinyresnet-standard"])
def test_decomposition_is_complete_on_relu_networks(name, tiny_model, batch):
    """Conv and linear biases, eval-mode BatchNorm and the NormalizedModel's (x − mean)/std all found."""
    images, targets, _ = batch
    torch.manual_seed(0)
    model = tiny_model if name == "tiny" else robustviz.create("model", name, pretrained=False).eval()
    decomposition, total, logits = _completeness(model, images, targets)
    torch.testing.assert_close(total, logits, atol=1e-4, rtol=1e-4)
    assert len(decomposition.bias_gradients) >= 3


def test_fullgrad_batch_independent_and_batchnorm_in_training_mode_is_refused(batch):
    images, targets, seeds = batch
    torch.manual_seed(0)
    model = robustviz.create("model", "smallcnn-standard", pretrained=False).eval()
    method = robustviz.create("method", "fullgrad")
    together = method.attribute(model, images, targets, seeds=seeds)
    alone = method.attribute(model, images[2:], targets[2:], seeds=seeds[2:])
    torch.testing.assert_close(together[2:], alone, atol=1e-5, rtol=1e-4)
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    model.train()
    with pytest.raises(InputError, match="eval mode"):
        method.attribute(model, images, targets, seeds=seeds)
    for module in model.modules():
        assert not module._forward_hooks


def test_decomposition_is_complete_with_in_place_relus(batch):
    """torchvision-style blocks: conv → BN → ReLU(inplace=True); the captured outputs must stay pre-activation."""
    images, targets, _ = batch
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                          nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 5))
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-0.5, 0.5)
    model.eval()
    _, total, logits = _completeness(model, images, targets)
    torch.testing.assert_close(total, logits, atol=1e-5, rtol=1e-4)
