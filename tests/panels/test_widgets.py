"""Widgets driven from Python: changing a control changes the panel's state and its image."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

from robustviz.panels import (CriteriaScatter, PanelError, CubeExplorer, CubeWatcher, SampleGallery, SeverityCurves,
                              SpectralPanel, completion, explore, heatmap_data, progress_bar)


def _changed(panel, control, value, image=None):
    image = image or panel.image
    panel.ensure_rendered()
    before = image.value
    control.value = value
    assert panel.last_error is None, panel.last_error
    return before != image.value


def test_explorer_dropdowns_redraw_and_open_the_cell(cube):
    panel = CubeExplorer(cube)
    panel.ensure_rendered()
    assert panel.state()["variable"] == "correct" and panel.method.disabled
    assert _changed(panel, panel.variable, "cosine")
    assert panel.state()["variable"] == "cosine" and not panel.method.disabled
    assert _changed(panel, panel.method, cube["method"].values[1])
    assert _changed(panel, panel.model, cube["model"].values[2])
    cell_before = panel.cell_image.value
    calls = []
    original = panel.refresh
    panel.refresh = lambda *a: (calls.append(1), original())
    panel.select_cell(cube["perturbation"].values[0], 2)
    assert len(calls) == 1  # both dropdowns, one redraw
    assert panel.state()["selected"] == (cube["perturbation"].values[0], 2)
    assert panel.cell_image.value != cell_before


def test_gallery_controls(cube):
    panel = SampleGallery(cube)
    assert _changed(panel, panel.normalisation, "per-map")
    assert _changed(panel, panel.example, int(cube["example"].values[1]))
    assert _changed(panel, panel.methods, (cube["method"].values[0],))
    assert panel.state()["methods"] == [cube["method"].values[0]]


def test_gallery_without_examples_shows_an_error_instead_of_raising(cube):
    panel = SampleGallery(cube.drop_vars(["example_image", "example_attribution"]).drop_dims("example"))
    panel.refresh()
    assert "example_image" in panel.message.value and panel.last_error


def test_curves_controls(cube):
    panel = SeverityCurves(cube, n_boot=50)
    assert panel.model.disabled
    assert _changed(panel, panel.variable, "cosine")
    assert _changed(panel, panel.by, "method")
    assert panel.state()["by"] == "method" and not panel.model.disabled and panel.method.disabled
    assert _changed(panel, panel.perturbation, cube["perturbation"].values[2])


def test_spectral_and_scatter_controls(cube):
    spectral = SpectralPanel(cube)
    assert _changed(spectral, spectral.models, tuple(cube["model"].values[:1]))
    scatter = CriteriaScatter(cube)
    model = cube["model"].values[1]
    assert _changed(scatter, scatter.model, model, image=scatter.plot)
    assert model in scatter.details.value and "accuracy" in scatter.details.value
    assert scatter.plot.value.count("<area") == cube.sizes["model"]
    assert _changed(scatter, scatter.variable, "deletion_auc", image=scatter.plot)


def test_explore_renders_tabs_lazily(cube):
    box = explore(cube)
    panels = box.panels
    assert list(panels) == ["explorer", "gallery", "severity curves", "spectral", "three criteria"]
    assert not panels["explorer"].image.value  # the matplotlib tabs draw when the accordion opens
    figures = box.children[-1]
    figures.selected_index = 0
    assert panels["explorer"].image.value and not panels["spectral"].image.value
    figures.children[0].selected_index = 3
    assert panels["spectral"].image.value
    assert box.explorer.heatmap["model"] == str(cube["model"].values[0])
    with pytest.raises(TypeError, match="xarray.Dataset"):
        explore(42)
    with pytest.raises(PanelError, match="'correct'"):
        explore(cube.drop_vars("correct"))


def test_panels_read_a_zarr_cube_lazily(zarr_cube):
    lazy = xr.open_zarr(zarr_cube, consolidated=False)
    box = explore(lazy)
    for panel in box.panels.values():
        panel.ensure_rendered()
        assert panel.last_error is None, panel.last_error
    for name in ("cosine", "correct", "example_attribution"):
        assert lazy[name].chunks is not None and not lazy[name].variable._in_memory


def test_watcher_refresh_sees_new_values_in_the_store(tmp_path, cube):
    path = tmp_path / "filling.zarr"
    cube.to_zarr(path, mode="w", consolidated=False)
    box = explore(path)
    assert box.watcher is not None
    explorer = box.panels["explorer"]
    box.children[-1].selected_index = 0
    model = cube["model"].values[0]
    before = heatmap_data(explorer.ds, "correct", model).values
    image_before = explorer.image.value
    linked_before = box.explorer.heatmap["mean"]
    group = zarr.open_group(path, mode="r+")
    group["correct"][0, ...] = False  # an evaluation writes a region
    box.watcher.button.click()
    after = heatmap_data(explorer.ds, "correct", model).values
    assert before.max() > 0 and np.all(after == 0)
    assert explorer.image.value != image_before
    assert "regions done" in box.watcher.status.value and "regions done" in box.explorer.status
    assert np.nanmax(np.array(linked_before, dtype=float)) > 0
    assert np.all(np.array(box.explorer.heatmap["mean"], dtype=float) == 0)


def test_completion_reads_the_done_mask(cube):
    done = xr.DataArray(np.array([[1, 0, 0], [1, 1, 0]], np.int8)[:, :, None], dims=("model", "perturbation", "chunk"))
    with_mask = cube.isel(model=[0, 1]).assign(done=done)
    assert completion(with_mask) == (3, 6)
    partial = cube.copy(deep=True)
    partial["prob_true"][1, 2] = np.nan
    assert completion(partial) == (cube.sizes["model"] * cube.sizes["perturbation"] - 1,
                                   cube.sizes["model"] * cube.sizes["perturbation"])
    with pytest.raises(FileNotFoundError, match="zarr store"):
        CubeWatcher("/nonexistent/cube.zarr")


def test_progress_bar_is_tqdm_auto():
    from tqdm.auto import tqdm

    bar = progress_bar(5, "regions", disable=True)
    assert isinstance(bar, tqdm) and bar.total == 5
    bar.close()
