"""Captum-backed explanation methods (gradients, path methods, occlusion, LRP, Grad-CAM).

Each class wraps one Captum attribution class with keyword parameters that default to the paper's (or Captum's)
values, runs it under ``torch.enable_grad()`` with the model's parameters frozen (no parameter gradients are
accumulated), and returns a channel-summed map (the :class:`~robustviz.methods.base.Method` contract).

Randomness: SmoothGrad draws its noise from :mod:`robustviz.rng` (per-sample seeds, batch-independent) and feeds it
to the same computation as Captum's ``NoiseTunnel`` (tests check equality given the same noise); GradientSHAP, whose
Captum implementation draws from torch's and numpy's global generators, is run one sample at a time inside a forked
RNG seeded from that sample's seed, with baselines drawn from :mod:`robustviz.rng`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from captum import attr as captum_attr

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Method


@contextlib.contextmanager
def frozen_parameters(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Gradients enabled for the inputs only: parameters stop requiring grad, restored in ``finally``."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        with torch.enable_grad():
            yield model
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def resolve_layer(model: torch.nn.Module, layer: torch.nn.Module | str | None, method: str) -> torch.nn.Module:
    """The layer a layer/CAM method hooks: ``layer`` (module or dotted name in ``model``) or ``model.cam_layer``."""
    if isinstance(layer, torch.nn.Module):
        return layer
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError as error:
            raise InputError(f"{method}: the model has no submodule {layer!r}; pass a name from "
                             f"[name for name, _ in model.named_modules()]") from error
    found = getattr(model, "cam_layer", None)
    if not isinstance(found, torch.nn.Module):
        raise InputError(f"{method} needs a convolutional layer: the model has no `cam_layer` attribute; pass "
                         f"layer=<module or dotted name>, e.g. create('method', '{method}', layer='features.4')")
    return found


def seed_int(seed: torch.Tensor | int) -> int:
    """A non-negative Python int from an int64 seed (for ``torch.manual_seed`` / numpy)."""
    return int(seed) & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded_sample(seed: torch.Tensor | int, device: torch.device) -> Iterator[None]:
    """Seed torch's and numpy's global generators with one sample's seed for the block, then restore both: for
    Captum methods that draw from the global state (GradientShap's noise, LIME's and KernelSHAP's samples)."""
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed_int(seed))
            np.random.seed(seed_int(seed) % (2**32))
            yield
    finally:
        np.random.set_state(numpy_state)


class CaptumMethod(Method):
    """Base for wrappers: subclasses implement :meth:`_attribute` with the model's parameters frozen."""

    family = "gradient"

    def explain(self, model, images, target, *, seeds):
        with frozen_parameters(model):
            maps = self._attribute(model, images.detach().clone().requires_grad_(True), target, seeds)
        return maps.detach()

    def _attribute(self, model, images, target, seeds) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@register("method", "saliency")
class SaliencyMethod(CaptumMethod):
    """Vanilla gradient (Simonyan et al. 2014). Captum's default ``abs=True`` is kept, so the map is
    ``Σ_c |∂f_t/∂x_c|`` (non-negative); pass ``abs=False`` for the signed gradient."""

    name = "saliency"

    def __init__(self, abs: bool = True):  # noqa: A002 - Captum's parameter name
        self.abs = abs

    def _attribute(self, model, images, target, seeds):
        return captum_attr.Saliency(model).attribute(images, target=target, abs=self.abs)


@register("method", "integrated_gradients")
class IntegratedGradientsMethod(CaptumMethod):
    """Integrated Gradients (Sundararajan et al. 2017), black (zero) baseline, ``n_steps`` Gauss–Legendre points."""

    name = "integrated_gradients"
    family = "path"

    def __init__(self, n_steps: int = 32, baseline: float = 0.0, internal_batch_size: int | None = None):
        self.n_steps, self.baseline, self.internal_batch_size = n_steps, baseline, internal_batch_size

    def _attribute(self, model, images, target, seeds):
        return captum_attr.IntegratedGradients(model).attribute(
            images, baselines=self.baseline, target=target, n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size)


def smoothgrad_noise(seeds: torch.Tensor, nt_samples: int, shape: tuple[int, ...], stdevs: float,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """SmoothGrad noise ``(N·nt_samples, C, H, W)`` in NoiseTunnel's layout (sample-major, ``repeat_interleave``)."""
    noise = rng.normal(rng.substream(seeds, "smoothgrad"), (nt_samples, *shape), device=device)
    return (stdevs * noise).reshape(-1, *shape)


@register("method", "smoothgrad")
class SmoothGradMethod(CaptumMethod):
    """SmoothGrad (Smilkov et al. 2017): mean Saliency over ``nt_samples`` noisy copies, noise σ = ``stdevs`` (0.15
    of the [0, 1] range, the paper's 10–20 %). Same computation as ``NoiseTunnel(Saliency).attribute(...,
    nt_type="smoothgrad")`` with seeded noise; ``abs`` as for saliency; ``nt_batch`` noisy copies per backward."""

    name = "smoothgrad"

    def __init__(self, nt_samples: int = 16, stdevs: float = 0.15, abs: bool = True,  # noqa: A002
                 nt_batch: int | None = None):
        self.nt_samples, self.stdevs, self.abs = nt_samples, stdevs, abs
        self.nt_batch = nt_batch or nt_samples

    def _attribute(self, model, images, target, seeds):
        count, shape = images.shape[0], tuple(images.shape[1:])
        noise = smoothgrad_noise(seeds, self.nt_samples, shape, self.stdevs, images.device).view(
            count, self.nt_samples, *shape)
        saliency = captum_attr.Saliency(model)
        total = torch.zeros_like(images)
        for start in range(0, self.nt_samples, self.nt_batch):
            chunk = noise[:, start:start + self.nt_batch]
            draws = chunk.shape[1]
            noisy = (images.detach().unsqueeze(1) + chunk).reshape(-1, *shape).requires_grad_(True)
            grads = saliency.attribute(noisy, target=target.repeat_interleave(draws), abs=self.abs)
            total += grads.view(count, draws, *shape).sum(dim=1)
        return total / self.nt_samples


@register("method", "gradient_shap")
class GradientShapMethod(CaptumMethod):
    """GradientSHAP (Lundberg & Lee 2017, Captum's form): expected gradients × (input − baseline) over random
    baselines and random points on the path. Baselines: ``n_baselines`` uniform-noise images per sample drawn from
    :mod:`robustviz.rng` (``baseline="uniform"``) or the black image (``"zeros"``). Captum's own draws (path points,
    baseline choice) use the global RNGs, so each sample runs inside a forked RNG seeded from its seed."""

    name = "gradient_shap"
    family = "path"

    def __init__(self, n_samples: int = 16, stdevs: float = 0.0, baseline: str = "uniform", n_baselines: int = 8):
        if baseline not in ("uniform", "zeros"):
            raise InputError(f"gradient_shap baseline must be 'uniform' or 'zeros', got {baseline!r}")
        self.n_samples, self.stdevs, self.baseline, self.n_baselines = n_samples, stdevs, baseline, n_baselines

    def baselines(self, seeds: torch.Tensor, shape: tuple[int, ...], device) -> torch.Tensor:
        """Per-sample baseline distributions ``(N, n_baselines, C, H, W)``."""
        if self.baseline == "zeros":
            return torch.zeros(len(seeds), 1, *shape, device=device)
        return rng.uniform(rng.substream(seeds, "gradient_shap-baselines"), (self.n_baselines, *shape), device)

    def _attribute(self, model, images, target, seeds):
        explainer = captum_attr.GradientShap(model)
        baselines = self.baselines(seeds, tuple(images.shape[1:]), images.device)
        maps = []
        for index in range(images.shape[0]):
            with seeded_sample(seeds[index], images.device):
                maps.append(explainer.attribute(images[index:index + 1], baselines=baselines[index],
                                                n_samples=self.n_samples, stdevs=self.stdevs,
                                                target=target[index:index + 1]))
        return torch.cat(maps)


@register("method", "deeplift")
class DeepLiftMethod(CaptumMethod):
    """DeepLIFT rescale rule (Shrikumar et al. 2017) against the black image. Needs ``nn.ReLU`` modules (not
    ``F.relu``), each used once."""

    name = "deeplift"
    family = "path"

    def __init__(self, baseline: float = 0.0):
        self.baseline = baseline

    def _attribute(self, model, images, target, seeds):
        return captum_attr.DeepLift(model).attribute(images, baselines=torch.full_like(images, self.baseline),
                                                    target=target)


@register("method", "input_x_gradient")
class InputXGradientMethod(CaptumMethod):
    """Input × Gradient (Shrikumar et al. 2016): ``x ⊙ ∂f_t/∂x``, Captum's ``InputXGradient``."""

    name = "input_x_gradient"

    def _attribute(self, model, images, target, seeds):
        return captum_attr.InputXGradient(model).attribute(images, target=target)


@register("method", "deeplift_shap")
class DeepLiftShapMethod(CaptumMethod):
    """DeepLIFT-SHAP (Lundberg & Lee 2017): DeepLIFT (rescale rule) averaged over a baseline distribution, the
    computation of Captum's ``DeepLiftShap``. Baselines: ``n_baselines`` uniform-noise images per sample from
    :mod:`robustviz.rng` (``baseline="uniform"``), or those plus the black image (``"zeros+uniform"``). Captum's
    class takes one baseline set for the whole batch, so the sample × baseline pairs run through ``DeepLift`` in one
    batch (exactly what ``DeepLiftShap`` expands to) and are averaged per sample. Needs ``nn.ReLU`` modules, as
    ``deeplift`` does."""

    name = "deeplift_shap"
    family = "path"

    def __init__(self, n_baselines: int = 8, baseline: str = "uniform"):
        if baseline not in ("uniform", "zeros+uniform"):
            raise InputError(f"deeplift_shap baseline must be 'uniform' or 'zeros+uniform', got {baseline!r}")
        if int(n_baselines) < 1:
            raise InputError(f"deeplift_shap n_baselines must be ≥ 1, got {n_baselines}")
        self.n_baselines, self.baseline = int(n_baselines), baseline

    def baselines(self, seeds: torch.Tensor, shape: tuple[int, ...], device) -> torch.Tensor:
        """Per-sample baseline distributions ``(N, B, C, H, W)``."""
        drawn = rng.uniform(rng.substream(seeds, "deeplift_shap-baselines"), (self.n_baselines, *shape), device)
        if self.baseline == "zeros+uniform":
            drawn = torch.cat([torch.zeros_like(drawn[:, :1]), drawn], dim=1)
        return drawn

    def _attribute(self, model, images, target, seeds):
        count, shape = images.shape[0], tuple(images.shape[1:])
        baselines = self.baselines(seeds, shape, images.device)
        per_sample = baselines.shape[1]
        inputs = images.detach().repeat_interleave(per_sample, dim=0).requires_grad_(True)
        maps = captum_attr.DeepLift(model).attribute(inputs, baselines=baselines.reshape(-1, *shape),
                                                     target=target.repeat_interleave(per_sample))
        return maps.view(count, per_sample, *shape).mean(dim=1)


@register("method", "guided_backprop")
class GuidedBackpropMethod(CaptumMethod):
    """Guided Backpropagation (Springenberg et al. 2015): ReLU backward passes only positive gradients."""

    name = "guided_backprop"

    def _attribute(self, model, images, target, seeds):
        return captum_attr.GuidedBackprop(model).attribute(images, target=target)


@register("method", "occlusion")
class OcclusionMethod(Method):
    """Occlusion (Zeiler & Fergus 2014): drop in the target logit when a square patch is replaced by ``baseline``.

    The window side is ``window`` pixels or, by default, ``round(16·H/224)`` (at least 4) and the stride half of it,
    so a 224-pixel image uses 16×16 patches with stride 8 and a 32-pixel image 4×4 patches with stride 2.
    """

    name = "occlusion"
    family = "perturbation"

    def __init__(self, window: int | None = None, stride: int | None = None, baseline: float = 0.0,
                 perturbations_per_eval: int = 64):
        self.window, self.stride, self.baseline = window, stride, baseline
        self.perturbations_per_eval = perturbations_per_eval

    def explain(self, model, images, target, *, seeds):
        window = self.window or max(4, round(16 * images.shape[-2] / 224))
        stride = self.stride or max(1, window // 2)
        with torch.no_grad():
            return captum_attr.Occlusion(model).attribute(
                images, sliding_window_shapes=(images.shape[1], window, window), strides=(images.shape[1], stride,
                                                                                          stride),
                baselines=self.baseline, target=target, perturbations_per_eval=self.perturbations_per_eval)


@register("method", "lrp")
class LRPMethod(CaptumMethod):
    """Layer-wise Relevance Propagation (Bach et al. 2015), Captum's epsilon rule defaults. Works only on models
    built from modules Captum has rules for (Conv2d, Linear, ReLU, pooling, BatchNorm...); otherwise an error."""

    name = "lrp"
    family = "relevance"

    def _attribute(self, model, images, target, seeds):
        try:
            return captum_attr.LRP(model).attribute(images, target=target)
        except (TypeError, RuntimeError) as error:
            raise InputError(f"lrp cannot explain {type(model).__name__}: {error}. LRP needs a model built only from "
                             f"modules with LRP rules (Conv2d, Linear, ReLU, MaxPool/AvgPool, BatchNorm, Dropout); "
                             f"choose another method (e.g. 'deeplift' or 'integrated_gradients')") from error


@register("method", "grad_cam")
class GradCamMethod(CaptumMethod):
    """Grad-CAM (Selvaraju et al. 2017) via Captum's ``LayerGradCam`` on ``model.cam_layer`` (or ``layer``),
    ReLU applied as in the paper (``relu=True``; Captum's default is False), upsampled bilinearly to the input."""

    name = "grad_cam"
    family = "cam"

    def __init__(self, layer: torch.nn.Module | str | None = None, relu: bool = True):
        self.layer, self.relu = layer, relu

    def _attribute(self, model, images, target, seeds):
        layer = resolve_layer(model, self.layer, self.name)
        cam = captum_attr.LayerGradCam(model, layer).attribute(images, target=target, relu_attributions=self.relu)
        return F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register("method", "guided_grad_cam")
class GuidedGradCamMethod(CaptumMethod):
    """Guided Grad-CAM: Guided Backprop × upsampled Grad-CAM (Captum's ``GuidedGradCam``, its default
    nearest-neighbour upsampling of the CAM)."""

    name = "guided_grad_cam"
    family = "cam"

    def __init__(self, layer: torch.nn.Module | str | None = None, interpolate_mode: str = "nearest"):
        self.layer, self.interpolate_mode = layer, interpolate_mode

    def _attribute(self, model, images, target, seeds):
        layer = resolve_layer(model, self.layer, self.name)
        return captum_attr.GuidedGradCam(model, layer).attribute(images, target=target,
                                                                 interpolate_mode=self.interpolate_mode)


__all__ = ["CaptumMethod", "DeepLiftMethod", "DeepLiftShapMethod", "GradCamMethod", "GradientShapMethod",
           "GuidedBackpropMethod", "GuidedGradCamMethod", "InputXGradientMethod", "IntegratedGradientsMethod",
           "LRPMethod", "OcclusionMethod", "SaliencyMethod", "SmoothGradMethod", "frozen_parameters", "resolve_layer",
           "seed_int", "seeded_sample", "smoothgrad_noise"]
