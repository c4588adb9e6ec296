"""Nemenyi critical difference against Demšar (2006)'s published q values and the formula, effect sizes against
brute-force pair counts and scipy's Mann–Whitney / Wilcoxon statistics, and the CD diagram."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats as scipy_stats

from robustviz.cube.stats import (cliffs_delta, critical_difference, effect_sizes, nemenyi_q,
                                  paired_effect_sizes)


@pytest.mark.parametrize("k,published", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, published):
    assert nemenyi_q(k, 0.05) == pytest.approx(published, abs=1e-3)


def test_nemenyi_q_at_alpha_010():
    assert nemenyi_q(4, 0.10) == pytest.approx(2.291, abs=1e-3)  # Demšar 2006, Table 5(a), α = 0.10


def test_critical_difference_ranks_and_cd():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(30, 4)) + np.array([0.0, 0.3, 1.0, 1.0])
    data[3, 2] = data[3, 3]  # a tie gets average ranks
    data[5, 0] = np.nan  # incomplete block dropped
    result = critical_difference(data, names=["a", "b", "c", "d"], direction="higher")
    complete = data[~np.isnan(data).any(axis=1)]
    explicit = np.zeros(4)
    for row in complete:
        for j in range(4):  # rank 1 = highest; ties share the mean of their positions
            explicit[j] += 1 + np.sum(row > row[j]) + 0.5 * (np.sum(row == row[j]) - 1)
    np.testing.assert_allclose(result.average_ranks, explicit / len(complete))
    assert result.n_blocks == 29
    assert result.cd == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 29)), abs=1e-3)
    for clique in result.cliques:
        ranks = [result.average_ranks[result.names.index(name)] for name in clique]
        assert max(ranks) - min(ranks) < result.cd
    lower = critical_difference(data, names=["a", "b", "c", "d"], direction="lower")
    np.testing.assert_allclose(lower.average_ranks, 5 - result.average_ranks)


def test_critical_difference_on_a_cube_variable_uses_its_direction():
    values = np.arange(2 * 3 * 10, dtype=float).reshape(2, 3, 10)
    da = xr.DataArray(values, dims=("perturbation", "method", "sample"),
                      coords={"method": ["x", "y", "z"]}, attrs={"direction": "lower"})
    result = critical_difference(xr.Dataset({"score": da}), "score")
    assert result.names == ["x", "y", "z"]
    np.testing.assert_allclose(result.average_ranks, [1, 2, 3])
    assert result.n_blocks == 20


def test_cliffs_delta_matches_pair_counts_and_mann_whitney():
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(size=17), 1)
    b = np.round(rng.normal(0.4, size=23), 1)  # rounded: ties
    brute = sum(np.sign(x - y) for x in a for y in b) / (a.size * b.size)
    assert cliffs_delta(a, b) == pytest.approx(brute)
    u = scipy_stats.mannwhitneyu(a, b).statistic  # counts ties as 1/2
    assert cliffs_delta(a, b) == pytest.approx(2 * u / (a.size * b.size) - 1)


def test_paired_effect_sizes():
    rng = np.random.default_rng(2)
    a = rng.normal(size=40)
    b = a - rng.normal(0.3, 1.0, size=40)
    b[:3] = a[:3]  # zero differences are dropped from the rank-biserial
    result = paired_effect_sizes(a, b)
    d = a - b
    assert result["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    nonzero = d[d != 0]
    t_plus = scipy_stats.wilcoxon(nonzero, alternative="greater").statistic  # sum of ranks of positive d
    total = nonzero.size * (nonzero.size + 1) / 2
    assert result["rank_biserial"] == pytest.approx((2 * t_plus - total) / total)
    table = effect_sizes(np.stack([a, b, b + 1], axis=1), names=["a", "b", "c"])
    assert list(table["a"]) == ["a", "a", "b"] and list(table["b"]) == ["b", "c", "c"]
    assert table.loc[0, "cohens_dz"] == pytest.approx(result["cohens_dz"])
    assert table.loc[2, "rank_biserial"] == pytest.approx(-1.0)


def test_cd_diagram_draws_every_treatment():
    from robustviz.figures import cd_diagram

    rng = np.random.default_rng(0)
    data = rng.normal(size=(20, 5)) + np.linspace(0, 2, 5)
    result = critical_difference(data, names=list("abcde"))
    fig = cd_diagram(result)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for name, rank in zip(result.names, result.average_ranks):
        assert f"{name} ({rank:.2f})" in texts
    assert f"CD = {result.cd:.2f}" in texts


def test_accessor_on_a_synthetic_cube_and_lazy_calibration():
    from robustviz.testing import make_cube

    ds = make_cube(n_methods=3, n_samples=12, chunks={"sample": 6})
    result = ds.rv.critical_difference("deletion_auc")
    blocks = ds["deletion_auc"].transpose(..., "method").values.reshape(-1, 3)
    blocks = blocks[~np.isnan(blocks).any(axis=1)]
    expected = scipy_stats.rankdata(blocks, axis=1).mean(axis=0)  # "lower" is better: rank 1 = smallest
    assert ds["deletion_auc"].attrs["direction"] == "lower"
    np.testing.assert_allclose(result.average_ranks, expected)
    table = ds.rv.effect_sizes("deletion_auc")
    assert len(table) == 3 and table[["cohens_dz", "rank_biserial", "cliffs_delta"]].notna().all().all()
    calibration = ds.rv.calibration().compute()  # dask-backed cube
    assert calibration["ece"].dims == ("model", "perturbation", "severity")
    assert ((calibration["ece"] >= 0) & (calibration["ece"] <= 1)).all()
