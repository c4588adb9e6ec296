"""Sanity checks as per-sample metrics: does the explanation depend on the model's parameters and on the class?

- MPRT, model-parameter randomisation test (Adebayo et al., NeurIPS 2018), cascading from the top: a copy of the
  model has its layers re-initialised one after another from the output towards the input (every module with
  ``reset_parameters``, in reverse ``named_modules`` order, as Quantus's ``get_random_layer_generator``; before each
  reset the generator is seeded with ``seed + 1``, Quantus's convention, so the randomised models are the same for
  every sample, batch and device). After each layer the method explains the image again (same class, same method
  seeds) and the map is compared with the original map by ``similarity`` (Spearman's ρ of ``|m|`` by default,
  Quantus's ``abs=True``). Score: the mean similarity over the randomised layers (``layers="last"``: only the fully
  randomised model, which costs one explanation instead of one per layer). Lower = the map follows the model.
- smooth MPRT (Hedström et al. 2023): as MPRT, but both maps are averages over ``n_noise`` copies of the image with
  ``N(0, σ²)`` noise (σ = 0.1) — denoising gradient-based maps before they are compared.
- efficient MPRT (eMPRT, Hedström et al. 2023): the relative rise of the explanation's complexity from the original
  to the fully randomised model, ``(H(m_rand) − H(m)) / H(m)``, with ``H`` the discrete entropy (nats) of a
  ``n_bins`` (100) histogram of the map's values (Quantus's ``discrete_entropy``). Higher = the map degrades with
  the model, as it should.
- random-logit test (Sixt et al., ICML 2020): the similarity between the map of the explained class and the map
  of a class drawn uniformly from the other classes (per-sample seed). Default similarity: SSIM of the min-max
  normalised maps (:func:`~robustviz.metrics.explanation.structural_similarity`). Lower = class-sensitive.

Maps are recomputed with the method the cube used (``context.method``), so these metrics cost one (or ``n_noise``)
extra explanation per randomised layer.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import numpy as np
import torch

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext
from .explanation import cosine_similarity, pearson_correlation, spearman_correlation, structural_similarity

SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "spearman": spearman_correlation, "pearson": pearson_correlation, "cosine": cosine_similarity,
    "ssim": structural_similarity,
}


def _similarity(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in SIMILARITIES:
        raise InputError(f"similarity must be one of {sorted(SIMILARITIES)}, got {name!r}")
    return SIMILARITIES[name]


def resettable_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The modules MPRT randomises (those with ``reset_parameters``), in ``named_modules`` order."""
    return [(name, module) for name, module in model.named_modules() if hasattr(module, "reset_parameters")]


def randomised_layers(model: torch.nn.Module, seed: int = 42) -> Iterator[tuple[str, torch.nn.Module]]:
    """Cascading top-down randomisation: yields ``(layer name, model copy)`` after each further layer is reset.

    Each layer is reset on a CPU copy (so the weights do not depend on the device) with the global generator
    seeded with ``seed + 1`` inside ``fork_rng`` (the caller's random state is untouched), then loaded into one
    copy of the model on its device: each yielded model has one more layer reset.
    """
    randomised = copy.deepcopy(model)
    modules = resettable_layers(randomised)
    if not modules:
        raise InputError("model parameter randomisation needs a model with layers that have reset_parameters()")
    for name, module in reversed(modules):
        fresh = copy.deepcopy(module).cpu()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            fresh.reset_parameters()
        module.load_state_dict(fresh.state_dict())
        yield name, randomised


def discrete_entropy(maps: torch.Tensor, n_bins: int = 100) -> torch.Tensor:
    """Entropy (nats) of a ``n_bins`` equal-width histogram of each map's values (``numpy.histogram`` bins)."""
    values = maps.reshape(maps.shape[0], -1).double().cpu().numpy()
    out = []
    for row in values:
        counts, _ = np.histogram(row, bins=n_bins)
        share = counts[counts > 0] / counts.sum()
        out.append(float(-(share * np.log(share)).sum()))
    return torch.tensor(out, dtype=torch.float64)


class _SanityMetric(Metric):
    category = "randomisation"
    direction = "lower"
    needs = frozenset({"model", "method", "images", "attributions"})

    def _setup(self, context: MetricContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The explained class, the method seeds, and whether ``context.attributions`` is the map for them."""
        seeds = context.method_seeds if context.method_seeds is not None else context.seeds
        if seeds is None:
            seeds = torch.zeros(context.images.shape[0], dtype=torch.int64)
        if context.target is not None:
            return torch.as_tensor(context.target).long(), torch.as_tensor(seeds, dtype=torch.int64), True
        source = context.clean_logits.argmax(1) if context.clean_logits is not None else context.labels
        if source is None:
            raise InputError(f"{self.name} needs the explained class: give target, clean_logits or labels")
        return torch.as_tensor(source).long(), torch.as_tensor(seeds, dtype=torch.int64), False

    @staticmethod
    def _explain(method, model: torch.nn.Module, images: torch.Tensor, classes: torch.Tensor,
                 seeds: torch.Tensor) -> torch.Tensor:
        maps = method.explain(model, images, classes.to(images.device), seeds=seeds.cpu())
        maps = maps.sum(dim=1, keepdim=True) if maps.shape[1] != 1 else maps
        return maps.detach()


class _ParameterRandomisation(_SanityMetric):
    reuses_map = True  # the original map is the cube's own (False: recomputed, e.g. smoothed)

    def __init__(self, similarity: str = "spearman", layers: str = "all", absolute: bool = True, seed: int = 42):
        if layers not in ("all", "last"):
            raise InputError(f"{self.name}: layers must be 'all' (mean over the cascade) or 'last' (fully "
                             f"randomised model only), got {layers!r}")
        self.similarity, self.layers, self.absolute, self.seed = _similarity(similarity), layers, absolute, seed

    def _maps(self, method, model, images, classes, seeds) -> torch.Tensor:
        return self._explain(method, model, images, classes, seeds)

    def layer_similarities(self, context: MetricContext) -> dict[str, torch.Tensor]:
        """``{layer: per-sample similarity}`` after each step of the cascade (only the last for ``layers="last"``)."""
        classes, seeds, reuse = self._setup(context)
        images = context.images
        with torch.enable_grad():
            original = context.attributions if reuse and self.reuses_map else \
                self._maps(context.method, context.model, images, classes, seeds)
            original = original.abs() if self.absolute else original
            n_layers = len(resettable_layers(context.model))
            results = {}
            for position, (name, randomised) in enumerate(randomised_layers(context.model, self.seed)):
                if self.layers == "last" and position < n_layers - 1:
                    continue
                maps = self._maps(context.method, randomised, images, classes, seeds)
                maps = maps.abs() if self.absolute else maps
                results[name] = self.similarity(original.to(maps.device), maps).cpu()
        return results

    def compute(self, context: MetricContext) -> torch.Tensor:
        return torch.stack(list(self.layer_similarities(context).values())).mean(dim=0)


@register("metric", "mprt")
class MPRT(_ParameterRandomisation):
    """Model-parameter randomisation test: similarity of the map before and after cascading randomisation of
    the layers from the top (mean over layers); lower means the map depends on the model."""

    name = "mprt"


@register("metric", "smooth_mprt")
class SmoothMPRT(_ParameterRandomisation):
    """Smooth MPRT: MPRT on maps averaged over noisy copies of the image (denoised); lower is better."""

    name = "smooth_mprt"
    reuses_map = False

    def __init__(self, similarity: str = "spearman", layers: str = "all", absolute: bool = True, seed: int = 42,
                 n_noise: int = 50, sigma: float = 0.1):
        super().__init__(similarity, layers, absolute, seed)
        if n_noise < 1 or not sigma >= 0:
            raise InputError(f"smooth_mprt: n_noise must be >= 1 and sigma >= 0, got {n_noise} and {sigma}")
        self.n_noise, self.sigma = n_noise, sigma
        self._noise: torch.Tensor | None = None

    def _maps(self, method, model, images, classes, seeds) -> torch.Tensor:
        noise = self._noise
        total = torch.zeros(images.shape[0], 1, *images.shape[2:], dtype=torch.float64, device=images.device)
        for draw in range(self.n_noise):
            total += self._explain(method, model, images + noise[:, draw], classes, seeds).double()
        return total / self.n_noise

    def compute(self, context: MetricContext) -> torch.Tensor:
        images = context.images
        seeds = context.seeds if context.seeds is not None else torch.zeros(images.shape[0], dtype=torch.int64)
        self._noise = self.sigma * rng.normal(rng.substream(seeds, self.name), (self.n_noise, *images.shape[1:]),
                                              images.device)
        try:
            return super().compute(context)
        finally:
            self._noise = None


@register("metric", "efficient_mprt")
class EfficientMPRT(_SanityMetric):
    """Efficient MPRT: relative rise of the map's histogram entropy from the original to the fully randomised
    model; higher means the map degrades with the model, as it should."""

    name = "efficient_mprt"
    direction = "higher"

    def __init__(self, n_bins: int = 100, absolute: bool = False, seed: int = 42):
        if n_bins < 2:
            raise InputError(f"efficient_mprt: n_bins must be >= 2, got {n_bins}")
        self.n_bins, self.absolute, self.seed = n_bins, absolute, seed

    def compute(self, context: MetricContext) -> torch.Tensor:
        classes, seeds, reuse = self._setup(context)
        original = context.attributions if reuse else self._explain(context.method, context.model, context.images,
                                                                    classes, seeds)
        with torch.enable_grad():
            *_, (_, randomised) = randomised_layers(context.model, self.seed)
            maps = self._explain(context.method, randomised, context.images, classes, seeds)
        prepare = (lambda m: m.abs()) if self.absolute else (lambda m: m)
        before = discrete_entropy(prepare(original), self.n_bins)
        after = discrete_entropy(prepare(maps), self.n_bins)
        return torch.where(before > 0, (after - before) / before, torch.full_like(before, float("nan")))


def other_classes(seeds: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """A class drawn uniformly from the ``n_classes − 1`` classes other than ``classes`` (one per seed)."""
    if n_classes < 2:
        raise InputError(f"the random-logit test needs at least 2 classes, got {n_classes}")
    draws = rng.randint(seeds, n_classes - 1).to(classes.device)
    return draws + (draws >= classes).long()


@register("metric", "random_logit")
class RandomLogit(_SanityMetric):
    """Random-logit test: similarity of the map for the explained class and for a random other class; lower
    means the map is class-sensitive."""

    name = "random_logit"
    needs = frozenset({"model", "method", "images", "attributions", "seeds", "logits"})

    def __init__(self, similarity: str = "ssim"):
        self.similarity = _similarity(similarity)

    def compute(self, context: MetricContext) -> torch.Tensor:
        classes, seeds, reuse = self._setup(context)
        original = context.attributions if reuse else self._explain(context.method, context.model, context.images,
                                                                    classes, seeds)
        other = other_classes(rng.substream(context.seeds, self.name), classes, context.logits.shape[1])
        with torch.enable_grad():
            maps = self._explain(context.method, context.model, context.images, other, seeds)
        return self.similarity(original.to(maps.device), maps)


__all__ = ["EfficientMPRT", "MPRT", "RandomLogit", "SIMILARITIES", "SmoothMPRT", "discrete_entropy",
           "other_classes", "randomised_layers", "resettable_layers"]
