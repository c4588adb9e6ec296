"""Model-robustness figures draw what the cube holds (checked on the plotted artists)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from robustviz.cube.robustness import mce
from robustviz.figures.robustness import mce_bars, sid_spectra, srs_vs_accuracy
from robustviz.testing.cubes import make_cube


@pytest.fixture(scope="module")
def cube():
    return make_cube(n_models=3, n_perturbations=19, n_methods=1, n_samples=30, n_examples=1)


def test_sid_spectra_plots_one_line_per_model(cube):
    figure = sid_spectra(cube)
    assert isinstance(figure, Figure)
    lines = figure.axes[0].get_lines()
    assert len(lines) == 3
    for line, model in zip(lines, cube["model"].values):
        np.testing.assert_allclose(line.get_ydata(), cube["sid"].sel(model=model).values)
        assert str(model) in line.get_label() and "SRS" in line.get_label()


@pytest.mark.parametrize("accuracy", ["clean", "corrupted"])
def test_srs_vs_accuracy_points(cube, accuracy):
    figure = srs_vs_accuracy(cube, accuracy=accuracy)
    points = figure.axes[0].collections[0].get_offsets()
    correct = cube["correct"].astype(float)
    if accuracy == "clean":
        expected = correct.sel(severity=0).mean(("perturbation", "sample"))
    else:
        expected = correct.sel(severity=[1, 2, 3, 4, 5]).mean(("perturbation", "severity", "sample"))
    np.testing.assert_allclose(points[:, 0], cube["srs"].values)
    np.testing.assert_allclose(points[:, 1], expected.values)


def test_mce_bars_heights_are_percentages(cube):
    figure = mce_bars(cube, relative=True)
    axes = figure.axes[0]
    heights = np.array([patch.get_height() for patch in axes.patches])
    expected = np.concatenate([100 * mce(cube, allow_partial=True).values,
                               100 * mce(cube, allow_partial=True, relative=True).values])
    np.testing.assert_allclose(heights, expected)
    assert "corruptions" not in axes.get_title()  # all 15 present: no partial note
    partial = make_cube(n_models=2, n_perturbations=3, n_methods=1, n_samples=10, n_examples=1)
    assert "of 15 corruptions" in mce_bars(partial, relative=False).axes[0].get_title()


def test_missing_variables_are_clear_errors(cube):
    with pytest.raises(ValueError, match="iaside"):
        sid_spectra(cube.drop_vars("sid"))
    with pytest.raises(ValueError, match="'clean' or 'corrupted'"):
        srs_vs_accuracy(cube, accuracy="both")
