"""Feature-based perturbation methods through Captum: FeatureAblation, LIME and KernelSHAP.

All three attribute to *features*: groups of pixels given by a feature mask (one id per pixel, shared by the colour
channels). ``segmentation="grid"`` uses square cells of ``cell`` pixels (default ``max(4, round(16·H/224))``, the
occlusion window); ``"slic"`` uses scikit-image's SLIC superpixels (``n_segments``, ``compactness``; deterministic,
computed per image; an image SLIC leaves in one segment, such as pure noise, falls back to the grid). Ids are
renumbered 0 … F−1 per image. A feature is removed by setting it to ``baseline``.

Randomness: LIME and KernelSHAP draw their coalitions from torch's global generator inside Captum, so each sample
runs inside a forked RNG seeded from its own seed (as ``gradient_shap`` does): a sample's map does not depend on its
batch. Their surrogate models are Captum's defaults (LIME: ``SkLearnLasso(alpha=0.01)`` with an exponential kernel
on the cosine distance, width 1; KernelSHAP: ``SkLearnLinearRegression`` with the Shapley kernel), which need
scikit-learn (``pip install "robustviz[surrogate]"``). FeatureAblation is deterministic and batched.
"""

from __future__ import annotations

import numpy as np
import torch
from captum import attr as captum_attr

from .._optional import require
from ..registry import register
from ..validation import InputError
from .base import Method
from .captum_methods import seeded_sample

SEGMENTATIONS = ("grid", "slic")


def feature_masks(images: torch.Tensor, segmentation: str = "grid", *, cell: int | None = None,
                  n_segments: int = 50, compactness: float = 10.0) -> torch.Tensor:
    """``N×1×H×W`` int64 feature ids (0 … F−1 per image) for ``images`` (see the module docstring)."""
    count, channels, height, width = images.shape
    if segmentation == "grid":
        cell = int(cell or max(4, round(16 * height / 224)))
        if cell < 1:
            raise InputError(f"grid cell must be ≥ 1 pixel, got {cell}")
        rows = torch.arange(height, device=images.device) // cell
        cols = torch.arange(width, device=images.device) // cell
        ids = rows[:, None] * (-(-width // cell)) + cols[None, :]
        return ids.expand(count, 1, height, width).clone()
    if segmentation == "slic":
        from skimage.segmentation import slic

        masks = []
        for image in images.detach().cpu().double().numpy():
            pixels = np.moveaxis(image, 0, -1)
            labels = slic(pixels if channels > 1 else pixels[..., 0], n_segments=n_segments,
                          compactness=compactness, start_label=0, channel_axis=-1 if channels > 1 else None)
            masks.append(np.unique(labels, return_inverse=True)[1].reshape(height, width))
        masks = torch.as_tensor(np.stack(masks), dtype=torch.int64, device=images.device).unsqueeze(1)
        single = masks.flatten(1).amax(dim=1) == 0
        if bool(single.any()):
            masks[single] = feature_masks(images[single], "grid", cell=cell)
        return masks
    raise InputError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")


class _FeatureMethod(Method):
    family = "perturbation"
    default_segmentation = "grid"

    def __init__(self, segmentation: str | None = None, cell: int | None = None, n_segments: int = 50,
                 compactness: float = 10.0, baseline: float = 0.0, perturbations_per_eval: int = 50):
        segmentation = segmentation or self.default_segmentation
        if segmentation not in SEGMENTATIONS:
            raise InputError(f"{self.name}: segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")
        if int(perturbations_per_eval) < 1:
            raise InputError(f"{self.name}: perturbations_per_eval must be ≥ 1, got {perturbations_per_eval}")
        self.segmentation, self.cell, self.n_segments, self.compactness = segmentation, cell, n_segments, compactness
        self.baseline, self.perturbations_per_eval = float(baseline), int(perturbations_per_eval)

    def masks(self, images: torch.Tensor) -> torch.Tensor:
        return feature_masks(images, self.segmentation, cell=self.cell, n_segments=self.n_segments,
                             compactness=self.compactness)


@register("method", "feature_ablation")
class FeatureAblationMethod(_FeatureMethod):
    """Feature ablation (Captum's ``FeatureAblation``): drop in the target logit when one feature (grid cell by
    default, or SLIC superpixel) is set to ``baseline``; every pixel of a feature gets its value."""

    name = "feature_ablation"

    def explain(self, model, images, target, *, seeds):
        with torch.no_grad():
            return captum_attr.FeatureAblation(model).attribute(
                images, baselines=self.baseline, target=target, feature_mask=self.masks(images),
                perturbations_per_eval=self.perturbations_per_eval)


class _SampledFeatureMethod(_FeatureMethod):
    """Per-sample Captum calls inside a forked RNG seeded from the sample's seed."""

    default_segmentation = "slic"

    def __init__(self, n_samples: int = 200, **kwargs):
        super().__init__(**kwargs)
        if int(n_samples) < 2:
            raise InputError(f"{self.name}: n_samples must be ≥ 2, got {n_samples}")
        self.n_samples = int(n_samples)

    def explainer(self, model):  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, model, images, target, *, seeds):
        require("sklearn", "surrogate", f"{self.name}'s surrogate model")
        masks = self.masks(images)
        explainer = self.explainer(model)
        maps = []
        with torch.no_grad():
            for index in range(images.shape[0]):
                with seeded_sample(seeds[index], images.device):
                    maps.append(explainer.attribute(
                        images[index:index + 1], baselines=self.baseline, target=target[index:index + 1],
                        feature_mask=masks[index:index + 1], n_samples=self.n_samples,
                        perturbations_per_eval=self.perturbations_per_eval))
        return torch.cat(maps)


@register("method", "lime")
class LimeMethod(_SampledFeatureMethod):
    """LIME (Ribeiro et al. 2016) through Captum's ``Lime`` with its default surrogate (Lasso, α = 0.01) and kernel;
    ``n_samples`` random coalitions of SLIC superpixels (default) each kept with probability ½."""

    name = "lime"

    def explainer(self, model):
        return captum_attr.Lime(model)


@register("method", "kernel_shap")
class KernelShapMethod(_SampledFeatureMethod):
    """KernelSHAP (Lundberg & Lee 2017) through Captum's ``KernelShap``: a weighted linear regression over
    ``n_samples`` coalitions of SLIC superpixels (default) drawn from the Shapley kernel."""

    name = "kernel_shap"

    def explainer(self, model):
        return captum_attr.KernelShap(model)


__all__ = ["FeatureAblationMethod", "KernelShapMethod", "LimeMethod", "SEGMENTATIONS", "feature_masks"]
