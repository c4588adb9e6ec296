"""Explanation-robustness figures: content checks (data drawn, labels, scales) against explicit numpy formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from robustviz.figures import explanations
from robustviz.testing import make_cube


@pytest.fixture(scope="module")
def cube():
    return make_cube(n_models=2, n_perturbations=3, n_methods=3, n_samples=24, n_examples=3, image_size=8, seed=3)


def test_heatmap_data_is_the_mean_over_corrupted_severities_and_samples(cube):
    data = explanations.heatmap_data(cube, "consistency", model="smallcnn-noiseaug")
    raw = cube["consistency"].sel(model="smallcnn-noiseaug").values.astype(np.float64)  # perturbation, severity, method, sample
    with warnings.catch_warnings():  # an all-NaN cell (no unchanged sample) is NaN, as in the figure
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(raw[:, 1:], axis=(1, 3)).T  # method × perturbation
    np.testing.assert_allclose(data.values, expected, rtol=1e-12)
    assert list(data.dims) == ["method", "perturbation"]
    pooled = explanations.heatmap_data(cube, "cosine", severities=[5])
    np.testing.assert_allclose(pooled.values, cube["cosine"].values[:, :, 5].mean(axis=(0, 3)).T, rtol=1e-6)


def test_robustness_heatmap_draws_the_matrix_with_labels(cube):
    fig = explanations.robustness_heatmap(cube, "cosine", model="smallcnn-standard")
    ax = fig.axes[0]
    expected = explanations.heatmap_data(cube, "cosine", model="smallcnn-standard").values
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(p) for p in cube["perturbation"].values]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(m) for m in cube["method"].values]
    assert "higher is better" in fig.axes[1].get_ylabel()  # the colour bar
    assert len(ax.texts) == expected.size  # every cell annotated
    assert "smallcnn-standard" in ax.get_title()


def test_heatmap_rejects_variables_without_methods(cube):
    with pytest.raises(ValueError, match="no 'method' dim"):
        explanations.robustness_heatmap(cube, "prob_true")
    with pytest.raises(ValueError, match="needs the cube variable 'nope'"):
        explanations.robustness_heatmap(cube, "nope")
    with pytest.raises(ValueError, match="model 'resnet' is not in the cube"):
        explanations.heatmap_data(cube, "cosine", model="resnet")


def _criteria_by_loop(cube, similarity="cosine"):
    """Slow explicit loop: pooled consistency / responsiveness per method."""
    score = cube[similarity].values.astype(np.float64)  # model, perturbation, severity, method, sample
    pred = cube["pred"].values  # model, perturbation, severity, sample
    result = {}
    for method_index, method in enumerate(cube["method"].values):
        same, differ = [], []
        for m in range(score.shape[0]):
            for p in range(score.shape[1]):
                for s in range(1, score.shape[2]):
                    for n in range(score.shape[4]):
                        value = score[m, p, s, method_index, n]
                        if np.isnan(value):
                            continue
                        (differ if pred[m, p, s, n] != pred[m, p, 0, n] else same).append(value)
        consistency = np.mean(same)
        responsiveness = np.mean([1 - v for v in differ])
        result[str(method)] = (consistency, responsiveness, consistency * responsiveness, len(same), len(differ))
    return result


def test_cam_criteria_match_an_explicit_loop(cube):
    data = explanations.cam_criteria_data(cube)
    for method, (consistency, responsiveness, combined, n_same, n_changed) in _criteria_by_loop(cube).items():
        row = data.sel({"method": method})
        assert float(row["consistency"]) == pytest.approx(consistency, rel=1e-10)
        assert float(row["responsiveness"]) == pytest.approx(responsiveness, rel=1e-10)
        assert float(row["combined"]) == pytest.approx(combined, rel=1e-10)
        assert int(row["n_unchanged"]) == n_same and int(row["n_changed"]) == n_changed


def test_cam_criteria_bars_show_three_criteria_per_method(cube):
    fig = explanations.cam_criteria_bars(cube)
    ax = fig.axes[0]
    assert len(ax.containers) == 3
    data = explanations.cam_criteria_data(cube)
    for container, name in zip(ax.containers, ("consistency", "responsiveness", "combined")):
        np.testing.assert_allclose([bar.get_height() for bar in container], data[name].values)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["consistency", "responsiveness", "combined"]


def test_attribution_gallery_shows_the_stored_image_and_maps_on_one_symmetric_scale(cube):
    fig = explanations.attribution_gallery(cube, model="smallcnn-standard", perturbation="defocus_blur", example=1)
    axes = np.asarray(fig.axes).reshape(1 + cube.sizes["method"], cube.sizes["severity"])
    image = cube["example_image"].sel(model="smallcnn-standard", perturbation="defocus_blur", example=1,
                                      severity=3).values
    np.testing.assert_allclose(axes[0, 3].images[0].get_array(), np.moveaxis(image, 0, -1) / 255.0)
    maps = cube["example_attribution"].sel(model="smallcnn-standard", perturbation="defocus_blur", example=1)
    limit = float(np.abs(maps.values.astype(np.float64)).max())
    for row, method in enumerate(cube["method"].values, start=1):
        for column in range(cube.sizes["severity"]):
            shown = axes[row, column].images[0]
            np.testing.assert_allclose(shown.get_array(), maps.sel({"method": method}).values[column].astype(np.float64))
            assert shown.get_clim() == pytest.approx((-limit, limit))
    assert axes[1, 0].get_ylabel() == str(cube["method"].values[0])
    pred = int(cube["pred"].sel(model="smallcnn-standard", perturbation="defocus_blur", severity=0, sample=1))
    assert cube.rv.class_names[pred] in axes[0, 0].get_title()


def test_attribution_gallery_per_map_scale(cube):
    fig = explanations.attribution_gallery(cube, shared_scale=False, severities=[0, 5], methods=["gradcam"])
    axes = np.asarray(fig.axes).reshape(2, 2)
    for column in range(2):
        shown = axes[1, column].images[0]
        own = float(np.abs(np.asarray(shown.get_array(), dtype=np.float64)).max())
        assert shown.get_clim() == pytest.approx((-own, own))


def test_example_grid_has_one_row_per_perturbation(cube):
    fig = explanations.example_grid(cube, perturbations=["contrast", "gaussian_noise"], severities=[0, 2, 4])
    axes = np.asarray(fig.axes).reshape(2, 3)
    assert [axes[row, 0].get_ylabel() for row in range(2)] == ["contrast", "gaussian_noise"]
    assert [axes[0, c].get_title() for c in range(3)] == ["severity 0", "severity 2", "severity 4"]
    expected = cube["example_image"].sel(model="smallcnn-standard", perturbation="gaussian_noise", severity=4,
                                         example=0).values
    np.testing.assert_allclose(axes[1, 2].images[0].get_array(), np.moveaxis(expected, 0, -1) / 255.0)


def test_aggatt_maps_agree_with_the_localisation_metrics_binning():
    from robustviz.metrics.localisation import aggatt_bins

    generator = np.random.default_rng(0)
    scores = generator.uniform(size=137)
    scores[[3, 50]] = np.nan
    maps = generator.normal(size=(137, 1, 5, 6))
    ours, counts = explanations.aggatt_maps(scores, maps)
    reference = aggatt_bins(torch.from_numpy(scores), torch.from_numpy(maps))
    np.testing.assert_allclose(ours, reference.maps.numpy(), equal_nan=True)
    np.testing.assert_array_equal(counts, reference.counts.numpy())


def test_aggatt_bins_by_hand():
    scores = np.arange(100.0)[::-1]  # descending: the lowest score is the last sample
    maps = np.arange(100.0)[:, None, None] * np.ones((100, 2, 2))
    binned, counts = explanations.aggatt_maps(scores, maps)
    assert counts.tolist() == [2, 3, 45, 45, 3, 2]
    assert binned[0, 0, 0] == pytest.approx((99 + 98) / 2)  # the two lowest scores: samples 99 and 98
    assert binned[-1, 0, 0] == pytest.approx((0 + 1) / 2)


def test_aggatt_grid_layout_and_empty_bins():
    maps = np.random.default_rng(1).normal(size=(2, 6, 4, 4))
    maps[1, 2] = np.nan
    fig = explanations.aggatt_grid(maps, ["a", "b"], counts=np.array([1, 2, 3, 4, 5, 6]))
    axes = np.asarray(fig.axes).reshape(2, 6)
    assert axes[0, 0].get_title().startswith("0–2 %") and "n=1" in axes[0, 0].get_title()
    assert len(axes[1, 2].images) == 0 and len(axes[1, 3].images) == 1
    assert axes[1, 0].get_ylabel() == "b"
    limit = np.nanmax(np.abs(maps[0]))
    assert axes[0, 4].images[0].get_clim() == pytest.approx((-limit, limit))
    with pytest.raises(ValueError, match="rows × 6 bins"):
        explanations.aggatt_grid(maps[:, :3], ["a", "b"])


def test_aggatt_from_cube_uses_the_examples_scores(cube):
    ds = cube.assign(energy_in_mask=cube["cosine"])  # any per-method score works for the binning
    maps, counts, names = explanations.aggatt_from_cube(ds, "energy_in_mask", severity=2, model="smallcnn-standard",
                                                        perturbation="contrast")
    assert names == [str(m) for m in cube["method"].values] and counts.sum() == cube.sizes["example"]
    examples = cube["example"].values
    method = names[1]
    cell = {"model": "smallcnn-standard", "perturbation": "contrast", "severity": 2, "method": method}
    scores = ds["energy_in_mask"].sel({**cell, "sample": examples}).values
    stored = cube["example_attribution"].sel(cell).values.astype(np.float64)
    expected, _ = explanations.aggatt_maps(scores, stored)
    np.testing.assert_allclose(maps[1], expected, equal_nan=True)
