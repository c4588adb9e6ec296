"""FullGrad (Srinivas & Fleuret 2019): input-gradient × input plus the bias-gradients of every layer.

For a ReLU network with biases, the target logit decomposes exactly (completeness)::

    f(x) = Σ ∇ₓf ⊙ x + Σ_layers Σ ∇_z f ⊙ b

where ``z`` is a biased layer's output and ``b`` its bias broadcast over ``z`` (a "bias-gradient"). The saliency
map follows the authors' code (``fullgrad-saliency``): ``ψ(∇ₓf ⊙ x)`` summed over colour channels, plus, for every
layer whose output is spatial (``N×C×h×w``), ``ψ(∇_z f ⊙ b)`` upsampled bilinearly (corners aligned) and summed
over channels; ``ψ`` is the absolute value followed by a per-sample min-max rescale to [0, 1] over the whole
``C×h×w`` tensor.

Which biases are found (the limits):

- ``nn.Conv2d`` biases, ``nn.BatchNorm2d`` in eval mode (effective bias ``β − γ·μ/√(σ²+ε)``), ``nn.Linear``
  biases, and the normalisation of a :class:`~robustviz.models.wrappers.NormalizedModel` (bias ``−mean/std`` at the
  input resolution). Linear biases on non-spatial outputs enter the decomposition but not the map (as in the paper).
- Biases the hooks cannot see are missed: functional calls (``F.conv2d(x, w, b)``), LayerNorm / GroupNorm
  (affine after a non-linear normalisation), attention. On such models (e.g. ViTs) the map is incomplete; the
  decomposition then no longer sums to the logit (:func:`full_gradient_decomposition` lets you check).
- BatchNorm in training mode is refused (batch statistics make the bias depend on the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ..validation import InputError
from .base import Method
from .captum_methods import frozen_parameters


@dataclass
class FullGradient:
    """``input_gradient`` (``N×C×H×W``) and one bias-gradient tensor per biased layer call (shaped like its output)."""

    input_gradient: torch.Tensor
    bias_gradients: list[torch.Tensor]


def _bias_of(module: nn.Module) -> tuple[torch.Tensor | None, int]:
    """The (effective) bias of ``module`` and the output dimension it runs along (1: channels, -1: features)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.training or module.running_mean is None:
            raise InputError(f"fullgrad needs BatchNorm layers in eval mode with running statistics "
                             f"({type(module).__name__} is not); call model.eval()")
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight
        bias = -module.running_mean * scale
        return (bias if module.bias is None else bias + module.bias), 1
    if isinstance(module, nn.Conv2d):
        return module.bias, 1
    if isinstance(module, nn.Linear):
        return module.bias, -1
    return None, 1


def _broadcast(bias: torch.Tensor, output: torch.Tensor, dim: int) -> torch.Tensor:
    shape = [1] * output.ndim
    shape[dim] = bias.numel()
    return bias.reshape(shape)


def _is_normalisation_wrapper(module: nn.Module) -> bool:
    """A ``NormalizedModel`` (matched by shape, since methods/ does not import models/)."""
    return (type(module).__name__ == "NormalizedModel" and isinstance(getattr(module, "model", None), nn.Module)
            and isinstance(getattr(module, "mean", None), torch.Tensor)
            and isinstance(getattr(module, "std", None), torch.Tensor))


def full_gradient_decomposition(model: nn.Module, images: torch.Tensor, target: torch.Tensor) -> FullGradient:
    """``∇ₓf_t`` and the bias-gradients ``∇_z f_t ⊙ b`` of every biased layer call (see the module docstring)."""
    captured: list[tuple[torch.Tensor, torch.Tensor, int]] = []
    handles = []

    def keep(bias: torch.Tensor, dim: int):
        def hook(module, inputs, output):
            captured.append((output, bias.detach(), dim))
            return output.clone()  # an in-place op downstream (ReLU(inplace=True)) must not rewrite the captured z
        return hook

    def keep_normalised(wrapper: nn.Module):
        def pre_hook(module, inputs):  # the inner model's input is (x − mean) / std: bias −mean/std
            captured.append((inputs[0], (-wrapper.mean / wrapper.std).reshape(-1), 1))
        return pre_hook

    try:
        for module in model.modules():
            if _is_normalisation_wrapper(module):
                handles.append(module.model.register_forward_pre_hook(keep_normalised(module)))
            bias, dim = _bias_of(module)
            if bias is not None:
                handles.append(module.register_forward_hook(keep(bias, dim)))
        with frozen_parameters(model):
            inputs = images.detach().requires_grad_(True)
            score = model(inputs).gather(1, target.view(-1, 1)).sum()
            gradients = torch.autograd.grad(score, [inputs] + [output for output, _, _ in captured],
                                            allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    bias_gradients = []
    for gradient, (output, bias, dim) in zip(gradients[1:], captured):
        gradient = torch.zeros_like(output) if gradient is None else gradient
        bias_gradients.append((gradient * _broadcast(bias, output, dim)).detach())
    return FullGradient(gradients[0].detach(), bias_gradients)


def postprocess(tensor: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The paper's ψ: absolute value, then per-sample min-max over everything but the batch dimension."""
    tensor = tensor.abs()
    flat = tensor.reshape(tensor.shape[0], -1)
    shape = (-1,) + (1,) * (tensor.ndim - 1)
    tensor = tensor - flat.min(dim=1).values.reshape(shape)
    return tensor / (tensor.reshape(tensor.shape[0], -1).max(dim=1).values.reshape(shape) + eps)


@register("method", "fullgrad")
class FullGrad(Method):
    """FullGrad saliency (Srinivas & Fleuret 2019), the authors' aggregation; see the module docstring for which
    biases are found and on which models the map is complete."""

    name = "fullgrad"
    family = "gradient"

    def explain(self, model, images, target, *, seeds):
        decomposition = full_gradient_decomposition(model, images, target)
        saliency = postprocess(decomposition.input_gradient * images).sum(dim=1, keepdim=True)
        for bias_gradient in decomposition.bias_gradients:
            if bias_gradient.ndim == 4:
                upsampled = F.interpolate(postprocess(bias_gradient), size=images.shape[-2:], mode="bilinear",
                                          align_corners=True)
                saliency = saliency + upsampled.sum(dim=1, keepdim=True)
        return saliency


__all__ = ["FullGrad", "FullGradient", "full_gradient_decomposition", "postprocess"]
