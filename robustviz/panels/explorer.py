"""Cube explorer: a perturbation × severity heatmap of one variable's sample mean, and a per-sample view of one cell.

Choose the variable, model and (for explanation metrics) method; the heatmap shows the mean over samples of every
(perturbation, severity) cell — for ``correct`` that is the accuracy. Choosing a cell (the perturbation and severity
dropdowns) draws the per-sample view: the distribution of the cell's values next to the clean (severity 0) values of
the same samples, and each sample's clean → perturbed pair.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from ..figures.style import annotate_cells

from ._base import (Panel, PanelError, as_float, check_choice, computed, dropdown, figure_to_png, label_of, new_figure,
                    options, require_variable, sample_variables, select_cell)


def _check_heatmap_args(ds: xr.Dataset, variable: str, model: Any, method: Any) -> xr.DataArray:
    array = require_variable(ds, variable, "the cube explorer")
    if variable not in sample_variables(ds):
        raise PanelError(f"variable {variable!r} has dims {array.dims}; the explorer shows per-sample variables "
                         f"(with perturbation, severity and sample dims): {sample_variables(ds)}")
    check_choice(ds, "model", model)
    if "method" in array.dims:
        if method is None:
            raise PanelError(f"variable {variable!r} is per explanation method; pass method= one of "
                             f"{options(ds, 'method')}")
        check_choice(ds, "method", method)
    return array


def heatmap_data(ds: xr.Dataset, variable: str, model: Any, method: Any = None) -> xr.DataArray:
    """Mean over samples (NaN-ignoring) of ``variable`` for one model (and method): dims (perturbation, severity)."""
    array = _check_heatmap_args(ds, variable, model, method)
    cell = as_float(select_cell(array, model=model, method=method))
    mean = cell.mean("sample", skipna=True).transpose("perturbation", "severity")
    return mean.copy(data=computed(mean))


def render_heatmap(ds: xr.Dataset, variable: str, model: Any, method: Any = None,
                   selected: tuple[Any, Any] | None = None, data: xr.DataArray | None = None) -> Figure:
    """Heatmap of :func:`heatmap_data` (rows: perturbations, columns: severities), the ``selected``
    (perturbation, severity) cell outlined. The colour map runs dark → bright towards the better direction."""
    if data is None:
        data = heatmap_data(ds, variable, model, method)
    values = np.asarray(data.values, dtype=np.float64)
    perturbations = [str(p) for p in data["perturbation"].values]
    severities = [int(s) for s in data["severity"].values]
    height = max(2.6, 1.2 + 0.28 * len(perturbations))
    figure = new_figure(6.5, height)
    longest = max(len(name) for name in perturbations)
    figure.subplots_adjust(left=min(0.4, 0.1 + 0.0115 * longest), right=0.98, bottom=0.55 / height,
                           top=1 - 0.4 / height)
    axes = figure.add_subplot()
    colour_map = "viridis_r" if ds[variable].attrs.get("direction") == "lower" else "viridis"
    image = axes.imshow(values, aspect="auto", cmap=colour_map, interpolation="nearest")
    axes.set_xticks(range(len(severities)), [str(s) for s in severities])
    axes.set_yticks(range(len(perturbations)), perturbations, fontsize=8 if len(perturbations) > 12 else 10)
    axes.set_xlabel("severity")
    axes.set_ylabel("perturbation")
    title = f"{variable} — {model}" + (f" — {method}" if "method" in ds[variable].dims else "")
    axes.set_title(title + " (mean over samples)")
    figure.colorbar(image, ax=axes, label=label_of(ds, variable))
    if values.size <= 80:
        annotate_cells(axes, values, fontsize=7)
    if selected is not None and selected[0] in perturbations and int(selected[1]) in severities:
        row, column = perturbations.index(selected[0]), severities.index(int(selected[1]))
        axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    return figure


def cell_samples(ds: xr.Dataset, variable: str, model: Any, perturbation: Any, severity: int,
                 method: Any = None) -> xr.Dataset:
    """Per-sample values of one cell and of the same samples clean: variables ``perturbed`` and ``clean``."""
    array = _check_heatmap_args(ds, variable, model, method)
    check_choice(ds, "perturbation", perturbation)
    check_choice(ds, "severity", severity)
    cell = as_float(select_cell(array, model=model, method=method, perturbation=perturbation))
    pair = cell.sel(severity=[0, severity])
    values = computed(pair.transpose("severity", "sample"))
    return xr.Dataset({"clean": ("sample", values[0]), "perturbed": ("sample", values[-1])},
                      coords={"sample": pair["sample"].values})


def render_sample_view(ds: xr.Dataset, variable: str, model: Any, perturbation: Any, severity: int,
                       method: Any = None) -> Figure:
    """Left: histograms of the cell's per-sample values and of the clean values; right: clean vs perturbed per
    sample (one point each; the dashed line is "unchanged")."""
    samples = cell_samples(ds, variable, model, perturbation, severity, method)
    clean, perturbed = samples["clean"].values, samples["perturbed"].values
    figure = new_figure(7.0, 2.8)
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.17, top=0.86, wspace=0.3)
    hist_axes, pair_axes = figure.subplots(1, 2)
    finite = np.concatenate([clean[np.isfinite(clean)], perturbed[np.isfinite(perturbed)]])
    bins = np.linspace(finite.min(), finite.max() + 1e-9, 21) if finite.size else 10
    hist_axes.hist(clean[np.isfinite(clean)], bins=bins, histtype="step", linewidth=1.5, label="clean (severity 0)")
    hist_axes.hist(perturbed[np.isfinite(perturbed)], bins=bins, histtype="step", linewidth=1.5,
                   label=f"severity {severity}")
    hist_axes.set_xlabel(variable)
    hist_axes.set_ylabel("samples")
    hist_axes.legend(fontsize=7)
    pair_axes.scatter(clean, perturbed, s=8, alpha=0.6)
    if finite.size:
        low, high = finite.min(), finite.max()
        pair_axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    pair_axes.set_xlabel("clean")
    pair_axes.set_ylabel(f"{perturbation}, severity {severity}")
    n_missing = int(np.isnan(perturbed).sum())
    figure.suptitle(f"{variable}: {model}" + (f", {method}" if method is not None and "method" in ds[variable].dims
                                              else "") + f" — {perturbed.size} samples"
                    + (f" ({n_missing} undefined)" if n_missing else ""), fontsize=10)
    return figure


class CubeExplorer(Panel):
    """Heatmap of a variable over perturbation × severity, plus the per-sample view of the chosen cell."""

    render_function = staticmethod(render_heatmap)

    def _build_controls(self) -> list:
        import ipywidgets as widgets

        ds = self.ds
        variables = sample_variables(ds)
        default = "correct" if "correct" in variables else variables[0]
        self.variable = dropdown("variable", variables, default)
        self.model = dropdown("model", options(ds, "model"))
        self.method = dropdown("method", options(ds, "method") if "method" in ds.dims else [None])
        self.perturbation = dropdown("perturbation", options(ds, "perturbation"))
        severities = options(ds, "severity")
        self.severity = dropdown("severity", severities, severities[-1])
        self.cell_image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self._heatmap_cache = lru_cache(maxsize=64)(self._heatmap_data)
        return [self.variable, self.model, self.method, self.perturbation, self.severity]

    def _extra_widgets(self):
        return [self.image, self.cell_image]

    def _sync_controls(self) -> None:
        self.method.disabled = "method" not in self.ds[self.variable.value].dims

    def _heatmap_data(self, variable: str, model: Any, method: Any) -> xr.DataArray:
        return heatmap_data(self.ds, variable, model, method)

    def state(self) -> dict[str, Any]:
        method = self.method.value if "method" in self.ds[self.variable.value].dims else None
        return {"variable": self.variable.value, "model": self.model.value, "method": method,
                "selected": (self.perturbation.value, self.severity.value)}

    def render(self) -> Figure:
        state = self.state()
        data = self._heatmap_cache(state["variable"], state["model"], state["method"])
        return render_heatmap(self.ds, data=data, **state)

    def render_cell(self) -> Figure:
        state = self.state()
        perturbation, severity = state.pop("selected")
        return render_sample_view(self.ds, perturbation=perturbation, severity=severity, **state)

    def _show(self, figure: Figure) -> None:
        self.image.value = figure_to_png(figure)
        self.cell_image.value = figure_to_png(self.render_cell())

    def select_cell(self, perturbation: Any, severity: int) -> None:
        """Open the per-sample view of a cell (what a click on the heatmap would do)."""
        with self.batch():
            self.perturbation.value = perturbation
            self.severity.value = severity

    def _forget_cached(self) -> None:
        self._heatmap_cache.cache_clear()


__all__ = ["CubeExplorer", "cell_samples", "heatmap_data", "render_heatmap", "render_sample_view"]
