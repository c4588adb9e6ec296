"""More faithfulness metrics: does removing what the map calls important change the model's output?

Every metric scores the map of the cube's (perturbed) image against the model on that image, for the class the
map explains (``target``: the clean prediction by default; else the clean prediction from ``clean_logits``; else
the label). "Pixels" are spatial positions (all channels together, as maps are channel-reduced), ``D = H·W``.
``f`` is the softmax probability of that class unless stated. Random draws come from the cell's per-sample seeds.

- faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): for ``runs`` random subsets ``S`` of
  ``subset_size`` pixels, the Pearson correlation between ``Σ_{p∈S} m_p`` and ``f(x) − f(x_S)``, where ``x_S`` has
  ``S`` set to ``baseline`` (0). Defaults (Quantus): 100 runs, 224 pixels at 224² (``⌈D/224⌉`` at other sizes).
- sensitivity-n (Ancona et al., ICLR 2018): the same correlation for subsets of a chosen size ``n`` (given directly
  or as ``fraction`` of ``D``); faithfulness correlation is sensitivity-n at one ``n``.
- pixel-flipping (Bach et al. 2015): pixels set to 0 in order of decreasing attribution, ``step`` at a time
  (insertion/deletion's :func:`~robustviz.metrics.faithfulness.causal_curves`); the curve ``a_1..a_n`` after each
  step; score = ``trapz(a, dx=1) / (n − 1)`` (Quantus's AUC divided by the number of intervals). Lower = faithful.
- IROF (Rieger & Hansen 2020): SLIC superpixels of the image (``skimage.segmentation.slic``, 100 segments,
  compactness 10), ordered by mean attribution, removed cumulatively (set to the image's per-channel mean);
  curve ``r_k = f(x_k)/f(x)``; score = ``(K − trapz(r, dx=1)) / K`` for ``K`` segments (Quantus's area over the
  curve divided by ``K``, so images with different segment counts compare). Higher = faithful.
- ROAD (Rong et al., ICML 2022): remove the top (MoRF) or bottom (LeRF) ``p %`` of pixels and fill them by noisy
  linear imputation — each removed pixel equals the weighted mean of its in-image 8-neighbours (weights 1/6 for
  edge and 1/12 for corner neighbours; one sparse linear system for all removed pixels) plus ``N(0, noise²)``
  (noise = 0.01). Score: the share of percentages (10, 20, …, 90 by default) at which the model still predicts the
  class (``score="accuracy"``), or the mean ``f`` (``score="probability"``). MoRF: lower = faithful; LeRF: higher.
- infidelity (Yeh et al., NeurIPS 2019): ``E_I[(Iᵀm − (f(x) − f(x − I)))²]`` over ``n`` draws
  ``I ~ N(0, σ²)`` per pixel (σ = 0.1, the same ``I`` on every channel), with ``f`` the logit the methods explain
  (``output="probability"``: the softmax). ``normalise=True`` (Captum's ``normalize``) first scales ``m`` by
  ``β = E[Iᵀm·Δf] / E[(Iᵀm)²]``, so the map's scale does not count. Lower = faithful.

The function forms take explicit subsets, segments, draws or noise so tests can feed Quantus / Captum the same.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext
from .faithfulness import causal_curves, default_step


# ------------------------------------------------------------------------------------------------------ helpers
def explained_class(context: MetricContext) -> torch.Tensor:
    """The class a map explains: ``target``, else the clean prediction, else the label."""
    if context.target is not None:
        return torch.as_tensor(context.target).long()
    if context.clean_logits is not None:
        return context.clean_logits.argmax(dim=1)
    return torch.as_tensor(context.labels).long()


def class_outputs(model: torch.nn.Module, images: torch.Tensor, classes: torch.Tensor, *, batch_size: int = 64,
                  output: str = "probability") -> torch.Tensor:
    """``f_c(images)`` in float64: softmax probability (or ``output="logit"``) of each row's class, in chunks."""
    if output not in ("probability", "logit"):
        raise InputError(f"output must be 'probability' or 'logit', got {output!r}")
    values = []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start:start + batch_size]).double()
            scores = torch.softmax(logits, dim=1) if output == "probability" else logits
            values.append(scores.gather(1, classes[start:start + batch_size].view(-1, 1).to(logits.device))[:, 0])
    return torch.cat(values) if values else torch.empty(0, dtype=torch.float64)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation; NaN where either row is constant."""
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    denominator = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denominator > 0, (a * b).sum(dim=1) / denominator, torch.full_like(denominator, math.nan))


def _check(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    if maps.shape[0] != images.shape[0] or maps[0].numel() != images.shape[2] * images.shape[3]:
        raise InputError(f"maps must be N×1×H×W matching images {tuple(images.shape)}, got {tuple(maps.shape)}")
    return maps.reshape(images.shape[0], -1).double().to(images.device)


def random_subsets(seeds: torch.Tensor, pixels: int, size: int, runs: int,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """``N×runs×size`` pixel indices: per run, ``size`` distinct pixels (the smallest of ``pixels`` uniform draws)."""
    if not 1 <= size <= pixels:
        raise InputError(f"subset size must lie in [1, {pixels}] (the number of pixels), got {size}")
    draws = rng.uniform(seeds, (runs, pixels), device)
    return draws.topk(size, dim=2, largest=False).indices


# ------------------------------------------------------------------------------------- correlation metrics
def faithfulness_correlation(model: torch.nn.Module, images: torch.Tensor, maps: torch.Tensor,
                             classes: torch.Tensor, subsets: torch.Tensor, *, baseline: float = 0.0,
                             batch_size: int = 64) -> torch.Tensor:
    """Pearson correlation over runs of ``Σ_S m`` and ``f(x) − f(x_S)`` for explicit ``subsets`` (N×runs×size)."""
    flat_maps = _check(images, maps)
    count, channels = images.shape[:2]
    runs = subsets.shape[1]
    reference = class_outputs(model, images, classes, batch_size=batch_size)
    removed = torch.zeros(count, runs, flat_maps.shape[1], dtype=torch.bool, device=images.device)
    removed.scatter_(2, subsets.to(images.device), True)
    removed = removed.view(count * runs, 1, *images.shape[2:])
    perturbed = torch.where(removed, torch.full((), baseline, dtype=images.dtype, device=images.device),
                            images.repeat_interleave(runs, dim=0))
    outputs = class_outputs(model, perturbed, classes.repeat_interleave(runs), batch_size=batch_size)
    deltas = reference.unsqueeze(1) - outputs.view(count, runs)
    sums = torch.gather(flat_maps.unsqueeze(1).expand(-1, runs, -1), 2, subsets.to(images.device)).sum(dim=2)
    return _pearson(sums, deltas)


@register("metric", "faithfulness_correlation")
class FaithfulnessCorrelation(Metric):
    """Correlation of the attribution of random pixel subsets with the output drop when they are removed."""

    name = "faithfulness_correlation"
    direction = "higher"
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions", "seeds"})

    def __init__(self, runs: int = 100, subset_size: int | None = None, baseline: float = 0.0,
                 batch_size: int = 64):
        if runs < 2:
            raise InputError(f"{self.name}: runs must be >= 2 (a correlation needs two points), got {runs}")
        self.runs, self.subset_size, self.baseline, self.batch_size = runs, subset_size, baseline, batch_size

    def size(self, height: int, width: int) -> int:
        return self.subset_size or default_step(height, width)

    def compute(self, context: MetricContext) -> torch.Tensor:
        images = context.images
        height, width = images.shape[2:]
        subsets = random_subsets(rng.substream(context.seeds, self.name), height * width, self.size(height, width),
                                 self.runs, images.device)
        return faithfulness_correlation(context.model, images, context.attributions, explained_class(context),
                                        subsets, baseline=self.baseline, batch_size=self.batch_size)


@register("metric", "sensitivity_n")
class SensitivityN(FaithfulnessCorrelation):
    """Sensitivity-n: correlation of subset attribution sums with output drops for subsets of ``n`` pixels."""

    name = "sensitivity_n"

    def __init__(self, n: int | None = None, fraction: float = 0.1, runs: int = 100, baseline: float = 0.0,
                 batch_size: int = 64):
        if n is None and not 0 < fraction <= 1:
            raise InputError(f"sensitivity_n: fraction must lie in (0, 1], got {fraction}")
        super().__init__(runs, n, baseline, batch_size)
        self.fraction = fraction

    def size(self, height: int, width: int) -> int:
        return self.subset_size or max(1, round(self.fraction * height * width))


# ------------------------------------------------------------------------------------------- pixel flipping
def pixel_flipping_score(curves: torch.Tensor) -> torch.Tensor:
    """``trapz(a_1..a_n, dx=1) / (n − 1)`` of deletion curves ``N×(n+1)`` (the unperturbed point dropped)."""
    points = curves[:, 1:]
    intervals = max(points.shape[1] - 1, 1)
    return (points.sum(dim=1) - points[:, 0] / 2 - points[:, -1] / 2) / intervals


@register("metric", "pixel_flipping")
class PixelFlipping(Metric):
    """Pixel-flipping: mean class probability while pixels are zeroed by decreasing attribution; lower is better."""

    name = "pixel_flipping"
    direction = "lower"
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions"})

    def __init__(self, step: int | None = None, batch_size: int = 64):
        self.step, self.batch_size = step, batch_size

    def compute(self, context: MetricContext) -> torch.Tensor:
        curves = causal_curves(context.model, context.images, context.attributions.to(context.images.device),
                               explained_class(context).to(context.images.device), "deletion", step=self.step,
                               batch_size=self.batch_size)
        return pixel_flipping_score(curves)


# --------------------------------------------------------------------------------------------------------- IROF
def slic_segments(images: torch.Tensor, n_segments: int = 100, compactness: float = 10.0) -> torch.Tensor:
    """SLIC superpixels per image (``skimage.segmentation.slic``, labels from 0), ``N×H×W`` int64."""
    from skimage.segmentation import slic

    pixels = images.detach().cpu().double().permute(0, 2, 3, 1).numpy()
    return torch.from_numpy(np.stack([slic(image, n_segments=n_segments, compactness=compactness, start_label=0)
                                      for image in pixels]).astype(np.int64))


def irof(model: torch.nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
         segments: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """IROF for explicit ``segments`` (``N×H×W`` labels): normalised area over the relative-probability curve."""
    flat_maps = _check(images, maps)
    reference = class_outputs(model, images, classes, batch_size=batch_size)
    scores = []
    for index in range(images.shape[0]):
        labels = segments[index].to(images.device).reshape(-1)
        present = torch.unique(labels)
        means = torch.stack([flat_maps[index][labels == label].mean() for label in present])
        order = present[torch.argsort(-means, stable=True)]
        rank = torch.empty_like(labels)
        for position, label in enumerate(order):
            rank[labels == label] = position
        steps = torch.arange(1, len(order) + 1, device=images.device)
        removed = (rank.view(1, -1) < steps.view(-1, 1)).view(len(order), 1, *images.shape[2:])
        image = images[index]
        fill = image.mean(dim=(1, 2), keepdim=True).expand_as(image)
        perturbed = torch.where(removed, fill, image)
        outputs = class_outputs(model, perturbed, classes[index].repeat(len(order)), batch_size=batch_size)
        ratios = outputs / reference[index]
        area = ratios.sum() - ratios[0] / 2 - ratios[-1] / 2  # trapz(dx=1); 0 for one segment
        scores.append((len(order) - area) / len(order))
    return torch.stack(scores)


@register("metric", "irof")
class IROF(Metric):
    """Iterative removal of features (superpixels by decreasing mean attribution): area over the probability
    curve, per segment; higher is more faithful."""

    name = "irof"
    direction = "higher"
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions"})

    def __init__(self, n_segments: int = 100, compactness: float = 10.0, batch_size: int = 64):
        self.n_segments, self.compactness, self.batch_size = n_segments, compactness, batch_size

    def compute(self, context: MetricContext) -> torch.Tensor:
        segments = slic_segments(context.images, self.n_segments, self.compactness)
        return irof(context.model, context.images, context.attributions, explained_class(context), segments,
                    batch_size=self.batch_size)


# --------------------------------------------------------------------------------------------------------- ROAD
_NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
               (1, 0, 1 / 6), (-1, 0, 1 / 6))


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image`` (C×H×W) with the pixels in ``removed`` (flat H·W indices) replaced by the solution of ROAD's
    linear system: each removed pixel = weighted mean of its in-image 8-neighbours (edges 1/6, corners 1/12)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    channels, height, width = image.shape
    flat = image.reshape(channels, -1).astype(np.float64)
    removed = np.asarray(removed, dtype=np.int64)
    if removed.size == 0:
        return flat.reshape(image.shape).copy()
    variable = np.full(height * width, -1, dtype=np.int64)
    variable[removed] = np.arange(removed.size)
    rows_y, rows_x = np.divmod(removed, width)
    weight_sum = np.zeros(removed.size)
    b = np.zeros((removed.size, channels))
    a_rows, a_cols, a_values = [], [], []
    for dy, dx, weight in _NEIGHBOURS:
        y, x = rows_y + dy, rows_x + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        ids = np.flatnonzero(inside)
        neighbour = y[inside] * width + x[inside]
        weight_sum[ids] += weight
        unknown = variable[neighbour] >= 0
        a_rows.append(ids[unknown])
        a_cols.append(variable[neighbour[unknown]])
        a_values.append(np.full(int(unknown.sum()), weight))
        b[ids[~unknown]] -= weight * flat[:, neighbour[~unknown]].T
    a_rows.append(np.arange(removed.size))
    a_cols.append(np.arange(removed.size))
    a_values.append(-weight_sum)
    matrix = coo_matrix((np.concatenate(a_values), (np.concatenate(a_rows), np.concatenate(a_cols))),
                        shape=(removed.size, removed.size)).tocsc()
    solution = spsolve(matrix, b).reshape(removed.size, channels)
    out = flat.copy()
    out[:, removed] = solution.T
    return out.reshape(image.shape)


def road_images(images: torch.Tensor, maps: torch.Tensor, percentages: Sequence[float], order: str,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Imputed images ``N×P×C×H×W``: per percentage ``p`` the top (``order="morf"``) or bottom (``"lerf"``)
    ``⌊D·p/100⌋`` pixels by attribution, filled by :func:`linear_imputation` plus ``noise`` (``N×P×C×D``)."""
    if order not in ("morf", "lerf"):
        raise InputError(f"order must be 'morf' (most relevant first) or 'lerf' (least relevant first), got {order!r}")
    flat_maps = _check(images, maps).cpu()
    pixels = flat_maps.shape[1]
    ranking = torch.argsort(flat_maps, dim=1, descending=(order == "morf"), stable=True).numpy()
    out = np.empty((images.shape[0], len(percentages), *images.shape[1:]))
    source = images.detach().cpu().double().numpy()
    for index in range(images.shape[0]):
        for column, percentage in enumerate(percentages):
            removed = ranking[index, : int(pixels * percentage / 100)]
            imputed = linear_imputation(source[index], removed)
            if noise is not None and removed.size:
                flat = imputed.reshape(imputed.shape[0], -1)
                flat[:, removed] += noise[index, column][:, removed].double().cpu().numpy()
            out[index, column] = imputed
    return torch.from_numpy(out).to(images.device, images.dtype)


def road(model: torch.nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
         percentages: Sequence[float], order: str, *, noise: torch.Tensor | None = None, score: str = "accuracy",
         batch_size: int = 64) -> torch.Tensor:
    """Per-sample ROAD curve ``N×P``: 1/0 (the class is still predicted) or its probability (``score``)."""
    if score not in ("accuracy", "probability"):
        raise InputError(f"score must be 'accuracy' or 'probability', got {score!r}")
    imputed = road_images(images, maps, percentages, order, noise).flatten(0, 1)
    repeated = classes.to(images.device).repeat_interleave(len(percentages))
    if score == "probability":
        return class_outputs(model, imputed, repeated, batch_size=batch_size).view(images.shape[0], -1)
    with torch.no_grad():
        predictions = torch.cat([model(imputed[start:start + batch_size]).argmax(dim=1)
                                 for start in range(0, imputed.shape[0], batch_size)])
    return (predictions == repeated).double().view(images.shape[0], -1)


class _ROAD(Metric):
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions", "seeds"})
    order = ""

    def __init__(self, percentages: Sequence[float] = tuple(range(10, 100, 10)), noise: float = 0.01,
                 score: str = "accuracy", batch_size: int = 64):
        if not percentages or any(not 0 <= p <= 100 for p in percentages):
            raise InputError(f"{self.name}: percentages must be a non-empty list of values in [0, 100], "
                             f"got {percentages!r}")
        self.percentages, self.noise, self.score, self.batch_size = tuple(percentages), noise, score, batch_size

    def compute(self, context: MetricContext) -> torch.Tensor:
        images = context.images
        draws = None
        if self.noise:
            draws = self.noise * rng.normal(rng.substream(context.seeds, self.name),
                                            (len(self.percentages), images.shape[1], images.shape[2] * images.shape[3]))
        curves = road(context.model, images, context.attributions, explained_class(context), self.percentages,
                      self.order, noise=draws, score=self.score, batch_size=self.batch_size)
        return curves.mean(dim=1)


@register("metric", "road_morf")
class ROADMoRF(_ROAD):
    """ROAD, most relevant pixels removed first (noisy linear imputation); lower is more faithful."""

    name = "road_morf"
    direction = "lower"
    order = "morf"


@register("metric", "road_lerf")
class ROADLeRF(_ROAD):
    """ROAD, least relevant pixels removed first (noisy linear imputation); higher is more faithful."""

    name = "road_lerf"
    direction = "higher"
    order = "lerf"


# --------------------------------------------------------------------------------------------------- infidelity
def infidelity(model: torch.nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
               perturbations: torch.Tensor, *, normalise: bool = True, output: str = "logit",
               batch_size: int = 64) -> torch.Tensor:
    """``mean_j (β·I_jᵀm − (f(x) − f(x − I_j)))²`` for explicit ``perturbations`` ``N×n×1×H×W`` (β = 1 unless
    ``normalise``)."""
    flat_maps = _check(images, maps)
    count, draws = perturbations.shape[:2]
    if perturbations.shape[2] != 1 or perturbations.shape[3:] != images.shape[2:]:
        raise InputError(f"perturbations must be N×n×1×H×W, got {tuple(perturbations.shape)}")
    perturbations = perturbations.to(images.device)
    reference = class_outputs(model, images, classes, batch_size=batch_size, output=output)
    shifted = (images.unsqueeze(1) - perturbations).flatten(0, 1)
    outputs = class_outputs(model, shifted, classes.to(images.device).repeat_interleave(draws),
                            batch_size=batch_size, output=output).view(count, draws)
    deltas = reference.unsqueeze(1) - outputs
    dots = (perturbations.flatten(2).double() * flat_maps.unsqueeze(1)).sum(dim=2)
    if normalise:
        squares = (dots * dots).mean(dim=1, keepdim=True)
        beta = (dots * deltas).mean(dim=1, keepdim=True) / torch.where(squares > 0, squares, torch.ones_like(squares))
        dots = dots * beta
    return ((dots - deltas) ** 2).mean(dim=1)


@register("metric", "infidelity")
class Infidelity(Metric):
    """Infidelity (Yeh et al. 2019): squared error of the map's prediction of output changes under Gaussian
    perturbations (scale-normalised); lower is more faithful."""

    name = "infidelity"
    direction = "lower"
    category = "faithfulness"
    needs = frozenset({"model", "images", "attributions", "seeds"})

    def __init__(self, sigma: float = 0.1, n_samples: int = 50, normalise: bool = True, output: str = "logit",
                 batch_size: int = 64):
        if n_samples < 1 or not sigma > 0:
            raise InputError(f"infidelity: n_samples must be >= 1 and sigma > 0, got {n_samples} and {sigma}")
        if output not in ("logit", "probability"):
            raise InputError(f"infidelity: output must be 'logit' or 'probability', got {output!r}")
        self.sigma, self.n_samples, self.normalise, self.output = sigma, n_samples, normalise, output
        self.batch_size = batch_size

    def compute(self, context: MetricContext) -> torch.Tensor:
        images = context.images
        noise = self.sigma * rng.normal(rng.substream(context.seeds, self.name),
                                        (self.n_samples, 1, *images.shape[2:]), images.device)
        return infidelity(context.model, images, context.attributions, explained_class(context), noise,
                          normalise=self.normalise, output=self.output, batch_size=self.batch_size)


__all__ = ["FaithfulnessCorrelation", "IROF", "Infidelity", "PixelFlipping", "ROADLeRF", "ROADMoRF", "SensitivityN",
           "class_outputs", "explained_class", "faithfulness_correlation", "infidelity", "irof",
           "linear_imputation", "pixel_flipping_score", "random_subsets", "road", "road_images", "slic_segments"]
