"""Statistics: scipy agreement (Friedman, Wilcoxon), Holm by hand, bootstrap against an explicit loop, and the
cube-level compare_methods / cam_robustness against explicit computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from robustviz.cube.stats import bootstrap_ci, cam_robustness, compare_methods, friedman, holm, wilcoxon_holm


def test_friedman_matches_scipy_including_ties():
    rng = np.random.default_rng(0)
    data = np.round(rng.normal(size=(30, 5)), 1)  # rounding creates ties within blocks
    data[:, 2] += 0.4
    ours = friedman(data)
    expected = scipy.stats.friedmanchisquare(*data.T)
    assert ours["statistic"] == pytest.approx(expected.statistic, rel=1e-10)
    assert ours["pvalue"] == pytest.approx(expected.pvalue, rel=1e-8)
    assert ours["kendall_w"] == pytest.approx(expected.statistic / (30 * 4))
    np.testing.assert_allclose(ours["mean_ranks"], scipy.stats.rankdata(data, axis=1).mean(axis=0))
    data[3, 1] = np.nan  # incomplete blocks are dropped
    assert friedman(data)["n_blocks"] == 29
    assert friedman(data)["statistic"] == pytest.approx(
        scipy.stats.friedmanchisquare(*np.delete(data, 3, axis=0).T).statistic)


def test_holm_by_hand():
    # sorted p: 0.01, 0.03, 0.04, 0.5 (m = 4): 4·0.01 = 0.04; 3·0.03 = 0.09; 2·0.04 = 0.08 → max 0.09; 1·0.5 = 0.5
    np.testing.assert_allclose(holm([0.04, 0.01, 0.5, 0.03]), [0.09, 0.04, 0.5, 0.09])
    np.testing.assert_allclose(holm([0.6, np.nan, 0.2]), [0.6, np.nan, 0.4])
    np.testing.assert_allclose(holm([0.9, 0.8]), [1.0, 1.0])


def test_wilcoxon_pairs_match_scipy():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(25, 3))
    data[:, 1] += 0.8
    table = wilcoxon_holm(data, names=["a", "b", "c"])
    assert list(zip(table["a"], table["b"])) == [("a", "b"), ("a", "c"), ("b", "c")]
    raw = [scipy.stats.wilcoxon(data[:, i], data[:, j]).pvalue for i, j in [(0, 1), (0, 2), (1, 2)]]
    np.testing.assert_allclose(table["pvalue"], raw, rtol=1e-10)
    np.testing.assert_allclose(table["pvalue_holm"], holm(raw))
    assert table["statistic"][0] == scipy.stats.wilcoxon(data[:, 0], data[:, 1]).statistic


def test_bootstrap_matches_an_explicit_loop_and_ignores_nans():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(2, 40))
    values[1, [3, 7]] = np.nan
    mean, low, high = bootstrap_ci(values, n_boot=300, ci=0.9, seed=4)
    counts = np.random.default_rng(4).multinomial(40, np.full(40, 1 / 40), size=300)
    for row in range(2):
        replicates = []
        for draw in counts:
            sample = np.repeat(values[row], draw)
            replicates.append(np.nanmean(sample))
        assert low[row] == pytest.approx(np.percentile(replicates, 5))
        assert high[row] == pytest.approx(np.percentile(replicates, 95))
        assert mean[row] == pytest.approx(np.nanmean(values[row]))
    mean_t, low_t, _ = bootstrap_ci(values.T, axis=0, n_boot=300, ci=0.9, seed=4)
    np.testing.assert_allclose(low_t, low)
    assert np.isnan(bootstrap_ci(np.full((1, 5), np.nan))[1]).all()


def make_cube(seed=0):
    rng = np.random.default_rng(seed)
    shape = (1, 2, 3, 3, 30)
    cosine = rng.uniform(size=shape)
    cosine[..., 1, :] += 0.3  # method "b" is more stable
    pred = rng.integers(0, 3, size=(1, 2, 3, 30))
    pred[:, :, 1] = np.where(rng.uniform(size=(1, 2, 30)) < 0.7, pred[:, :, 0], pred[:, :, 1])
    return xr.Dataset(
        {"cosine": (("model", "perturbation", "severity", "method", "sample"), cosine, {"direction": "higher"}),
         "pred": (("model", "perturbation", "severity", "sample"), pred)},
        coords={"model": ["m"], "perturbation": ["noise", "blur"], "severity": [0, 1, 2], "method": ["a", "b", "c"],
                "sample": np.arange(30)})


def test_compare_methods_on_a_cube():
    ds = make_cube()
    result = compare_methods(ds, "cosine", perturbation="noise", severity=[1, 2], n_boot=200)
    blocks = ds["cosine"].sel(perturbation=["noise"], severity=[1, 2]).transpose(..., "method").values.reshape(-1, 3)
    expected = scipy.stats.friedmanchisquare(*blocks.T)
    assert result.friedman["statistic"] == pytest.approx(expected.statistic)
    assert result.friedman["n_blocks"] == 60
    np.testing.assert_allclose(result.summary["mean"], blocks.mean(axis=0))
    assert result.summary["mean_rank"].idxmin() == "b"  # direction "higher": rank 1 = best
    assert (result.summary["low"] <= result.summary["mean"]).all()
    pvalue_ab = scipy.stats.wilcoxon(blocks[:, 0], blocks[:, 1]).pvalue
    assert result.pairwise["pvalue"][0] == pytest.approx(pvalue_ab)
    with pytest.raises(ValueError, match="no variable"):
        compare_methods(ds, "nope")


def test_cam_robustness_against_a_loop():
    ds = make_cube(1)
    ds["cosine"][0, 0, 2, 1, 4] = np.nan
    result = cam_robustness(ds)
    cosine, pred = ds["cosine"].values, ds["pred"].values
    for p in range(2):
        for s in range(3):
            for m in range(3):
                same = [cosine[0, p, s, m, i] for i in range(30)
                        if pred[0, p, s, i] == pred[0, p, 0, i] and not np.isnan(cosine[0, p, s, m, i])]
                flipped = [1 - cosine[0, p, s, m, i] for i in range(30)
                           if pred[0, p, s, i] != pred[0, p, 0, i] and not np.isnan(cosine[0, p, s, m, i])]
                cell = result.isel(model=0, perturbation=p, severity=s, method=m)
                assert float(cell["consistency"]) == pytest.approx(np.mean(same))
                if flipped:
                    assert float(cell["responsiveness"]) == pytest.approx(np.mean(flipped))
                    assert float(cell["combined"]) == pytest.approx(np.mean(same) * np.mean(flipped))
                else:
                    assert np.isnan(float(cell["responsiveness"]))
    assert int(result["n_changed"].sel(severity=0).sum()) == 0
