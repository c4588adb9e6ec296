"""Notebook panels over a results cube.

:class:`LinkedExplorer` (an anywidget: one dependency-free ES module, no JupyterLab build step) shows seven linked,
clickable views that share one selection; :func:`write_report` writes the same views into a static HTML file.
The matplotlib panels (a class with ``.widget`` and a pure ``render_*(ds, **state) -> Figure`` each) stay for
paper-style figures. :func:`explore` shows the linked explorer with the matplotlib panels in tabs below. All read
lazily: give them ``xr.open_zarr(path)`` (or the path) and they compute only the slices they show. They never run
a model.
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from ._base import Panel, PanelError, figure_to_png
from .curves import SeverityCurves, render_severity_curves, severity_curve_data
from .explorer import CubeExplorer, cell_samples, heatmap_data, render_heatmap, render_sample_view
from .gallery import SampleGallery, colour_limits, gallery_data, render_gallery
from .linked import LinkedExplorer
from .payloads import CubeData
from .progress import CubeWatcher, completion, open_cube, progress_bar
from .scatter import CriteriaScatter, criteria_data, render_criteria_scatter
from .report import ReportError, render_report, write_report
from .spectral import SpectralPanel, render_spectral, spectral_data


def _panels_for(ds: xr.Dataset) -> dict[str, Panel]:
    """The panels this cube has data for, by tab title."""
    panels: dict[str, Panel] = {"explorer": CubeExplorer(ds)}
    if "example_image" in ds.data_vars and "example" in ds.dims:
        panels["gallery"] = SampleGallery(ds)
    panels["severity curves"] = SeverityCurves(ds)
    if {"sid", "srs"} <= set(ds.data_vars):
        panels["spectral"] = SpectralPanel(ds)
    if "method" in ds.dims and "correct" in ds.data_vars and any("method" in v.dims for v in ds.data_vars.values()):
        panels["three criteria"] = CriteriaScatter(ds)
    return panels


def _check_structure(ds: xr.Dataset) -> None:
    """The dims and variables the panels need. Not the full ``schema.validate``: that reads every value, and a
    store an evaluation is still filling legitimately holds unwritten (fill-value) regions."""
    from ..cube.schema import SAMPLE_DIMS

    missing = [f"dim {dim!r}" for dim in SAMPLE_DIMS if dim not in ds.dims]
    missing += [f"variable {name!r}" for name in ("correct",) if name not in ds.data_vars]
    if missing:
        raise PanelError(f"this Dataset is not a robustviz cube: it lacks {', '.join(missing)}; build cubes with "
                         f"robustviz.evaluate (or robustviz.testing.make_cube for a synthetic one)")


def explore(cube: xr.Dataset | str | os.PathLike[str], *, poll: float | None = None) -> Any:
    """The linked explorer of ``cube`` with the matplotlib panels in tabs below; returns the ipywidgets box
    (display it, or leave it last in a cell).

    ``cube`` is a Dataset (ideally lazy, from ``xr.open_zarr``) or the path of a zarr store; with a path, a refresh
    button re-reads the store so the views follow an evaluation that is still writing it, and ``poll`` (seconds)
    re-reads it by itself until every region is done. A matplotlib tab draws when first shown. The box carries
    ``.explorer`` (the :class:`LinkedExplorer`), ``.panels`` (title → matplotlib panel) and ``.watcher`` (a
    :class:`CubeWatcher` or None).
    """
    import ipywidgets as widgets

    watcher = None
    if isinstance(cube, (str, os.PathLike)):
        watcher = CubeWatcher(cube)
        cube = watcher.ds
    elif not isinstance(cube, xr.Dataset):
        raise TypeError(f"explore needs a robustviz cube (xarray.Dataset) or the path of its zarr store, got "
                        f"{type(cube).__name__}")
    _check_structure(cube)
    explorer = LinkedExplorer(cube)
    panels = _panels_for(cube)
    tabs = widgets.Tab(children=[panel.widget for panel in panels.values()], titles=list(panels))
    figures = widgets.Accordion(children=[tabs], titles=["matplotlib panels (paper-style figures)"],
                                selected_index=None)
    ordered = list(panels.values())

    def show_selected(*_: Any) -> None:
        if figures.selected_index is not None and tabs.selected_index is not None:
            ordered[tabs.selected_index].ensure_rendered()

    def reread(ds: xr.Dataset) -> None:
        explorer.set_dataset(ds, status=watcher.summary() if watcher is not None else None)
        for panel in ordered:
            panel.set_dataset(ds, redraw=False)
        show_selected()

    tabs.observe(show_selected, names="selected_index")
    figures.observe(show_selected, names="selected_index")
    tabs.selected_index = 0
    box = widgets.VBox(([watcher.widget] if watcher is not None else []) + [explorer, figures])
    if watcher is not None:
        explorer.status = watcher.summary()
        watcher.listeners.append(reread)
        if poll is not None:
            watcher.poll(poll)
    box.explorer = explorer
    box.panels = panels
    box.watcher = watcher
    return box


__all__ = ["CriteriaScatter", "CubeData", "CubeExplorer", "CubeWatcher", "LinkedExplorer", "Panel", "PanelError",
           "ReportError", "SampleGallery", "render_report", "write_report",
           "SeverityCurves", "SpectralPanel", "cell_samples", "colour_limits", "completion", "criteria_data",
           "explore", "figure_to_png", "gallery_data", "heatmap_data", "open_cube", "progress_bar",
           "render_criteria_scatter", "render_gallery", "render_heatmap", "render_sample_view",
           "render_severity_curves", "render_spectral", "severity_curve_data", "spectral_data"]
