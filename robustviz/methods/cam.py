"""The CAM family, pytorch-grad-cam style: one base that captures a layer's activations and gradients, and tiny
variants that only say how they weigh the activations.

For activations ``A`` (``N×K×h×w``) of the hooked layer and gradients ``G = ∂y_t/∂A`` of the target logit ``y_t``,
each variant returns a ``N×h×w`` map; the base applies ReLU where the paper does (all variants here, ``relu=True``)
and upsamples bilinearly (``align_corners=False``) to the input size. Maps are not min-max normalised (the
similarity metrics normalise where they need to), so their scale is the paper's.

The layer is ``model.cam_layer`` or the ``layer`` argument (module or dotted name). The forward hook lives only
inside :meth:`CAM.capture` and is removed in ``finally``; gradients come from ``torch.autograd.grad`` on the
captured activations, so no graph survives a call.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from ..registry import register
from .base import Method
from .captum_methods import frozen_parameters, resolve_layer

EPS = 1e-7  # pytorch-grad-cam's epsilon in the Grad-CAM++ and XGrad-CAM denominators


class CAM(Method):
    """Base class: subclasses override :meth:`weigh` (``A, G, ...`` → ``N×h×w`` map before ReLU)."""

    family = "cam"
    needs_gradients = True

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True):
        self.layer, self.relu = layer, relu

    @staticmethod
    @contextlib.contextmanager
    def capture(layer: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        """Record ``layer``'s output in ``store["activations"]`` while the context is open."""
        store: dict[str, torch.Tensor] = {}

        def hook(module, inputs, output):
            store["activations"] = output

        handle = layer.register_forward_hook(hook)
        try:
            yield store
        finally:
            handle.remove()

    def explain(self, model, images, target, *, seeds):
        layer = resolve_layer(model, self.layer, self.name)
        with frozen_parameters(model):
            with self.capture(layer) as store:
                logits = model(images.detach().requires_grad_(self.needs_gradients))
            activations = store["activations"]
            score = logits.gather(1, target.view(-1, 1)).sum()
            gradients = None
            if self.needs_gradients:
                (gradients,) = torch.autograd.grad(score, activations)
            with torch.no_grad():
                cam = self.weigh(activations.detach(), gradients, model=model, images=images, target=target,
                                 layer=layer, logits=logits.detach())
        if self.relu:
            cam = cam.clamp_min(0)
        return F.interpolate(cam.unsqueeze(1), size=images.shape[-2:], mode="bilinear", align_corners=False)

    def weigh(self, activations: torch.Tensor, gradients: torch.Tensor | None, **context) -> torch.Tensor:
        """``Σ_k w_k A_k`` for the variant's weights (default: :meth:`channel_weights`)."""
        weights = self.channel_weights(activations, gradients)
        return torch.einsum("nk,nkhw->nhw", weights, activations)

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must override weigh or channel_weights")


@register("method", "grad_cam_ours")
class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al. 2017): ``w_k = mean_ij G_kij`` (cross-check of Captum's ``grad_cam``)."""

    name = "grad_cam_ours"

    def channel_weights(self, activations, gradients):
        return gradients.mean(dim=(2, 3))


@register("method", "gradcam_plus_plus")
class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018), closed form for an exponential score as in pytorch-grad-cam:
    ``α_kij = G² / (2G² + Σ_ab A_kab · G³ + ε)`` (0 where G = 0), ``w_k = Σ_ij α_kij ReLU(G_kij)``."""

    name = "gradcam_plus_plus"

    def channel_weights(self, activations, gradients):
        squared, cubed = gradients**2, gradients**3
        activation_sums = activations.sum(dim=(2, 3), keepdim=True)
        alpha = squared / (2 * squared + activation_sums * cubed + EPS)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (alpha * gradients.clamp_min(0)).sum(dim=(2, 3))


@register("method", "xgrad_cam")
class XGradCAM(CAM):
    """XGrad-CAM (Fu et al. 2020): ``w_k = Σ_ij (A_kij / (Σ_ab A_kab + ε)) G_kij``."""

    name = "xgrad_cam"

    def channel_weights(self, activations, gradients):
        normalised = activations / (activations.sum(dim=(2, 3), keepdim=True) + EPS)
        return (normalised * gradients).sum(dim=(2, 3))


@register("method", "hires_cam")
class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin 2020): element-wise ``Σ_k G_k ⊙ A_k`` (no spatial averaging of gradients)."""

    name = "hires_cam"

    def weigh(self, activations, gradients, **context):
        return (gradients * activations).sum(dim=1)


@register("method", "layer_cam")
class LayerCAM(CAM):
    """LayerCAM (Jiang et al. 2021): ``Σ_k ReLU(G_k) ⊙ A_k``."""

    name = "layer_cam"

    def weigh(self, activations, gradients, **context):
        return (gradients.clamp_min(0) * activations).sum(dim=1)


@register("method", "eigen_cam")
class EigenCAM(CAM):
    """Eigen-CAM (Muhammad & Yeasin 2020): projection of the activations (``hw×K`` per image) on their first right
    singular vector, ``A·v₁``; gradient-free and class-agnostic. The SVD's sign is fixed so the map correlates
    positively with the channel-summed activations. ``center=True`` subtracts the spatial mean first, as
    pytorch-grad-cam does; the paper does not."""

    name = "eigen_cam"
    needs_gradients = False

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, center: bool = False):
        super().__init__(layer, relu)
        self.center = center

    def weigh(self, activations, gradients, **context):
        count, channels, height, width = activations.shape
        matrix = activations.reshape(count, channels, height * width).transpose(1, 2).double()  # N × hw × K
        if self.center:
            matrix = matrix - matrix.mean(dim=1, keepdim=True)
        _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vh[:, 0, :].unsqueeze(-1)  # N × hw × 1
        reference = activations.sum(dim=1).reshape(count, -1, 1).double()
        sign = torch.sign(((projection - projection.mean(1, keepdim=True))
                           * (reference - reference.mean(1, keepdim=True))).sum(dim=1, keepdim=True))
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        return (projection * sign).reshape(count, height, width).to(activations.dtype)


@register("method", "ablation_cam")
class AblationCAM(CAM):
    """Ablation-CAM (Desai & Ramaswamy 2020): ``w_k = (y_t − y_t^{(k)}) / y_t``, where ``y_t^{(k)}`` is the target
    logit with channel ``k`` of the layer's output set to 0. Gradient-free; ``batch_channels`` ablated copies per
    forward pass (memory bound)."""

    name = "ablation_cam"
    needs_gradients = False

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, batch_channels: int = 32):
        super().__init__(layer, relu)
        self.batch_channels = batch_channels

    def weigh(self, activations, gradients, *, model, images, target, layer, logits, **context):
        count, channels = activations.shape[:2]
        original = logits.gather(1, target.view(-1, 1))  # N × 1
        ablated = torch.empty(count, channels, device=activations.device, dtype=logits.dtype)
        for start in range(0, channels, self.batch_channels):
            chunk = torch.arange(start, min(channels, start + self.batch_channels), device=activations.device)
            copies = len(chunk)

            def ablate(module, inputs, output, chunk=chunk, copies=copies):
                output = output.clone()  # rows: image-major, then the ablated channel
                rows = torch.arange(output.shape[0], device=output.device)
                output[rows, chunk.repeat(count)] = 0
                return output

            handle = layer.register_forward_hook(ablate)
            try:
                out = model(images.repeat_interleave(copies, dim=0))
            finally:
                handle.remove()
            ablated[:, start:start + copies] = out.gather(1, target.repeat_interleave(copies).view(-1, 1)).view(
                count, copies)
        weights = (original - ablated) / original
        return torch.einsum("nk,nkhw->nhw", weights.to(activations.dtype), activations)


__all__ = ["AblationCAM", "CAM", "EigenCAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "XGradCAM"]
