"""Statistics on results cubes: bootstrap CIs, Friedman / Wilcoxon–Holm method comparisons, Nemenyi critical
differences, paired effect sizes, CAM-noise criteria.

Everything here works on plain numpy arrays or on a cube (``xarray.Dataset`` with dims ``model, perturbation,
severity, method, sample``). The ``ds.rv`` accessor exposes :func:`compare_methods` and :func:`cam_robustness`.

This module stands alone: it imports only numpy, scipy, pandas and xarray.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats as scipy_stats

_BOOT_CHUNK_ELEMENTS = 2**24  # bound the (rows × n_boot) work array of bootstrap_ci


# --------------------------------------------------------------------------------------------------------- bootstrap
def bootstrap_ci(values: np.ndarray, axis: int = -1, n_boot: int = 1000, ci: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap confidence interval of ``values`` along ``axis``, ignoring NaNs.

    Each bootstrap replicate resamples the positions along ``axis`` with replacement (the same resampled positions
    for every other index, drawn once from ``seed``) and takes the NaN-ignoring mean; the interval is the
    ``(1 − ci)/2`` and ``(1 + ci)/2`` percentiles of the replicates. Vectorised as a matrix product of the values
    with a multinomial count matrix, so it costs one ``(rows × n) @ (n × n_boot)`` product.

    Returns ``(mean, low, high)``, each with ``axis`` removed. All-NaN rows give NaN.
    """
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    array = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    out_shape = array.shape[:-1]
    n = array.shape[-1]
    flat = array.reshape(-1, n)
    valid = ~np.isnan(flat)
    filled = np.where(valid, flat, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / valid.sum(axis=1)
    if n == 0:
        nan = np.full(out_shape, np.nan)
        return nan, nan.copy(), nan.copy()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).T.astype(np.float64)  # n × n_boot
    low = np.empty(flat.shape[0])
    high = np.empty(flat.shape[0])
    rows_per_chunk = max(1, _BOOT_CHUNK_ELEMENTS // max(n_boot, 1))
    quantiles = [100.0 * (1.0 - ci) / 2.0, 100.0 * (1.0 + ci) / 2.0]
    for start in range(0, flat.shape[0], rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates = (filled[rows] @ counts) / (valid[rows].astype(np.float64) @ counts)
        all_nan = np.isnan(replicates).all(axis=1)
        bounds = np.full((2, replicates.shape[0]), np.nan)
        if (~all_nan).any():
            bounds[:, ~all_nan] = np.nanpercentile(replicates[~all_nan], quantiles, axis=1)
        low[rows], high[rows] = bounds
    return mean.reshape(out_shape), low.reshape(out_shape), high.reshape(out_shape)


# --------------------------------------------------------------------------------------------------- rank tests
def _complete_blocks(data: np.ndarray) -> np.ndarray:
    """Rows of a blocks × treatments array without NaN (rank tests need complete blocks)."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D array blocks × treatments, got shape {data.shape}")
    return data[~np.isnan(data).any(axis=1)]


def friedman(data: np.ndarray | xr.Dataset | xr.DataArray, variable: str | None = None, *,
             treatment_dim: str = "method") -> dict[str, float]:
    """Friedman's test that ``k`` treatments (methods) rank alike across blocks (samples or cells).

    ``data`` is a ``blocks × k`` array, or a DataArray / Dataset (+ ``variable``) whose ``treatment_dim`` holds the
    treatments and whose other dims together form the blocks. Blocks with any NaN are dropped. The statistic is
    scipy's ``friedmanchisquare`` (average ranks within a block, tie-corrected):
    ``χ² = [12/(n k (k+1)) Σ_j R_j² − 3 n (k+1)] / C`` with ``C = 1 − Σ(t³ − t)/(n k (k² − 1))``,
    p from χ²(k − 1). Also returns Kendall's ``W = χ² / (n (k − 1))`` and the mean rank per treatment
    (rank 1 = smallest value).
    """
    array = _as_blocks(data, variable, treatment_dim)
    blocks = _complete_blocks(array)
    n, k = blocks.shape
    if k < 3:
        raise ValueError(f"Friedman's test needs at least 3 treatments, got {k}; use wilcoxon_holm for two")
    mean_ranks = np.full(k, np.nan)
    if n == 0:
        return {"statistic": np.nan, "pvalue": np.nan, "kendall_w": np.nan, "n_blocks": 0, "k": k,
                "mean_ranks": mean_ranks}
    ranks = scipy_stats.rankdata(blocks, axis=1)
    rank_sums = ranks.sum(axis=0)
    # Σ over tie groups (t³ − t) per block follows from the sum of squared average ranks:
    # Σ_j r_j² = k(k+1)(2k+1)/6 − Σ_g (t_g³ − t_g)/12.
    tie_sum = float(np.sum(12.0 * (k * (k + 1) * (2 * k + 1) / 6.0 - (ranks**2).sum(axis=1))))
    correction = 1.0 - tie_sum / (n * k * (k * k - 1))
    raw = 12.0 / (n * k * (k + 1)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1)
    statistic = raw / correction if correction > 0 else np.nan
    pvalue = float(scipy_stats.chi2.sf(statistic, k - 1)) if np.isfinite(statistic) else np.nan
    return {"statistic": float(statistic), "pvalue": pvalue, "kendall_w": float(statistic / (n * (k - 1))),
            "n_blocks": int(n), "k": int(k), "mean_ranks": rank_sums / n}


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values: sort ascending, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``.

    NaN p-values stay NaN and do not count in ``m``.
    """
    pvalues = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(pvalues.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(pvalues))
    m = finite.size
    order = finite[np.argsort(pvalues[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * pvalues[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def wilcoxon_holm(data: np.ndarray | xr.Dataset | xr.DataArray, variable: str | None = None, *,
                  names: Sequence[str] | None = None, treatment_dim: str = "method", alpha: float = 0.05,
                  alternative: str = "two-sided") -> pd.DataFrame:
    """All pairwise Wilcoxon signed-rank tests between treatments, Holm-corrected over the pairs.

    ``data`` as for :func:`friedman` (blocks × k). Each pair uses the blocks where both values exist; zero
    differences are dropped (``zero_method="wilcox"``); p-values from ``scipy.stats.wilcoxon`` (exact for small
    samples without ties, normal approximation otherwise). Returns one row per pair ``a < b`` with the median
    difference ``a − b``, the statistic, raw and Holm-adjusted p-values and ``reject`` (adjusted p < alpha).
    """
    array = _as_blocks(data, variable, treatment_dim)
    if names is None:
        names = _treatment_names(data, treatment_dim) or [str(j) for j in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(f"got {len(names)} names for {array.shape[1]} treatments")
    rows: list[dict[str, Any]] = []
    for a, b in combinations(range(array.shape[1]), 2):
        both = ~np.isnan(array[:, a]) & ~np.isnan(array[:, b])
        difference = array[both, a] - array[both, b]
        statistic = pvalue = np.nan
        if np.count_nonzero(difference) > 0:
            result = scipy_stats.wilcoxon(array[both, a], array[both, b], zero_method="wilcox",
                                          alternative=alternative)
            statistic, pvalue = float(result.statistic), float(result.pvalue)
        rows.append({"a": names[a], "b": names[b], "n": int(both.sum()),
                     "median_difference": float(np.median(difference)) if difference.size else np.nan,
                     "statistic": statistic, "pvalue": pvalue})
    table = pd.DataFrame(rows, columns=["a", "b", "n", "median_difference", "statistic", "pvalue"])
    table["pvalue_holm"] = holm(table["pvalue"].to_numpy()) if len(table) else []
    table["reject"] = table["pvalue_holm"] < alpha
    return table


# ---------------------------------------------------------------------------------------------- cube selections
def _select(ds: xr.Dataset | xr.DataArray, **selection: Any) -> xr.Dataset | xr.DataArray:
    """``.sel`` each given coordinate (scalars keep their dim, so blocks stay well-defined); None = all."""
    for dim, value in selection.items():
        if value is None:
            continue
        if dim not in ds.dims:
            raise ValueError(f"cannot select {dim}={value!r}: the cube has no {dim!r} dim (dims: {tuple(ds.dims)})")
        if not isinstance(value, (list, tuple, np.ndarray, slice)):
            value = [value]
        ds = ds.sel({dim: value})
    return ds


def _as_blocks(data: Any, variable: str | None, treatment_dim: str) -> np.ndarray:
    """A blocks × treatments float array from an array, DataArray or Dataset variable."""
    if isinstance(data, xr.Dataset):
        if variable is None:
            raise ValueError("pass the variable to test, e.g. friedman(ds, 'cosine')")
        data = data[variable]
    if isinstance(data, xr.DataArray):
        if treatment_dim not in data.dims:
            raise ValueError(f"{data.name!r} has no {treatment_dim!r} dim (dims: {data.dims})")
        others = [dim for dim in data.dims if dim != treatment_dim]
        data = data.transpose(*others, treatment_dim).values.reshape(-1, data.sizes[treatment_dim])
    return np.asarray(data, dtype=np.float64)


def _treatment_names(data: Any, treatment_dim: str) -> list[str] | None:
    if isinstance(data, (xr.Dataset, xr.DataArray)) and treatment_dim in data.coords:
        return [str(name) for name in data[treatment_dim].values]
    return None


@dataclass(frozen=True)
class MethodComparison:
    """Result of :func:`compare_methods`: per-method summary, Friedman test, pairwise Wilcoxon–Holm table."""

    variable: str
    direction: str
    summary: pd.DataFrame  # index method: mean, low, high, mean_rank, n
    friedman: dict[str, Any]
    pairwise: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "direction": self.direction, "summary": self.summary,
                "friedman": self.friedman, "pairwise": self.pairwise}

    def _repr_html_(self) -> str:
        head = (f"<b>{html.escape(str(self.variable))}</b> ({html.escape(str(self.direction))} is better) — Friedman χ²={self.friedman['statistic']:.3g},"
                f" p={self.friedman['pvalue']:.3g}, Kendall W={self.friedman['kendall_w']:.3g},"
                f" {self.friedman['n_blocks']} blocks")
        # pandas escapes cell values and labels (escape=True is its default; said here so it stays so)
        return head + self.summary.to_html(escape=True) + self.pairwise.to_html(index=False, escape=True)


def compare_methods(ds: xr.Dataset, variable: str, *, model: Any = None, perturbation: Any = None,
                    severity: Any = None, n_boot: int = 1000, ci: float = 0.95, alpha: float = 0.05,
                    seed: int = 0) -> MethodComparison:
    """Compare explanation methods on one per-sample cube variable (e.g. ``"cosine"`` or ``"deletion_auc"``).

    ``model``, ``perturbation`` and ``severity`` select coordinates (a value, a list, or a slice; None = all). Every
    remaining (model, perturbation, severity, sample) cell is one block: Friedman's test across methods over the
    complete blocks, pairwise Wilcoxon signed-rank tests with Holm correction, and a bootstrap CI of each method's
    mean over its non-NaN cells. ``mean_rank`` is the Friedman mean rank oriented by the variable's ``direction``
    attr, so rank 1 is always the best method.
    """
    if variable not in ds.data_vars:
        raise ValueError(f"the cube has no variable {variable!r}; variables: {sorted(map(str, ds.data_vars))}")
    values = _select(ds[variable], model=model, perturbation=perturbation, severity=severity)
    if "method" not in values.dims:
        raise ValueError(f"{variable!r} has no 'method' dim: it does not compare explanation methods")
    direction = str(ds[variable].attrs.get("direction", "higher"))
    names = [str(name) for name in values["method"].values]
    blocks = _as_blocks(values, None, "method")
    mean, low, high = bootstrap_ci(blocks, axis=0, n_boot=n_boot, ci=ci, seed=seed)
    oriented = -blocks if direction == "higher" else blocks
    if len(names) >= 3:
        test = friedman(oriented)
    else:
        test = {"statistic": np.nan, "pvalue": np.nan, "kendall_w": np.nan,
                "n_blocks": int(len(_complete_blocks(oriented))), "k": len(names),
                "mean_ranks": np.nanmean(scipy_stats.rankdata(_complete_blocks(oriented), axis=1), axis=0)
                if len(_complete_blocks(oriented)) else np.full(len(names), np.nan)}
    summary = pd.DataFrame({"mean": mean, "low": low, "high": high, "mean_rank": test["mean_ranks"],
                            "n": (~np.isnan(blocks)).sum(axis=0)}, index=pd.Index(names, name="method"))
    pairwise = wilcoxon_holm(blocks, names=names, alpha=alpha)
    friedman_result = {key: value for key, value in test.items() if key != "mean_ranks"}
    return MethodComparison(variable, direction, summary, friedman_result, pairwise)


# ------------------------------------------------------------------------------- Nemenyi CD and effect sizes
@dataclass(frozen=True)
class CriticalDifference:
    """Average ranks (1 = best), Nemenyi's critical difference and the groups of treatments it cannot separate."""

    names: list[str]
    average_ranks: np.ndarray
    cd: float
    q_alpha: float
    n_blocks: int
    alpha: float
    cliques: list[list[str]]  # maximal runs of rank-sorted treatments whose ranks differ by less than cd

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"average_rank": self.average_ranks}, index=pd.Index(self.names, name="treatment"))


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's ``q_α`` for ``k`` treatments: the studentized range quantile (∞ degrees of freedom) / √2
    (Demšar 2006, Table 5: 2.569 for k = 4 at α = 0.05)."""
    if k < 2:
        raise ValueError(f"the Nemenyi test needs at least 2 treatments, got {k}")
    return float(scipy_stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def critical_difference(data: np.ndarray | xr.Dataset | xr.DataArray, variable: str | None = None, *,
                        names: Sequence[str] | None = None, treatment_dim: str = "method",
                        direction: str | None = None, alpha: float = 0.05) -> CriticalDifference:
    """Nemenyi post-hoc test (Demšar 2006): average ranks over the complete blocks and
    ``CD = q_α · sqrt(k (k + 1) / (6 N))``; two treatments differ when their average ranks differ by at least CD.

    ``data`` as for :func:`friedman` (blocks × k, or a cube variable whose other dims form the blocks). Ranks are
    oriented by ``direction`` (the variable's ``direction`` attr by default; "higher": the largest value gets
    rank 1), ties get average ranks.
    """
    if direction is None:
        direction = "higher"
        if isinstance(data, xr.Dataset) and variable is not None:
            direction = str(data[variable].attrs.get("direction", "higher"))
        elif isinstance(data, xr.DataArray):
            direction = str(data.attrs.get("direction", "higher"))
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    array = _as_blocks(data, variable, treatment_dim)
    if names is None:
        names = _treatment_names(data, treatment_dim) or [str(j) for j in range(array.shape[1])]
    blocks = _complete_blocks(-array if direction == "higher" else array)
    n, k = blocks.shape
    if n == 0:
        raise ValueError("no complete block (every block has a NaN): nothing to rank")
    ranks = scipy_stats.rankdata(blocks, axis=1).mean(axis=0)
    q_alpha = nemenyi_q(k, alpha)
    cd = q_alpha * float(np.sqrt(k * (k + 1) / (6.0 * n)))
    order = np.argsort(ranks, kind="stable")
    cliques: list[list[str]] = []
    for start in range(k):
        stop = start
        while stop + 1 < k and ranks[order[stop + 1]] - ranks[order[start]] < cd:
            stop += 1
        members = [str(names[j]) for j in order[start:stop + 1]]
        if len(members) > 1 and not any(set(members) <= set(c) for c in cliques):
            cliques.append(members)
    return CriticalDifference([str(name) for name in names], ranks, cd, q_alpha, int(n), alpha, cliques)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's δ = (#{a_i > b_j} − #{a_i < b_j}) / (n_a n_b) over all pairs (NaNs dropped): the unpaired effect
    size in [−1, 1] (equal to the rank-biserial correlation of the Mann–Whitney U test)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not a.size or not b.size:
        return float("nan")
    b_sorted = np.sort(b)
    below = np.searchsorted(b_sorted, a, side="left")  # b_j < a_i
    above = b.size - np.searchsorted(b_sorted, a, side="right")  # b_j > a_i
    return float((below.sum() - above.sum()) / (a.size * b.size))


def paired_effect_sizes(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Effect sizes of the paired differences ``d = a − b`` (pairs with a NaN dropped):

    - ``cohens_dz`` = mean(d) / sd(d) (sample sd, ``ddof=1``; NaN when sd is 0),
    - ``rank_biserial`` = (T⁺ − T⁻) / (T⁺ + T⁻), the matched-pairs rank-biserial correlation of the Wilcoxon
      signed-rank test (ranks of ``|d|`` with zero differences dropped, average ranks for ties),
    - ``cliffs_delta`` of ``a`` against ``b`` as two unpaired samples.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {a.size} and {b.size}")
    keep = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[keep], b[keep]
    difference = a - b
    sd = float(difference.std(ddof=1)) if difference.size > 1 else float("nan")
    dz = float(difference.mean() / sd) if difference.size > 1 and sd > 0 else float("nan")
    nonzero = difference[difference != 0]
    rank_biserial = float("nan")
    if nonzero.size:
        ranks = scipy_stats.rankdata(np.abs(nonzero))
        plus, minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
        rank_biserial = float((plus - minus) / (plus + minus))
    return {"n": int(a.size), "cohens_dz": dz, "rank_biserial": rank_biserial, "cliffs_delta": cliffs_delta(a, b)}


def effect_sizes(data: np.ndarray | xr.Dataset | xr.DataArray, variable: str | None = None, *,
                 names: Sequence[str] | None = None, treatment_dim: str = "method") -> pd.DataFrame:
    """:func:`paired_effect_sizes` of every pair ``a < b`` of treatments (blocks × k as for :func:`friedman`);
    positive values mean ``a`` scores higher than ``b``."""
    array = _as_blocks(data, variable, treatment_dim)
    if names is None:
        names = _treatment_names(data, treatment_dim) or [str(j) for j in range(array.shape[1])]
    rows = [{"a": names[i], "b": names[j], **paired_effect_sizes(array[:, i], array[:, j])}
            for i, j in combinations(range(array.shape[1]), 2)]
    return pd.DataFrame(rows, columns=["a", "b", "n", "cohens_dz", "rank_biserial", "cliffs_delta"])


# ------------------------------------------------------------------------------------------ CAM-noise criteria
def cam_robustness(ds: xr.Dataset, similarity: str = "cosine") -> xr.Dataset:
    """The CAM-noise study's criteria per (model, perturbation, severity, method), from per-sample variables.

    With ``s`` the per-sample similarity of the clean and perturbed maps (cube variable ``similarity``) and
    ``changed`` = (``pred`` ≠ ``pred`` at severity 0 of the same perturbation):

    - consistency = mean of ``s`` over samples whose prediction is unchanged (high = stable explanation),
    - responsiveness = mean of ``1 − s`` over samples whose prediction changed (high = the map follows the decision),
    - combined = consistency × responsiveness.

    NaN similarities are ignored; a cell with no (un)changed sample gives NaN. These are our formulas (the paper's
    are not public); they equal the means of the per-sample ``consistency`` / ``responsiveness`` metrics.
    Also returns ``n_unchanged`` and ``n_changed``.
    """
    for name in (similarity, "pred"):
        if name not in ds.data_vars:
            raise ValueError(f"cam_robustness needs the cube variable {name!r}; variables: "
                             f"{sorted(map(str, ds.data_vars))}")
    if "severity" not in ds.dims or 0 not in ds["severity"].values:
        raise ValueError("cam_robustness needs severity 0 (the clean predictions) in the cube")
    score = ds[similarity].astype(np.float64)
    pred = ds["pred"]
    changed = pred != pred.sel(severity=0)
    valid = score.notnull()
    unchanged_mask = (~changed) & valid
    changed_mask = changed & valid
    n_unchanged = unchanged_mask.sum("sample")
    n_changed = changed_mask.sum("sample")
    consistency = score.where(unchanged_mask).sum("sample") / n_unchanged.where(n_unchanged > 0)
    responsiveness = (1.0 - score).where(changed_mask).sum("sample") / n_changed.where(n_changed > 0)
    result = xr.Dataset({
        "consistency": consistency.assign_attrs(direction="higher", long_name=f"mean {similarity} when unchanged"),
        "responsiveness": responsiveness.assign_attrs(direction="higher",
                                                      long_name=f"mean 1 - {similarity} when changed"),
        "combined": (consistency * responsiveness).assign_attrs(direction="higher",
                                                               long_name="consistency × responsiveness"),
        "n_unchanged": n_unchanged, "n_changed": n_changed,
    })
    order = [dim for dim in ("model", "perturbation", "severity", "method") if dim in result.dims]
    return result.transpose(*order, ...).assign_attrs(similarity=similarity)


__all__ = ["CriticalDifference", "MethodComparison", "bootstrap_ci", "cam_robustness", "cliffs_delta",
           "compare_methods", "critical_difference", "effect_sizes", "friedman", "holm", "nemenyi_q",
           "paired_effect_sizes", "wilcoxon_holm"]
