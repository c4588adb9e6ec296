"""%load_ext: cube HTML display, fallback to xarray's display for other Datasets, explore in the namespace."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from robustviz.panels.extension import cube_html, dataset_html, is_cube, load_ipython_extension, sparkline_svg


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    shell.display_formatter.formatters["text/html"].type_printers.pop(xr.Dataset, None)
    shell.user_ns.pop("explore", None)


def test_extension_registers_display_and_explore(shell, cube):
    load_ipython_extension(shell)
    from robustviz.panels import explore

    assert shell.user_ns["explore"] is explore
    data, _ = shell.display_formatter.format(cube)
    assert "robustviz cube" in data["text/html"]
    plain = xr.Dataset({"a": ("x", np.arange(3))})
    data, _ = shell.display_formatter.format(plain)
    assert "robustviz cube" not in data["text/html"] and "xr-wrap" in data["text/html"]


def test_cube_html_lists_dims_variables_provenance_and_sparklines(cube):
    markup = cube_html(cube)
    for model in cube["model"].values:
        assert model in markup
    for name in cube.data_vars:
        assert f">{name}<" in markup
    assert cube.attrs["torch_version"] in markup and cube.attrs["created"] in markup
    assert markup.count("<svg") == cube.sizes["model"]
    assert is_cube(cube) and not is_cube(xr.Dataset()) and not is_cube(42)
    assert "xr-wrap" in dataset_html(xr.Dataset({"a": ("x", [1])}))


def test_sparkline_points_follow_the_accuracy(cube):
    accuracy = cube["correct"].values[0].astype(float).mean(axis=(0, 2))  # mean over perturbation, sample
    markup = cube_html(cube)
    first = re.search(r'points="([^"]*)"', markup).group(1)
    ys = np.array([float(point.split(",")[1]) for point in first.split()])
    height = 22
    np.testing.assert_allclose(ys, height - 2 - (height - 4) * accuracy, atol=0.06)


def test_sparkline_skips_nan_and_clips():
    markup = sparkline_svg(np.array([0.5, np.nan, 2.0]), width=10, height=10)
    points = re.search(r'points="([^"]*)"', markup).group(1).split()
    assert points == ["2.0,5.0", "8.0,2.0"]
