"""The CAM family, pytorch-grad-cam style: one base that captures a layer's activations and gradients, and tiny
variants that only say how they weigh the activations.

For activations ``A`` (``N×K×h×w``) of the hooked layer and gradients ``G = ∂y_t/∂A`` of the target logit ``y_t``,
each variant returns a ``N×h×w`` map; the base applies ReLU where the paper does (all variants here, ``relu=True``)
and upsamples bilinearly (``align_corners=False``) to the input size. Maps are not min-max normalised (the
similarity metrics normalise where they need to), so their scale is the paper's.

Smoothing options on every variant (pytorch-grad-cam's names):

- ``eigen_smooth=True``: instead of summing the weighted activations ``w_k A_k`` (or ``G_k ⊙ A_k`` for the
  element-wise variants) over channels, project them on their first principal component (spatial mean removed,
  as pytorch-grad-cam's ``get_2d_projection``); the component's sign is chosen so the map correlates positively
  with the unsmoothed sum.
- ``aug_smooth=True``: test-time augmentation: the mean of the maps of 6 augmented copies (horizontal flip on/off
  × brightness factors 0.9, 1, 1.1, pytorch-grad-cam's ``ttach`` set), each map flipped back. The multiplied image
  is clamped to [0, 1] (pixel space; pytorch-grad-cam multiplies normalised tensors and does not clamp).

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
from ..validation import InputError
from .base import Method
from .captum_methods import frozen_parameters, resolve_layer

EPS = 1e-7  # pytorch-grad-cam's epsilon in the Grad-CAM++ and XGrad-CAM denominators
AUG_FACTORS = (0.9, 1.0, 1.1)  # pytorch-grad-cam's aug_smooth brightness factors (ttach.Multiply)


def first_component(weighted: torch.Tensor, *, center: bool, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Projection of ``N×K×h×w`` activations (``hw×K`` per image) on their first right singular vector, ``N×h×w``.

    ``center`` subtracts the spatial mean of each channel first (a PCA). The SVD's sign is arbitrary; it is fixed
    so the projection correlates positively with ``reference`` (``N×h×w``; default: the channel sum)."""
    count, channels, height, width = weighted.shape
    matrix = weighted.reshape(count, channels, height * width).transpose(1, 2).double()  # N × hw × K
    if center:
        matrix = matrix - matrix.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    projection = matrix @ vh[:, 0, :].unsqueeze(-1)  # N × hw × 1
    reference = weighted.sum(dim=1) if reference is None else reference
    reference = reference.reshape(count, -1, 1).double()
    sign = torch.sign(((projection - projection.mean(1, keepdim=True))
                       * (reference - reference.mean(1, keepdim=True))).sum(dim=1, keepdim=True))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (projection * sign).reshape(count, height, width).to(weighted.dtype)


class CAM(Method):
    """Base class: subclasses override :meth:`channel_weights` (``w_k``), :meth:`weighted_activations`
    (``N×K×h×w`` terms whose channel sum is the map) or, for maps that are not such a sum, :meth:`weigh`."""

    family = "cam"
    needs_gradients = True

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, *, aug_smooth: bool = False,
                 eigen_smooth: bool = False):
        self.layer, self.relu = layer, relu
        self.aug_smooth, self.eigen_smooth = bool(aug_smooth), bool(eigen_smooth)

    @staticmethod
    @contextlib.contextmanager
    def capture(layer: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        """Record ``layer``'s output in ``store["activations"]`` while the context is open."""
        store: dict[str, torch.Tensor] = {}

        def hook(module, inputs, output):
            store["activations"] = output
            # Downstream modules get a copy: an in-place op after the layer (torchvision's ``ReLU(inplace=True)``)
            # would otherwise overwrite the captured activations and reroute their gradients.
            return output.clone() if isinstance(output, torch.Tensor) else output

        handle = layer.register_forward_hook(hook)
        try:
            yield store
        finally:
            handle.remove()

    def explain(self, model, images, target, *, seeds):
        layer = resolve_layer(model, self.layer, self.name)
        if not self.aug_smooth:
            return self.upsampled_cam(model, images, target, layer)
        maps = []
        for flip in (False, True):
            for factor in AUG_FACTORS:
                augmented = (images * factor).clamp(0.0, 1.0)
                if flip:
                    augmented = augmented.flip(-1)
                cam = self.upsampled_cam(model, augmented, target, layer)
                maps.append(cam.flip(-1) if flip else cam)
        return torch.stack(maps).mean(dim=0)

    def upsampled_cam(self, model, images, target, layer) -> torch.Tensor:
        """The map of one (possibly augmented) batch: ``N×1×H×W`` after ReLU and bilinear upsampling."""
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
        """The ``N×h×w`` map before ReLU: channel sum of :meth:`weighted_activations`, or with ``eigen_smooth``
        their first principal component."""
        weighted = self.weighted_activations(activations, gradients, **context)
        if self.eigen_smooth:
            return first_component(weighted, center=True)
        return weighted.sum(dim=1)

    def weighted_activations(self, activations: torch.Tensor, gradients: torch.Tensor | None,
                             **context) -> torch.Tensor:
        """``w_k A_k`` (``N×K×h×w``) for the variant's :meth:`channel_weights`."""
        weights = self.channel_weights(activations, gradients, **context)
        return weights.to(activations.dtype)[:, :, None, None] * activations

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, **context) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must override weigh, weighted_activations or "
                                  f"channel_weights")


@register("method", "grad_cam_ours")
class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al. 2017): ``w_k = mean_ij G_kij`` (cross-check of Captum's ``grad_cam``)."""

    name = "grad_cam_ours"

    def channel_weights(self, activations, gradients, **context):
        return gradients.mean(dim=(2, 3))


@register("method", "gradcam_plus_plus")
class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018), closed form for an exponential score as in pytorch-grad-cam:
    ``α_kij = G² / (2G² + Σ_ab A_kab · G³ + ε)`` (0 where G = 0), ``w_k = Σ_ij α_kij ReLU(G_kij)``."""

    name = "gradcam_plus_plus"

    def channel_weights(self, activations, gradients, **context):
        squared, cubed = gradients**2, gradients**3
        activation_sums = activations.sum(dim=(2, 3), keepdim=True)
        alpha = squared / (2 * squared + activation_sums * cubed + EPS)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (alpha * gradients.clamp_min(0)).sum(dim=(2, 3))


@register("method", "xgrad_cam")
class XGradCAM(CAM):
    """XGrad-CAM (Fu et al. 2020): ``w_k = Σ_ij (A_kij / (Σ_ab A_kab + ε)) G_kij``."""

    name = "xgrad_cam"

    def channel_weights(self, activations, gradients, **context):
        normalised = activations / (activations.sum(dim=(2, 3), keepdim=True) + EPS)
        return (normalised * gradients).sum(dim=(2, 3))


@register("method", "hires_cam")
class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin 2020): element-wise ``Σ_k G_k ⊙ A_k`` (no spatial averaging of gradients)."""

    name = "hires_cam"

    def weighted_activations(self, activations, gradients, **context):
        return gradients * activations


@register("method", "layer_cam")
class LayerCAM(CAM):
    """LayerCAM (Jiang et al. 2021): ``Σ_k ReLU(G_k) ⊙ A_k``."""

    name = "layer_cam"

    def weighted_activations(self, activations, gradients, **context):
        return gradients.clamp_min(0) * activations


@register("method", "eigen_cam")
class EigenCAM(CAM):
    """Eigen-CAM (Muhammad & Yeasin 2020): projection of the activations (``hw×K`` per image) on their first right
    singular vector, ``A·v₁``; gradient-free and class-agnostic. The SVD's sign is fixed so the map correlates
    positively with the channel-summed activations. ``center=True`` subtracts the spatial mean first, as
    pytorch-grad-cam does; the paper does not."""

    name = "eigen_cam"
    needs_gradients = False

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, center: bool = False, **smooth):
        super().__init__(layer, relu, **smooth)
        self.center = center

    def weigh(self, activations, gradients, **context):
        return first_component(activations, center=self.center)


@register("method", "ablation_cam")
class AblationCAM(CAM):
    """Ablation-CAM (Desai & Ramaswamy 2020): ``w_k = (y_t − y_t^{(k)}) / y_t``, where ``y_t^{(k)}`` is the target
    logit with channel ``k`` of the layer's output set to 0. Gradient-free; ``batch_channels`` ablated copies per
    forward pass (memory bound)."""

    name = "ablation_cam"
    needs_gradients = False

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, batch_channels: int = 32,
                 **smooth):
        super().__init__(layer, relu, **smooth)
        self.batch_channels = batch_channels

    def channel_weights(self, activations, gradients, *, model, images, target, layer, logits, **context):
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
        return (original - ablated) / original


@register("method", "eigengrad_cam")
class EigenGradCAM(CAM):
    """EigenGrad-CAM (pytorch-grad-cam's variant of Eigen-CAM): first principal component of ``G ⊙ A`` (spatial
    mean removed before the SVD, as pytorch-grad-cam), signed to correlate with ``Σ_k G_k ⊙ A_k``; class-specific
    through the gradients."""

    name = "eigengrad_cam"

    def weigh(self, activations, gradients, **context):
        return first_component(gradients * activations, center=True)


@register("method", "score_cam")
class ScoreCAM(CAM):
    """Score-CAM (Wang et al. 2020): each channel, upsampled to the input (bilinear, corners aligned) and min-max
    normalised to [0, 1], masks the image; its weight is the model's score for the target on the masked image.

    ``weights="softmax"`` (default, pytorch-grad-cam's form): softmax over channels of the masked target logits.
    ``weights="confidence"`` (the paper's Eq. 2): softmax probability of the target on the masked image minus that
    on the black baseline image. Gradient-free; ``batch_masks`` masked images per forward pass, taken across
    samples and channels (K forward images per sample in all).
    """

    name = "score_cam"
    needs_gradients = False

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True, batch_masks: int = 64,
                 weights: str = "softmax", **smooth):
        super().__init__(layer, relu, **smooth)
        if weights not in ("softmax", "confidence"):
            raise InputError(f"score_cam weights must be 'softmax' or 'confidence', got {weights!r}")
        if int(batch_masks) < 1:
            raise InputError(f"score_cam batch_masks must be ≥ 1, got {batch_masks}")
        self.batch_masks, self.weights = int(batch_masks), weights

    def channel_weights(self, activations, gradients, *, model, images, target, **context):
        count, channels = activations.shape[:2]
        flat = activations.reshape(count * channels, 1, *activations.shape[2:])
        scores = torch.empty(count * channels, device=images.device, dtype=torch.float32)
        for start in range(0, count * channels, self.batch_masks):
            rows = torch.arange(start, min(count * channels, start + self.batch_masks), device=images.device)
            masks = F.interpolate(flat[rows], size=images.shape[-2:], mode="bilinear", align_corners=True)
            low = masks.amin(dim=(2, 3), keepdim=True)
            high = masks.amax(dim=(2, 3), keepdim=True)
            masks = (masks - low) / (high - low + 1e-8)  # pytorch-grad-cam's epsilon
            samples = torch.div(rows, channels, rounding_mode="floor")
            out = model(images[samples] * masks)
            if self.weights == "confidence":
                out = out.softmax(dim=1)
            scores[rows] = out.gather(1, target[samples].view(-1, 1)).squeeze(1).float()
        scores = scores.view(count, channels)
        if self.weights == "softmax":
            return scores.softmax(dim=1)
        baseline = model(torch.zeros_like(images)).softmax(dim=1).gather(1, target.view(-1, 1))
        return scores - baseline.float()


__all__ = ["AblationCAM", "CAM", "EigenCAM", "EigenGradCAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM",
           "ScoreCAM", "XGradCAM", "first_component"]
