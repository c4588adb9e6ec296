"""I-ASIDE: how much a model's correct-class evidence comes from each spectral band (Zhang et al., 2024,
"Interpreting Global Perturbation Robustness of Image Models using Axiomatic Spectral Importance Decomposition",
arXiv:2408.01139).

The players of a cooperative game are the ``M`` square-ring bands of the centred spectrum
(:func:`robustviz.perturbations.spectral.band_masks`); the worth of a coalition ``S`` is

    v(S) = mean over samples of log p(y_true | x_S),

where ``x_S`` keeps the bands in ``S`` and fills the others (:func:`~robustviz.perturbations.spectral.keep_bands`).
Shapley values ψ are computed exactly over all ``2^M`` coalitions (one fixed sample set for every coalition, the
coalitions batched through the model), or estimated from random permutations for large ``M``. The spectral
importance distribution is ``SID = (ψ − min ψ) / Σ(ψ − min ψ)`` and the spectral robustness score, with
``b_k = β^k``, ``b̂ = b/‖b‖₂`` and ``D = (‖b‖₁/‖b‖₂)/M``, is ``SRS = |⟨b̂, SID⟩ − D| / |1 − D|`` — higher when the
evidence sits in low frequencies, which the paper links to robustness.
"""

from __future__ import annotations

from math import factorial
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..perturbations.spectral import FILLS, band_masks, centred_spectrum, fill_spectrum, keep_bands
from .._batching import images_per_pass
from ..registry import register
from ..rng import derive_seeds
from ..validation import InputError, check_images, check_labels
from .base import ModelMetric

ValueFunction = Callable[[np.ndarray], np.ndarray]
#: Coalitions are indexed by bit mask: coalition ``k`` contains band ``i`` when bit ``i`` of ``k`` is set.
MAX_EXACT_BANDS = 16


def all_coalitions(n_bands: int) -> np.ndarray:
    """The ``2^M × M`` bool matrix of every coalition; row ``k`` holds the bits of ``k`` (band ``i`` = bit ``i``)."""
    masks = np.arange(2 ** n_bands, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n_bands)) & 1).astype(bool)


def coalition_ids(coalitions: np.ndarray) -> np.ndarray:
    """Bit-mask index of each row of a ``K×M`` bool coalition matrix."""
    coalitions = np.asarray(coalitions, dtype=bool)
    return coalitions.astype(np.int64) @ (np.int64(1) << np.arange(coalitions.shape[-1], dtype=np.int64))


def _exact_shapley(values: np.ndarray, n_bands: int) -> np.ndarray:
    """ψ_i = Σ_{S ∌ i} |S|!(M−|S|−1)!/M! · (v(S ∪ {i}) − v(S)) over a bit-mask-indexed value table."""
    masks = np.arange(2 ** n_bands, dtype=np.int64)
    sizes = np.array([bin(mask).count("1") for mask in range(2 ** n_bands)])
    weights = np.array([factorial(s) * factorial(n_bands - s - 1) / factorial(n_bands) for s in range(n_bands)])
    psi = np.empty(n_bands)
    for band in range(n_bands):
        without = masks[(masks >> band) & 1 == 0]
        psi[band] = np.sum(weights[sizes[without]] * (values[without | (1 << band)] - values[without]))
    return psi


def _permutation_shapley(value_fn: ValueFunction, n_bands: int, n_permutations: int, seed: int) -> np.ndarray:
    """Monte-Carlo Shapley: mean marginal contribution along random orderings (each distinct coalition evaluated
    once). Efficiency Σψ = v(all) − v(∅) holds exactly for every ordering."""
    if n_permutations < 1:
        raise InputError(f"n_permutations must be ≥ 1, got {n_permutations}")
    rng = np.random.default_rng(int(seed) & ((1 << 63) - 1))
    orders = np.stack([rng.permutation(n_bands) for _ in range(n_permutations)])
    # Coalition after adding the first t players of each ordering, t = 0..M.
    chains = np.zeros((n_permutations, n_bands + 1, n_bands), dtype=bool)
    for step in range(n_bands):
        chains[:, step + 1] = chains[:, step]
        chains[np.arange(n_permutations), step + 1, orders[:, step]] = True
    ids = coalition_ids(chains.reshape(-1, n_bands))
    unique_ids, inverse = np.unique(ids, return_inverse=True)
    unique = ((unique_ids[:, None] >> np.arange(n_bands)) & 1).astype(bool)
    worth = np.asarray(value_fn(unique), dtype=np.float64).reshape(-1)[inverse].reshape(n_permutations, n_bands + 1)
    gains = np.diff(worth, axis=1)  # gain of the player added at each step
    psi = np.zeros(n_bands)
    np.add.at(psi, orders.reshape(-1), gains.reshape(-1))
    return psi / n_permutations


def shapley_values(values: np.ndarray | ValueFunction, n_bands: int, *, method: str = "exact",
                   n_permutations: int = 200, seed: int = 0) -> np.ndarray:
    """Shapley values of ``n_bands`` players.

    ``values`` is either the table of all ``2^M`` coalition worths indexed by bit mask (see
    :func:`all_coalitions`), or a function mapping a ``K×M`` bool coalition matrix to ``K`` worths.
    ``method="exact"`` sums over all coalitions; ``"permutation"`` averages marginal contributions over
    ``n_permutations`` random orderings drawn from ``seed`` (needs a function or a table).
    """
    if not isinstance(n_bands, (int, np.integer)) or n_bands < 1:
        raise InputError(f"n_bands must be a positive integer, got {n_bands!r}")
    if method not in ("exact", "permutation"):
        raise InputError(f"method must be 'exact' or 'permutation', got {method!r}")
    if not callable(values):
        table = np.asarray(values, dtype=np.float64).reshape(-1)
        if table.size != 2 ** n_bands:
            raise InputError(f"a value table for {n_bands} players needs 2^{n_bands} = {2 ** n_bands} entries "
                             f"(indexed by bit mask), got {table.size}")
        value_fn: ValueFunction = lambda coalitions: table[coalition_ids(coalitions)]  # noqa: E731
    else:
        value_fn = values
        table = None
    if method == "permutation":
        return _permutation_shapley(value_fn, int(n_bands), n_permutations, seed)
    if n_bands > MAX_EXACT_BANDS:
        raise InputError(f"exact Shapley over {n_bands} players needs 2^{n_bands} coalitions; use "
                         f"method='permutation' or at most {MAX_EXACT_BANDS} bands")
    if table is None:
        table = np.asarray(value_fn(all_coalitions(n_bands)), dtype=np.float64).reshape(-1)
    return _exact_shapley(table, int(n_bands))


def sid(psi: np.ndarray) -> np.ndarray:
    """Spectral importance distribution ``(ψ − min ψ) / Σ(ψ − min ψ)`` along the last axis (uniform when all ψ are
    equal, where the ratio is 0/0)."""
    psi = np.asarray(psi, dtype=np.float64)
    shifted = psi - psi.min(axis=-1, keepdims=True)
    total = shifted.sum(axis=-1, keepdims=True)
    uniform = np.full_like(shifted, 1.0 / psi.shape[-1])
    return np.where(total > 0, shifted / np.where(total > 0, total, 1.0), uniform)


def srs(distribution: np.ndarray, beta: float = 0.75) -> np.ndarray | float:
    """Spectral robustness score ``|⟨b̂, SID⟩ − D| / |1 − D|`` with ``b_k = β^k``, ``b̂ = b/‖b‖₂``,
    ``D = (‖b‖₁/‖b‖₂)/M``, along the last axis. It is 0 for a uniform SID and grows as the mass moves to the
    low bands (0.5217 for all mass on band 0 with M = 8, β = 0.75)."""
    distribution = np.asarray(distribution, dtype=np.float64)
    if not 0.0 < beta < 1.0:
        raise InputError(f"beta must lie in (0, 1), got {beta}")
    n_bands = distribution.shape[-1]
    weights = beta ** np.arange(n_bands, dtype=np.float64)
    unit = weights / np.linalg.norm(weights)
    reference = (np.abs(weights).sum() / np.linalg.norm(weights)) / n_bands
    score = np.abs(distribution @ unit - reference) / abs(1.0 - reference)
    return float(score) if np.ndim(score) == 0 else score


@torch.no_grad()
def coalition_values(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, n_bands: int,
                     fill: str = "zero", *, coalitions: np.ndarray | None = None, seeds: torch.Tensor | None = None,
                     fill_images: torch.Tensor | None = None, batch_size: int = 512) -> np.ndarray:
    """``v(S)`` = mean log-softmax of the true class over the samples, for every coalition.

    With ``coalitions=None`` returns all ``2^M`` values indexed by bit mask; otherwise one value per row of the
    ``K×M`` bool ``coalitions``. The same images (and the same per-sample noise for ``fill="noise"``) serve every
    coalition; coalition images go through the model in batches of about ``batch_size`` images. ``fill="image"``
    without ``fill_images`` borrows each sample's spectrum from the next sample (a fixed cyclic shift).
    """
    check_images(images)
    labels = check_labels(labels, images.shape[0], num_classes=getattr(model, "num_classes", None)).to(images.device)
    if fill not in FILLS:
        raise InputError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "image" and fill_images is None:
        if images.shape[0] < 2:
            raise InputError("fill='image' needs at least two images (or fill_images=)")
        fill_images = images.roll(1, dims=0)
    table = all_coalitions(n_bands) if coalitions is None else np.asarray(coalitions, dtype=bool)
    if table.ndim != 2 or table.shape[1] != n_bands:
        raise InputError(f"coalitions must be a K×{n_bands} bool matrix, got shape {table.shape}")
    band_masks(images.shape[-2], images.shape[-1], n_bands)  # clear error for images too small for M bands
    n_images = images.shape[0]
    values = np.empty(table.shape[0], dtype=np.float64)
    batch_size = images_per_pass(batch_size, *images.shape[-2:])  # memory bounded at large sizes
    image_chunk = max(1, min(n_images, batch_size))
    coalition_chunk = max(1, batch_size // image_chunk)
    for start_image in range(0, n_images, image_chunk):
        block = slice(start_image, start_image + image_chunk)
        chunk_images = images[block]
        spectrum = centred_spectrum(chunk_images)
        fill_values = fill_spectrum(chunk_images, fill, seeds=None if seeds is None else seeds[block],
                                    fill_images=None if fill_images is None else fill_images[block])
        for start in range(0, table.shape[0], coalition_chunk):
            keep = table[start:start + coalition_chunk]
            filtered = keep_bands(chunk_images, torch.from_numpy(keep), fill=fill, spectrum=spectrum,
                                  fill_values=fill_values)
            n_kept = filtered.shape[0]
            logits = model(filtered.flatten(0, 1))
            log_prob = torch.log_softmax(logits.double(), dim=-1)
            true_class = labels[block].repeat(n_kept)
            picked = log_prob.gather(1, true_class[:, None]).reshape(n_kept, -1)
            sums = picked.sum(1).cpu().numpy()
            if start_image == 0:
                values[start:start + n_kept] = sums
            else:
                values[start:start + n_kept] += sums
    return values / n_images


@register("metric", "iaside")
class IASIDE(ModelMetric):
    """I-ASIDE spectral importance of a model on clean samples: Shapley values per band, SID and SRS.

    Parameters: ``n_bands`` (M, default 8), ``fill`` ("zero", "noise" or "image"), ``n_samples`` (cap on the
    samples used; all when None), ``beta`` (SRS decay, 0.75), ``method`` ("exact" over 2^M coalitions, or
    "permutation" with ``n_permutations``), ``batch_size`` (images per forward pass).
    """

    name = "iaside"
    direction = "higher"  # of the headline score, SRS
    category = "model-robustness"
    #: Per-variable metadata (direction, long_name) for the cube; the metric-wide ``direction`` is SRS's.
    variable_attrs: Mapping[str, Mapping[str, str]] = {
        "shapley": {"direction": "none", "long_name": "Shapley value of the spectral band (I-ASIDE)"},
        "sid": {"direction": "none", "long_name": "spectral importance distribution (I-ASIDE)"},
        "srs": {"direction": "higher", "long_name": "spectral robustness score (I-ASIDE)"},
        "v_full": {"direction": "none", "long_name": "mean log p(true class), all bands kept"},
        "v_empty": {"direction": "none", "long_name": "mean log p(true class), no band kept (zero image)"},
    }

    def __init__(self, n_bands: int = 8, fill: str = "zero", n_samples: int | None = 256, beta: float = 0.75,
                 method: str = "exact", n_permutations: int = 200, batch_size: int = 512):
        if not isinstance(n_bands, int) or n_bands < 1:
            raise InputError(f"iaside: n_bands must be a positive int, got {n_bands!r}")
        if fill not in FILLS:
            raise InputError(f"iaside: fill must be one of {FILLS}, got {fill!r}")
        if method not in ("exact", "permutation"):
            raise InputError(f"iaside: method must be 'exact' or 'permutation', got {method!r}")
        if method == "exact" and n_bands > MAX_EXACT_BANDS:
            raise InputError(f"iaside: exact Shapley with {n_bands} bands needs 2^{n_bands} coalitions; use "
                             f"method='permutation' or n_bands ≤ {MAX_EXACT_BANDS}")
        if n_samples is not None and n_samples < 1:
            raise InputError(f"iaside: n_samples must be ≥ 1 or None, got {n_samples}")
        srs(np.full(n_bands, 1.0 / n_bands), beta)  # validates beta
        self.n_bands, self.fill, self.n_samples, self.beta = n_bands, fill, n_samples, beta
        self.method, self.n_permutations, self.batch_size = method, n_permutations, batch_size

    @property
    def coords(self) -> Mapping[str, Any]:
        return {"band": np.arange(self.n_bands, dtype=np.int64)}

    @property
    def variables(self) -> Mapping[str, tuple[str, ...]]:
        return {"shapley": ("band",), "sid": ("band",), "srs": (), "v_full": (), "v_empty": ()}

    def compute(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                seed: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        if self.n_samples is not None:
            images, labels = images[: self.n_samples], labels[: self.n_samples]
        seeds = derive_seeds(seed, torch.arange(images.shape[0]), "iaside")

        def value_fn(coalitions: np.ndarray) -> np.ndarray:
            return coalition_values(model, images, labels, self.n_bands, self.fill, coalitions=coalitions,
                                    seeds=seeds, batch_size=self.batch_size)

        if self.method == "exact":
            table = value_fn(all_coalitions(self.n_bands))
            psi = shapley_values(table, self.n_bands)
            v_full, v_empty = table[-1], table[0]
        else:
            psi = shapley_values(value_fn, self.n_bands, method="permutation", n_permutations=self.n_permutations,
                                 seed=seed)
            ends = value_fn(np.stack([np.ones(self.n_bands, bool), np.zeros(self.n_bands, bool)]))
            v_full, v_empty = ends
        distribution = sid(psi)
        return {
            "shapley": (("band",), psi),
            "sid": (("band",), distribution),
            "srs": ((), np.asarray(srs(distribution, self.beta))),
            "v_full": ((), np.asarray(v_full)),
            "v_empty": ((), np.asarray(v_empty)),
        }


__all__ = ["IASIDE", "all_coalitions", "coalition_ids", "coalition_values", "shapley_values", "sid", "srs"]
