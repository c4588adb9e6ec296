"""Explanation robustness: how similar a sample's clean and perturbed attribution maps are.

Plain functions take two batches of maps ``N×1×H×W`` (or ``N×H×W``) and return one score per sample; the registered
metrics apply them to ``clean_attributions`` and ``attributions``. Conventions shared by every similarity
(so that identical maps always score 1 and a map that collapses to a constant is "different"):

- identical maps score 1, whatever else the formula would say (e.g. two constant maps);
- a correlation that is undefined because one map is constant scores 0.

Formulas are in docs/metrics_explanation.md. ``consistency`` / ``responsiveness`` are our formalisation of the
CAM-noise study's criteria (its exact formulas are not public).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def _flat_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise InputError(f"maps to compare must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim < 2:
        raise InputError(f"maps must be batched (N×1×H×W or N×H×W), got shape {tuple(a.shape)}")
    return a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()


def _identical(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a == b).all(dim=1)


def _maps_2d(maps: torch.Tensor) -> torch.Tensor:
    """``N×H×W`` from ``N×1×H×W`` or ``N×H×W``."""
    if maps.ndim == 4:
        if maps.shape[1] != 1:
            raise InputError(f"attribution maps must have one channel (N×1×H×W), got shape {tuple(maps.shape)}")
        return maps[:, 0]
    if maps.ndim != 3:
        raise InputError(f"attribution maps must be N×1×H×W or N×H×W, got shape {tuple(maps.shape)}")
    return maps


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``⟨a, b⟩ / (‖a‖ ‖b‖)`` over pixels, in [−1, 1]; 1 for identical maps, 0 when exactly one map is all zero."""
    a, b = _flat_pair(a, b)
    norms = a.norm(dim=1) * b.norm(dim=1)
    cosine = (a * b).sum(dim=1) / norms.clamp_min(torch.finfo(torch.float64).tiny)
    cosine = torch.where(norms > 0, cosine, torch.zeros_like(cosine)).clamp(-1.0, 1.0)
    return torch.where(_identical(a, b), torch.ones_like(cosine), cosine)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..D along the last dim with ties given their average rank (``scipy.stats.rankdata`` "average")."""
    flat = values.reshape(-1, values.shape[-1])
    rows, size = flat.shape
    sorted_values, order = flat.sort(dim=1, stable=True)
    new_group = torch.ones_like(sorted_values, dtype=torch.bool)
    new_group[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    group = new_group.cumsum(dim=1) - 1 + torch.arange(rows, device=flat.device).unsqueeze(1) * size
    positions = torch.arange(1, size + 1, device=flat.device, dtype=torch.float64).expand(rows, size)
    totals = torch.zeros(rows * size, dtype=torch.float64, device=flat.device).index_add_(0, group.reshape(-1),
                                                                                          positions.reshape(-1))
    counts = torch.zeros(rows * size, dtype=torch.float64, device=flat.device).index_add_(
        0, group.reshape(-1), torch.ones(rows * size, dtype=torch.float64, device=flat.device))
    mean_rank = (totals / counts.clamp_min(1))[group]
    ranks = torch.empty_like(mean_rank).scatter_(1, order, mean_rank)
    return ranks.reshape(values.shape)


def pearson_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row; 1 for identical rows, 0 when one row is constant."""
    a, b = _flat_pair(a, b)
    centred_a, centred_b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    norms = centred_a.norm(dim=1) * centred_b.norm(dim=1)
    correlation = (centred_a * centred_b).sum(dim=1) / norms.clamp_min(torch.finfo(torch.float64).tiny)
    correlation = torch.where(norms > 0, correlation, torch.zeros_like(correlation)).clamp(-1.0, 1.0)
    return torch.where(_identical(a, b), torch.ones_like(correlation), correlation)


def spearman_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's ρ: Pearson correlation of the average ranks of the pixels (``scipy.stats.spearmanr``)."""
    a, b = _flat_pair(a, b)
    rho = pearson_correlation(average_ranks(a), average_ranks(b))
    return torch.where(_identical(a, b), torch.ones_like(rho), rho)


def minmax_normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per-map ``(m − min) / (max − min)``; a constant map becomes all zeros."""
    flat = maps.reshape(maps.shape[0], -1).double()
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = high - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(torch.float64).tiny),
                         torch.zeros_like(flat))
    return scaled.reshape(maps.shape)


def structural_similarity(a: torch.Tensor, b: torch.Tensor, *, win_size: int = 7) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of the min-max normalised maps, as ``skimage.metrics.structural_similarity``
    with ``data_range=1`` and its defaults: uniform ``win_size²`` window, K1 = 0.01, K2 = 0.03, sample covariances
    (÷ (n−1)), mean over the positions where the window fits."""
    a, b = _maps_2d(torch.as_tensor(a)), _maps_2d(torch.as_tensor(b))
    if a.shape != b.shape:
        raise InputError(f"maps to compare must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if min(a.shape[-2:]) < win_size or win_size % 2 == 0:
        raise InputError(f"ssim needs maps of at least {win_size}×{win_size} pixels and an odd win_size; got maps "
                         f"{tuple(a.shape[-2:])}, win_size {win_size}")
    x, y = minmax_normalise(a).unsqueeze(1), minmax_normalise(b).unsqueeze(1)
    count = win_size**2
    kernel = torch.full((1, 1, win_size, win_size), 1.0 / count, dtype=torch.float64, device=x.device)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, kernel)  # valid positions only, as skimage's crop of the padded filter

    ux, uy = local_mean(x), local_mean(y)
    covariance_norm = count / (count - 1)
    vx = covariance_norm * (local_mean(x * x) - ux * ux)
    vy = covariance_norm * (local_mean(y * y) - uy * uy)
    vxy = covariance_norm * (local_mean(x * y) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def topk_intersection(a: torch.Tensor, b: torch.Tensor, *, fraction: float = 0.1, k: int | None = None,
                      absolute: bool = False) -> torch.Tensor:
    """``|top_k(a) ∩ top_k(b)| / k``: shared share of the ``k`` highest-attribution pixels (Ghorbani et al. 2019);
    ``k = round(fraction · H·W)`` unless given; ``absolute`` ranks by ``|m|``."""
    a, b = _flat_pair(a, b)
    size = a.shape[1]
    k = int(k) if k is not None else max(1, round(fraction * size))
    if not 1 <= k <= size:
        raise InputError(f"topk_intersection needs 1 <= k <= number of pixels ({size}), got {k}")
    if absolute:
        a, b = a.abs(), b.abs()
    top_a = torch.zeros_like(a, dtype=torch.bool).scatter_(1, a.topk(k, dim=1).indices, True)
    top_b = torch.zeros_like(b, dtype=torch.bool).scatter_(1, b.topk(k, dim=1).indices, True)
    shared = (top_a & top_b).sum(dim=1).double() / k
    return torch.where(_identical(a, b), torch.ones_like(shared), shared)


def superpixel_means(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """Mean attribution in each cell of a ``grid×grid`` partition (``adaptive_avg_pool2d``), flattened ``N×grid²``."""
    maps = _maps_2d(torch.as_tensor(maps)).double().unsqueeze(1)
    return F.adaptive_avg_pool2d(maps, grid).reshape(maps.shape[0], -1)


def rank_biased_overlap(ranking_a: torch.Tensor, ranking_b: torch.Tensor, p: float = 0.9) -> torch.Tensor:
    """Extrapolated RBO (Webber, Moffat & Zobel 2010, eq. 32) of two complete rankings of the same ``k`` items.

    ``ranking_*`` are ``N×k`` item indices, best first. With ``X_d = |A_{:d} ∩ B_{:d}|`` (overlap at depth d),
    ``RBO_ext = (X_k / k)·p^k + ((1 − p)/p)·Σ_{d=1..k} (X_d / d)·p^d``; 1 for identical rankings.
    """
    if not 0.0 < p < 1.0:
        raise InputError(f"RBO persistence p must lie in (0, 1), got {p}")
    ranking_a, ranking_b = torch.as_tensor(ranking_a).long(), torch.as_tensor(ranking_b).long()
    rows, size = ranking_a.shape
    depth_index = torch.arange(size, device=ranking_a.device).expand(rows, size)
    position_a = torch.empty_like(ranking_a).scatter_(1, ranking_a, depth_index)
    position_b = torch.empty_like(ranking_b).scatter_(1, ranking_b, depth_index)
    # an item is in both prefixes of length d exactly when d > max(position_a, position_b)
    joined_at = torch.maximum(position_a, position_b)
    overlap = torch.zeros(rows, size, dtype=torch.float64, device=ranking_a.device).scatter_add_(
        1, joined_at, torch.ones(rows, size, dtype=torch.float64, device=ranking_a.device)).cumsum(dim=1)
    depth = torch.arange(1, size + 1, dtype=torch.float64, device=ranking_a.device)
    weights = torch.tensor(p, dtype=torch.float64) ** depth
    return overlap[:, -1] / size * p**size + (1 - p) / p * (overlap / depth * weights).sum(dim=1)


def rbo_similarity(a: torch.Tensor, b: torch.Tensor, *, grid: int = 8, p: float = 0.9) -> torch.Tensor:
    """RBO of the two maps' superpixel rankings (``grid×grid`` cells by decreasing mean attribution; ties by cell
    index)."""
    means_a, means_b = superpixel_means(a, grid), superpixel_means(b, grid)
    ranking_a = (-means_a).argsort(dim=1, stable=True)
    ranking_b = (-means_b).argsort(dim=1, stable=True)
    return rank_biased_overlap(ranking_a, ranking_b, p)


SIMILARITIES = {"cosine": cosine_similarity, "spearman": spearman_correlation, "ssim": structural_similarity,
                "topk_intersection": topk_intersection, "rbo": rbo_similarity}


def prediction_changed(logits: torch.Tensor, clean_logits: torch.Tensor) -> torch.Tensor:
    """True where the perturbed image's predicted class differs from the clean image's."""
    return logits.argmax(dim=1) != clean_logits.argmax(dim=1)


class SimilarityMetric(Metric):
    """A similarity of the clean and perturbed maps of each sample (higher = more robust explanation)."""

    direction = "higher"
    category = "explanation-robustness"
    needs = frozenset({"attributions", "clean_attributions"})

    def similarity(self, clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
        return SIMILARITIES[self.name](clean, perturbed)

    def compute(self, context: MetricContext) -> torch.Tensor:
        return self.similarity(context.clean_attributions, context.attributions)


@register("metric", "cosine")
class CosineMetric(SimilarityMetric):
    """Cosine similarity of the clean and perturbed maps ("rationale stability")."""

    name = "cosine"


@register("metric", "spearman")
class SpearmanMetric(SimilarityMetric):
    """Spearman rank correlation of the clean and perturbed maps' pixels."""

    name = "spearman"


@register("metric", "ssim")
class SSIMMetric(SimilarityMetric):
    """SSIM of the min-max normalised clean and perturbed maps."""

    name = "ssim"

    def __init__(self, win_size: int = 7):
        self.win_size = win_size

    def similarity(self, clean, perturbed):
        return structural_similarity(clean, perturbed, win_size=self.win_size)


@register("metric", "topk_intersection")
class TopKIntersectionMetric(SimilarityMetric):
    """Share of the top-k pixels (default the top 10 %) common to the clean and perturbed maps."""

    name = "topk_intersection"

    def __init__(self, fraction: float = 0.1, k: int | None = None, absolute: bool = False):
        self.fraction, self.k, self.absolute = fraction, k, absolute

    def similarity(self, clean, perturbed):
        return topk_intersection(clean, perturbed, fraction=self.fraction, k=self.k, absolute=self.absolute)


@register("metric", "rbo")
class RBOMetric(SimilarityMetric):
    """Rank-Biased Overlap of superpixel rankings (``grid×grid`` cells, persistence ``p``)."""

    name = "rbo"

    def __init__(self, grid: int = 8, p: float = 0.9):
        self.grid, self.p = grid, p

    def similarity(self, clean, perturbed):
        return rbo_similarity(clean, perturbed, grid=self.grid, p=self.p)


class _DecisionMetric(SimilarityMetric):
    needs = frozenset({"attributions", "clean_attributions", "logits", "clean_logits"})

    def __init__(self, similarity: str = "cosine", **similarity_params):
        if similarity not in SIMILARITIES:
            raise InputError(f"unknown similarity {similarity!r}; choose one of {sorted(SIMILARITIES)}")
        self.similarity_name, self.similarity_params = similarity, similarity_params

    def similarity(self, clean, perturbed):
        return SIMILARITIES[self.similarity_name](clean, perturbed, **self.similarity_params)


@register("metric", "consistency")
class ConsistencyMetric(_DecisionMetric):
    """Similarity of the clean and perturbed maps when the predicted class is unchanged; NaN when it changed."""

    name = "consistency"

    def compute(self, context):
        score = self.similarity(context.clean_attributions, context.attributions)
        changed = prediction_changed(context.logits, context.clean_logits).to(score.device)
        return torch.where(changed, torch.full_like(score, float("nan")), score)


@register("metric", "responsiveness")
class ResponsivenessMetric(_DecisionMetric):
    """``1 − similarity`` of the clean and perturbed maps when the predicted class changed; NaN otherwise."""

    name = "responsiveness"

    def compute(self, context):
        score = 1.0 - self.similarity(context.clean_attributions, context.attributions)
        changed = prediction_changed(context.logits, context.clean_logits).to(score.device)
        return torch.where(changed, score, torch.full_like(score, float("nan")))


__all__ = ["SIMILARITIES", "average_ranks", "cosine_similarity", "minmax_normalise", "pearson_correlation",
           "prediction_changed", "rank_biased_overlap", "rbo_similarity", "spearman_correlation",
           "structural_similarity", "superpixel_means", "topk_intersection"]
