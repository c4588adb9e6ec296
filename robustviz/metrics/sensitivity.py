"""Sensitivity of an explanation to small input noise: max-sensitivity (Yeh et al. 2019) and local Lipschitz
estimate (Alvarez-Melis & Jaakkola 2018).

With ``Φ`` the method's map and draws ``δ_1..δ_n`` per sample:

- max-sensitivity ``= max_j ‖Φ(x + δ_j) − Φ(x)‖₂ / ‖Φ(x)‖₂`` with ``δ ~ U[−r, r]`` elementwise. Two named
  conventions: ``max_sensitivity`` (Captum's ``sensitivity_max`` defaults: r = 0.02, n = 10) and
  ``max_sensitivity_quantus`` (Quantus's ``MaxSensitivity`` defaults: r = 0.2, n = 200). Both divide by ``‖Φ(x)‖``
  (Captum 0.9 does too; a zero map is divided by 1); ``normalise=False`` gives the raw norm.
- local Lipschitz ``= max_j ‖Φ(x + δ_j) − Φ(x)‖₂ / ‖δ_j‖₂`` with ``δ ~ N(0, σ²)``, σ = 0.1 (Quantus's
  ``LocalLipschitzEstimate``).

As in Captum and Quantus the noisy images are not clipped to [0, 1] (``clip=True`` clips). The draws come from the
cell's per-sample seeds (:mod:`robustviz.rng`), and ``Φ`` is computed with the same method seeds for ``x`` and
every ``x + δ`` (so SmoothGrad/RISE noise does not count as sensitivity) — in the cube, the seeds the engine gave
the method, so ``Φ(x)`` is the cube's own map and is reused rather than recomputed. The explained class is the class
predicted on the clean image (``clean_logits``), else the label. The function forms take explicit draws so tests
can feed the same ``δ`` to Captum and Quantus.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext

Explainer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images, index of the sample) -> maps


def _perturbed_maps(explain: Explainer, images: torch.Tensor, deltas: torch.Tensor, batch_size: int,
                    clip: bool) -> torch.Tensor:
    """Maps of ``images + deltas`` (``deltas`` ``N×n×C×H×W``) flattened to ``N×n×D``, ``batch_size`` per call."""
    count, draws = deltas.shape[:2]
    if deltas.shape[0] != images.shape[0] or deltas.shape[2:] != images.shape[1:]:
        raise InputError(f"deltas must have shape N×n×C×H×W = ({images.shape[0]}, n, "
                         f"{', '.join(map(str, images.shape[1:]))}), got {tuple(deltas.shape)}")
    noisy = (images.unsqueeze(1) + deltas).flatten(0, 1)
    if clip:
        noisy = noisy.clamp(0.0, 1.0)
    sample_index = torch.arange(count, device=images.device).repeat_interleave(draws)
    chunks = [explain(noisy[start:start + batch_size], sample_index[start:start + batch_size])
              for start in range(0, noisy.shape[0], batch_size)]
    return torch.cat(chunks).reshape(count, draws, -1).double()


def _reference_maps(explain: Explainer, images: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    """``Φ(x)`` flattened to ``N×D`` float64: ``reference`` when given, else computed."""
    count = images.shape[0]
    if reference is None:
        reference = explain(images, torch.arange(count, device=images.device))
    return reference.reshape(count, -1).double()


def max_sensitivity(explain: Explainer, images: torch.Tensor, deltas: torch.Tensor, *, normalise: bool = True,
                    batch_size: int = 64, clip: bool = False, reference: torch.Tensor | None = None) -> torch.Tensor:
    """``max_j ‖Φ(x+δ_j) − Φ(x)‖₂ (/ ‖Φ(x)‖₂)`` per sample for explicit draws ``deltas`` (``N×n×C×H×W``).

    ``explain(images, sample_index)`` returns the maps of ``images``, where ``sample_index`` says which original
    sample each row belongs to (to pick its method seed and target). ``reference``: ``Φ(x)`` when already known.
    """
    reference = _reference_maps(explain, images, reference)
    perturbed = _perturbed_maps(explain, images, deltas, batch_size, clip)
    distances = (perturbed - reference.unsqueeze(1)).norm(dim=2)
    if normalise:
        norms = reference.norm(dim=1, keepdim=True)
        distances = distances / torch.where(norms == 0, torch.ones_like(norms), norms)
    return distances.max(dim=1).values


def local_lipschitz(explain: Explainer, images: torch.Tensor, deltas: torch.Tensor, *, batch_size: int = 64,
                    clip: bool = False, reference: torch.Tensor | None = None) -> torch.Tensor:
    """``max_j ‖Φ(x+δ_j) − Φ(x)‖₂ / ‖δ_j‖₂`` per sample for explicit draws ``deltas`` (``N×n×C×H×W``);
    ``reference``: ``Φ(x)`` when already known."""
    reference = _reference_maps(explain, images, reference)
    perturbed = _perturbed_maps(explain, images, deltas, batch_size, clip)
    steps = deltas.flatten(2).double()
    if clip:
        steps = ((images.unsqueeze(1) + deltas).clamp(0, 1) - images.unsqueeze(1)).flatten(2).double()
    return ((perturbed - reference.unsqueeze(1)).norm(dim=2) / steps.norm(dim=2)).max(dim=1).values


def method_explainer(method, model: torch.nn.Module, targets: torch.Tensor, seeds: torch.Tensor) -> Explainer:
    """An :data:`Explainer` running ``method`` without the [0, 1] check (noisy images may leave the range),
    with each row's sample target and method seed."""

    def explain(images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        index = sample_index.cpu()
        maps = method.explain(model, images, targets[index].to(images.device), seeds=seeds[index])
        return maps.sum(dim=1, keepdim=True).detach() if maps.shape[1] != 1 else maps.detach()

    return explain


class _SensitivityMetric(Metric):
    category = "sensitivity"
    direction = "lower"
    needs = frozenset({"model", "method", "images", "seeds", "labels"})

    def __init__(self, n_samples: int, batch_size: int = 64, clip: bool = False):
        if n_samples < 1:
            raise InputError(f"{self.name}: n_samples must be >= 1, got {n_samples}")
        self.n_samples, self.batch_size, self.clip = n_samples, batch_size, clip

    def _setup(self, context: MetricContext) -> tuple[Explainer, torch.Tensor, torch.Tensor | None]:
        """The explainer (method seeds: the engine's when it passed them, else the cell's), the cell's seeds for
        the draws, and ``Φ(x)`` when the context's attributions are exactly that (same seeds and target)."""
        seeds = torch.as_tensor(context.seeds, dtype=torch.int64).cpu()
        source = torch.as_tensor(
            context.clean_logits.argmax(dim=1) if context.clean_logits is not None else context.labels).cpu()
        if context.method_seeds is None:
            return method_explainer(context.method, context.model, source, seeds), seeds, None
        method_seeds = torch.as_tensor(context.method_seeds, dtype=torch.int64).cpu()
        same_target = context.target is not None and torch.equal(torch.as_tensor(context.target).cpu(), source)
        reference = context.attributions if same_target else None
        return method_explainer(context.method, context.model, source, method_seeds), seeds, reference


@register("metric", "max_sensitivity")
class MaxSensitivity(_SensitivityMetric):
    """Max-sensitivity, Captum's convention: ``δ ~ U[−r, r]``, r = 0.02, n = 10, divided by ‖Φ(x)‖."""

    name = "max_sensitivity"

    def __init__(self, radius: float = 0.02, n_samples: int = 10, normalise: bool = True, batch_size: int = 64,
                 clip: bool = False):
        super().__init__(n_samples, batch_size, clip)
        self.radius, self.normalise = radius, normalise

    def compute(self, context):
        explain, seeds, reference = self._setup(context)
        images = context.images
        uniform = rng.uniform(rng.substream(seeds, self.name), (self.n_samples, *images.shape[1:]), images.device)
        deltas = (2 * uniform - 1) * self.radius
        return max_sensitivity(explain, images, deltas, normalise=self.normalise, batch_size=self.batch_size,
                               clip=self.clip, reference=reference)


@register("metric", "max_sensitivity_quantus")
class MaxSensitivityQuantus(MaxSensitivity):
    """Max-sensitivity, Quantus's convention: r = 0.2, n = 200 (pass a smaller ``n_samples`` for speed)."""

    name = "max_sensitivity_quantus"

    def __init__(self, radius: float = 0.2, n_samples: int = 200, normalise: bool = True, batch_size: int = 64,
                 clip: bool = False):
        super().__init__(radius, n_samples, normalise, batch_size, clip)


@register("metric", "local_lipschitz")
class LocalLipschitz(_SensitivityMetric):
    """Local Lipschitz estimate: ``max_j ‖Φ(x+δ_j) − Φ(x)‖ / ‖δ_j‖``, ``δ ~ N(0, σ²)``, σ = 0.1, n = 200."""

    name = "local_lipschitz"

    def __init__(self, sigma: float = 0.1, n_samples: int = 200, batch_size: int = 64, clip: bool = False):
        super().__init__(n_samples, batch_size, clip)
        self.sigma = sigma

    def compute(self, context):
        explain, seeds, reference = self._setup(context)
        images = context.images
        deltas = self.sigma * rng.normal(rng.substream(seeds, self.name), (self.n_samples, *images.shape[1:]),
                                         images.device)
        return local_lipschitz(explain, images, deltas, batch_size=self.batch_size, clip=self.clip,
                               reference=reference)


__all__ = ["LocalLipschitz", "MaxSensitivity", "MaxSensitivityQuantus", "local_lipschitz", "max_sensitivity",
           "method_explainer"]
