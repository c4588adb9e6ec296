"""Pure render functions: given a state, the figure shows the right data (checked against explicit numpy)."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from robustviz.panels import (PanelError, cell_samples, colour_limits, criteria_data, figure_to_png, gallery_data,
                              heatmap_data, render_criteria_scatter, render_gallery, render_heatmap,
                              render_sample_view, render_severity_curves, render_spectral, severity_curve_data)
from robustviz.panels.gallery import GAP, mosaic, tile_of
from robustviz.panels.scatter import image_map_html, point_pixels
from robustviz.testing.cubes import make_cube


def _index(ds, dim, value):
    return list(ds[dim].values).index(value)


# -------------------------------------------------------------------------------------------------------- explorer
def test_heatmap_is_the_sample_mean_of_each_cell(cube):
    model, method = cube["model"].values[1], cube["method"].values[1]
    raw = cube["consistency"].transpose("model", "method", "perturbation", "severity", "sample").values
    expected = np.nanmean(raw[1, 1], axis=-1)
    data = heatmap_data(cube, "consistency", model, method)
    np.testing.assert_allclose(data.values, expected, rtol=1e-6)
    accuracy = heatmap_data(cube, "correct", model)
    np.testing.assert_allclose(accuracy.values, cube["correct"].values[1].mean(-1))


def test_render_heatmap_draws_the_data_with_labels_and_the_selected_cell(cube):
    model, method = cube["model"].values[0], cube["method"].values[0]
    perturbation = cube["perturbation"].values[2]
    figure = render_heatmap(cube, "cosine", model, method, selected=(perturbation, 4))
    axes = figure.axes[0]
    image = [artist for artist in axes.get_children() if isinstance(artist, AxesImage)][0]
    np.testing.assert_allclose(image.get_array(), heatmap_data(cube, "cosine", model, method).values, rtol=1e-6)
    assert axes.get_xlabel() == "severity" and axes.get_ylabel() == "perturbation"
    assert [t.get_text() for t in axes.get_yticklabels()] == list(cube["perturbation"].values)
    assert [t.get_text() for t in axes.get_xticklabels()] == [str(s) for s in cube["severity"].values]
    outline = [p for p in axes.patches if isinstance(p, Rectangle)]
    assert len(outline) == 1 and outline[0].get_xy() == (4 - 0.5, 2 - 0.5)
    assert image.get_cmap().name == "viridis"
    lower = render_heatmap(cube, "deletion_auc", model, method).axes[0]
    assert [a for a in lower.get_children() if isinstance(a, AxesImage)][0].get_cmap().name == "viridis_r"


def test_heatmap_errors_name_the_choices(cube):
    with pytest.raises(PanelError, match="cosine"):
        render_heatmap(cube, "nonexistent", cube["model"].values[0])
    with pytest.raises(PanelError, match="choose one of"):
        heatmap_data(cube, "correct", "no-such-model")
    with pytest.raises(PanelError, match="method="):
        heatmap_data(cube, "cosine", cube["model"].values[0])
    with pytest.raises(PanelError, match="per-sample"):
        heatmap_data(cube, "sid", cube["model"].values[0])


def test_sample_view_pairs_clean_and_perturbed_values(cube):
    model, perturbation, method = cube["model"].values[2], cube["perturbation"].values[1], cube["method"].values[0]
    samples = cell_samples(cube, "cosine", model, perturbation, 3, method)
    raw = cube["cosine"].transpose("model", "perturbation", "method", "severity", "sample").values
    m, p = _index(cube, "model", model), _index(cube, "perturbation", perturbation)
    np.testing.assert_array_equal(samples["clean"].values, raw[m, p, 0, 0])
    np.testing.assert_array_equal(samples["perturbed"].values, raw[m, p, 0, 3])
    figure = render_sample_view(cube, "cosine", model, perturbation, 3, method)
    hist_axes, pair_axes = figure.axes
    points = [c for c in pair_axes.collections if isinstance(c, PathCollection)][0]
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([raw[m, p, 0, 0], raw[m, p, 0, 3]]), rtol=1e-6)
    bins = np.linspace(min(raw[m, p, 0, 0].min(), raw[m, p, 0, 3].min()),
                       max(raw[m, p, 0, 0].max(), raw[m, p, 0, 3].max()) + 1e-9, 21)
    for patch, values in zip(hist_axes.patches, (raw[m, p, 0, 0], raw[m, p, 0, 3])):  # step outlines: clean, cell
        counts, _ = np.histogram(values, bins=bins)
        assert patch.get_xy()[:, 1].max() == counts.max()
        assert set(counts) <= set(patch.get_xy()[:, 1])


# --------------------------------------------------------------------------------------------------------- gallery
def test_gallery_shows_the_stored_images_and_maps(cube):
    model, perturbation = cube["model"].values[1], cube["perturbation"].values[0]
    example = int(cube["example"].values[1])
    methods = list(cube["method"].values)
    figure = render_gallery(cube, model, perturbation, example, methods)
    rows = [ax for ax in figure.axes if ax.images]
    n_sev, width = cube.sizes["severity"], cube.sizes["x"]
    assert len(rows) == 1 + len(methods)
    assert [ax.get_ylabel() for ax in rows] == ["image", *methods]
    stored = cube["example_image"].sel(model=model, perturbation=perturbation, example=example).values
    picture = rows[0].images[0].get_array()
    for column in range(n_sev):
        np.testing.assert_array_equal(tile_of(picture, column, width), stored[column].transpose(1, 2, 0))
    maps = cube["example_attribution"].sel({"model": model, "perturbation": perturbation, "example": example})
    maps = maps.transpose("method", "severity", "y", "x").values.astype(np.float32)
    extent = np.abs(maps).max()
    for row in range(len(methods)):
        artist = rows[row + 1].images[0]
        assert artist.get_clim() == pytest.approx((-extent, extent))
        for column in range(n_sev):
            np.testing.assert_array_equal(tile_of(artist.get_array(), column, width), maps[row, column])
        assert np.ma.getmaskarray(artist.get_array()[:, width:width + GAP]).all()  # blank (NaN) gap between tiles


def test_mosaic_round_trip():
    tiles = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    row = mosaic(tiles, gap=1)
    assert row.shape == (2, 3 * 4 + 2)
    for index in range(3):
        np.testing.assert_array_equal(tile_of(row, index, 4, gap=1), tiles[index])


def test_gallery_titles_show_the_prediction_and_confidence_of_the_example(cube):
    import json

    model, perturbation, example = cube["model"].values[0], cube["perturbation"].values[2], 1
    figure = render_gallery(cube, model, perturbation, example, methods=[])
    names = json.loads(cube.attrs["class_names"])
    pred = cube["pred"].sel(model=model, perturbation=perturbation, sample=example).values
    confidence = cube["confidence"].sel(model=model, perturbation=perturbation, sample=example).values
    correct = cube["correct"].sel(model=model, perturbation=perturbation, sample=example).values
    titles = figure.axes[0].texts
    assert len(titles) == cube.sizes["severity"]
    for column, text in enumerate(titles):
        assert f"{names[pred[column]]} ({confidence[column]:.2f})" in text.get_text()
        assert text.get_color() == ("green" if correct[column] else "red")
    assert names[int(cube["label"].sel(sample=example))] in figure.get_suptitle()


def test_colour_limits_shared_and_per_map():
    maps = np.zeros((2, 3, 4, 4), np.float32)
    maps[0, 0, 1, 1], maps[1, 2, 0, 0], maps[1, 1, 2, 2] = 0.5, -2.0, 1.0
    shared = colour_limits(maps, "shared")
    assert np.all(shared[..., 0] == -2.0) and np.all(shared[..., 1] == 2.0)
    per_map = colour_limits(maps, "per-map")
    np.testing.assert_array_equal(per_map[..., 1], [[0.5, 1.0, 1.0], [1.0, 1.0, 2.0]])  # all-zero maps -> 1
    np.testing.assert_array_equal(per_map[..., 0], -per_map[..., 1])
    with pytest.raises(PanelError, match="normalisation"):
        colour_limits(maps, "global")


def test_gallery_per_map_scale_and_missing_examples(cube):
    model, perturbation = cube["model"].values[0], cube["perturbation"].values[0]
    figure = render_gallery(cube, model, perturbation, 0, normalisation="per-map")
    data = gallery_data(cube, model, perturbation, 0)
    width = cube.sizes["x"]
    first_row = [ax for ax in figure.axes if ax.images][1].images[0]
    assert first_row.get_clim() == (-1.0, 1.0)
    for column in range(cube.sizes["severity"]):
        own = data["attributions"][0, column]
        np.testing.assert_allclose(tile_of(first_row.get_array(), column, width), own / np.abs(own).max(), rtol=1e-6)
    with pytest.raises(PanelError, match="example_image"):
        gallery_data(cube.drop_vars(["example_image", "example_attribution"]), model, perturbation, 0)
    with pytest.raises(PanelError, match="choose one of"):
        gallery_data(cube, model, perturbation, 99)


# ---------------------------------------------------------------------------------------------------------- curves
def test_severity_curves_one_line_per_model_with_the_mean(cube):
    figure = render_severity_curves(cube, "correct", "model", n_boot=200)
    axes = figure.axes[0]
    assert len(axes.lines) == cube.sizes["model"]
    expected = cube["correct"].values.astype(float).mean(axis=(1, 3))  # model, severity (mean over pert, sample)
    for index, line in enumerate(axes.lines):
        np.testing.assert_allclose(line.get_ydata(), expected[index])
        np.testing.assert_array_equal(line.get_xdata(), cube["severity"].values)
    assert axes.get_xlabel() == "severity" and "correct" in axes.get_ylabel()
    assert len(axes.collections) == cube.sizes["model"]  # one CI band each


def test_severity_curves_by_method_for_one_perturbation(cube):
    model, perturbation = cube["model"].values[1], cube["perturbation"].values[1]
    data = severity_curve_data(cube, "cosine", "method", model=model, perturbation=perturbation, n_boot=100)
    raw = cube["cosine"].sel(model=model, perturbation=perturbation).transpose("method", "severity", "sample")
    np.testing.assert_allclose(data["mean"].values, raw.values.mean(-1), rtol=1e-6)
    assert list(data["method"].values) == list(cube["method"].values)
    figure = render_severity_curves(cube, "cosine", "method", model=model, perturbation=perturbation, n_boot=100)
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == list(cube["method"].values)


def test_bootstrap_band_matches_normal_theory_on_many_samples():
    big = make_cube(n_models=1, n_perturbations=1, n_methods=1, n_samples=2000, n_examples=1, image_size=4)
    data = severity_curve_data(big, "prob_true", "model", n_boot=2000, ci=0.95, seed=1)
    values = big["prob_true"].values[0, 0]  # severity, sample
    half_width = 1.96 * values.std(axis=-1, ddof=1) / np.sqrt(values.shape[-1])
    np.testing.assert_allclose((data["high"] - data["low"]).values[0], 2 * half_width, rtol=0.15)
    assert np.all(data["low"] <= data["mean"]) and np.all(data["mean"] <= data["high"])


def test_severity_curve_errors(cube):
    with pytest.raises(PanelError, match="no method dim"):
        severity_curve_data(cube, "correct", "method")
    with pytest.raises(PanelError, match="by must be"):
        severity_curve_data(cube, "correct", "perturbation")


# -------------------------------------------------------------------------------------------------------- spectral
def test_spectral_panel_draws_sid_and_srs(cube):
    models = list(cube["model"].values[:2])
    figure = render_spectral(cube, models)
    sid_axes, srs_axes = figure.axes
    assert len(sid_axes.lines) == 2
    for index, line in enumerate(sid_axes.lines):
        np.testing.assert_allclose(line.get_ydata(), cube["sid"].sel(model=models[index]).values)
    heights = [bar.get_height() for bar in srs_axes.patches]
    np.testing.assert_allclose(heights, cube["srs"].sel(model=models).values)
    legend = [t.get_text() for t in sid_axes.get_legend().get_texts()]
    assert legend[0] == f"{models[0]} (SRS {float(cube['srs'].sel(model=models[0])):.3f})"
    with pytest.raises(PanelError, match="I-ASIDE"):
        render_spectral(cube.drop_vars(["sid", "srs"]))


# --------------------------------------------------------------------------------------------------------- scatter
def test_criteria_data_against_explicit_means(cube):
    method = cube["method"].values[1]
    table = criteria_data(cube, "cosine", method)
    correct = cube["correct"].values[:, :, 1:].astype(float)  # severities >= 1
    np.testing.assert_allclose(table["accuracy"].to_numpy(), correct.mean(axis=(1, 2, 3)))
    cosine = cube["cosine"].transpose("model", "method", ...).values[:, 1, :, 1:]
    np.testing.assert_allclose(table["explanation"].to_numpy(), np.nanmean(cosine, axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(table["fisher_lmax"].to_numpy(),
                               cube["fisher_lmax"].values[:, :, 0].mean(axis=(1, 2)), rtol=1e-6)
    assert list(table.index) == list(cube["model"].values)
    with pytest.raises(PanelError, match="explanation metric"):
        criteria_data(cube, "prob_true")


def test_scatter_points_colours_and_hover_map_land_on_the_points(cube):
    table = criteria_data(cube, "cosine")
    figure = render_criteria_scatter(cube, "cosine", highlight=cube["model"].values[0])
    axes = figure.axes[0]
    points = axes.collections[0]
    np.testing.assert_allclose(points.get_offsets(), table[["accuracy", "explanation"]].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(points.get_array(), table["fisher_lmax"].to_numpy(), rtol=1e-6)
    assert len(axes.collections) == 2  # the highlight ring
    pixels = point_pixels(figure, table)
    png = figure_to_png(figure, dpi=90)
    image = matplotlib.image.imread(io.BytesIO(png))
    colours = points.get_facecolors()
    for (column, row), colour in zip(pixels, colours):  # the PNG pixel at each computed position is that point
        np.testing.assert_allclose(image[int(round(row)), int(round(column)), :3], colour[:3], atol=0.03)
    markup = image_map_html(png, table, pixels)
    assert markup.count("<area") == len(table)
    for name in table.index:
        assert f'data-model="{name}"' in markup and f"title=\"{name}: accuracy" in markup
