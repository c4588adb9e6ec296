"""Three-criteria scatter: accuracy under perturbation vs explanation robustness, coloured by Fisher λmax.

One point per model: x = mean ``correct`` over the chosen perturbations, severities ≥ 1 and samples (accuracy under
perturbation); y = mean of an explanation-robustness variable (e.g. ``cosine``) over the same cells for one method;
colour = mean ``fisher_lmax`` on the clean images (larger λmax: the output is more sensitive to small input changes).
Hovering a point in the notebook shows the model and its three numbers (an HTML image map over the PNG); choosing a
model in the "model" dropdown outlines its point and lists its numbers below the plot.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from ._base import (Panel, PanelError, as_float, check_choice, computed, dropdown, figure_to_png, label_of,
                    method_variables, new_figure, options, require_variable)
from .curves import ALL_PERTURBATIONS

NO_MODEL = "(none)"
_DPI = 90


def criteria_data(ds: xr.Dataset, variable: str = "cosine", method: Any = None,
                  perturbation: Any = None) -> pd.DataFrame:
    """Per model: ``accuracy`` (severities ≥ 1), ``explanation`` (mean ``variable``, severities ≥ 1, NaN-ignoring)
    and ``fisher_lmax`` (clean); indexed by model."""
    correct = require_variable(ds, "correct", "the three-criteria scatter")
    explanation = require_variable(ds, variable, "the three-criteria scatter")
    if "method" not in explanation.dims:
        raise PanelError(f"{variable!r} is not an explanation metric (no method dim); choose one of "
                         f"{method_variables(ds)}")
    method = check_choice(ds, "method", method if method is not None else options(ds, "method")[0])
    perturbed = {"severity": [s for s in options(ds, "severity") if s > 0]}
    if perturbation is not None and perturbation != ALL_PERTURBATIONS:
        perturbed["perturbation"] = [check_choice(ds, "perturbation", perturbation)]
    reduce = ["perturbation", "severity", "sample"]
    accuracy = as_float(correct.sel(perturbed)).mean(reduce)
    robustness = explanation.sel({"method": method, **perturbed}).mean(reduce, skipna=True)
    columns = {"accuracy": computed(accuracy), "explanation": computed(robustness)}
    if "fisher_lmax" in ds.data_vars:
        clean = ds["fisher_lmax"].sel(severity=0)
        columns["fisher_lmax"] = computed(clean.mean([d for d in clean.dims if d != "model"], skipna=True))
    else:
        columns["fisher_lmax"] = np.full(ds.sizes["model"], np.nan)
    return pd.DataFrame(columns, index=pd.Index([str(m) for m in ds["model"].values], name="model"))


def render_criteria_scatter(ds: xr.Dataset, variable: str = "cosine", method: Any = None, perturbation: Any = None,
                            highlight: Any = None, table: pd.DataFrame | None = None) -> Figure:
    """Scatter (one labelled point per model) coloured by clean Fisher λmax; ``highlight`` outlines one model.
    ``table``: a precomputed :func:`criteria_data` for the same arguments."""
    if table is None:
        table = criteria_data(ds, variable, method, perturbation)
    figure = new_figure(6.5, 4.2)
    figure.subplots_adjust(left=0.11, right=0.98, bottom=0.12, top=0.92)
    axes = figure.add_subplot()
    colour = table["fisher_lmax"].to_numpy()
    has_fisher = bool(np.isfinite(colour).any())
    points = axes.scatter(table["accuracy"], table["explanation"], c=colour if has_fisher else "tab:blue",
                          cmap="plasma", s=70, edgecolors="black", linewidths=0.5, gid="models")
    for name, row in table.iterrows():
        axes.annotate(name, (row["accuracy"], row["explanation"]), textcoords="offset points", xytext=(5, 4),
                      fontsize=7)
    if highlight is not None and highlight != NO_MODEL and str(highlight) in table.index:
        row = table.loc[str(highlight)]
        axes.scatter([row["accuracy"]], [row["explanation"]], s=260, facecolors="none", edgecolors="red",
                     linewidths=2)
    if has_fisher:
        figure.colorbar(points, ax=axes, label="Fisher λmax, clean (lower: more robust)")
    axes.set_xlabel("accuracy under perturbation (severities 1–5)")
    axes.set_ylabel(label_of(ds, variable))
    where = "all perturbations" if perturbation in (None, ALL_PERTURBATIONS) else str(perturbation)
    axes.set_title(f"three criteria — {variable} of {method or options(ds, 'method')[0]}, {where}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.margins(0.15)
    return figure


def point_pixels(figure: Figure, table: pd.DataFrame, dpi: int = _DPI) -> np.ndarray:
    """Pixel (column, row) of each model's point in the PNG that :func:`figure_to_png` makes at ``dpi``."""
    if figure.stale or figure.dpi != dpi:  # limits are settled by a draw; figure_to_png leaves it drawn
        figure.set_dpi(dpi)
        figure.canvas.draw()
    axes = figure.axes[0]
    display = axes.transData.transform(table[["accuracy", "explanation"]].to_numpy(dtype=np.float64))
    height = figure.bbox.height
    return np.column_stack([display[:, 0], height - display[:, 1]])


def image_map_html(png: bytes, table: pd.DataFrame, pixels: np.ndarray, radius: int = 9) -> str:
    """The PNG as an <img> with an image map whose areas' titles name each model (native browser tooltips)."""
    areas = []
    for (name, row), (column, line) in zip(table.iterrows(), pixels):
        if not np.all(np.isfinite([column, line])):
            continue
        title = (f"{name}: accuracy {row['accuracy']:.3f}, explanation {row['explanation']:.3f}, "
                 f"Fisher λmax {row['fisher_lmax']:.3g}")
        areas.append(f'<area shape="circle" coords="{int(column)},{int(line)},{radius}" '
                     f'title="{html.escape(title)}" alt="{html.escape(str(name))}" data-model="{html.escape(str(name))}">')
    source = base64.b64encode(png).decode("ascii")
    return (f'<map name="robustviz-criteria">{"".join(areas)}</map>'
            f'<img class="robustviz-criteria" usemap="#robustviz-criteria" style="max-width:100%" '
            f'src="data:image/png;base64,{source}">')


class CriteriaScatter(Panel):
    """Accuracy vs explanation robustness vs Fisher λmax, one point per model."""

    render_function = staticmethod(render_criteria_scatter)

    def _build_controls(self) -> list:
        import ipywidgets as widgets

        ds = self.ds
        variables = method_variables(ds)
        self.variable = dropdown("explanation metric", variables,
                                 "cosine" if "cosine" in variables else (variables[0] if variables else None))
        self.method = dropdown("method", options(ds, "method") if "method" in ds.dims else [None])
        self.perturbation = dropdown("perturbation", [ALL_PERTURBATIONS, *options(ds, "perturbation")])
        self.model = dropdown("model", [NO_MODEL, *options(ds, "model")])
        self.plot = widgets.HTML()
        self.details = widgets.HTML()
        return [self.variable, self.method, self.perturbation, self.model]

    def _extra_widgets(self):
        return [self.plot, self.details]

    def state(self) -> dict[str, Any]:
        return {"variable": self.variable.value, "method": self.method.value,
                "perturbation": self.perturbation.value, "highlight": self.model.value}

    def render(self) -> Figure:
        state = self.state()
        self._table = criteria_data(self.ds, state["variable"], state["method"], state["perturbation"])
        return render_criteria_scatter(self.ds, table=self._table, **state)

    def _show(self, figure: Figure) -> None:
        state, table = self.state(), self._table
        self.image.value = figure_to_png(figure, dpi=_DPI)
        pixels = point_pixels(figure, table)  # after the draw: no second one
        self.plot.value = image_map_html(self.image.value, table, pixels)
        chosen = state["highlight"]
        if chosen != NO_MODEL and str(chosen) in table.index:
            row = table.loc[str(chosen)]
            self.details.value = (f"<b>{html.escape(str(chosen))}</b>: accuracy under perturbation "
                                  f"{row['accuracy']:.3f}; {html.escape(state['variable'])} {row['explanation']:.3f}; "
                                  f"clean Fisher λmax {row['fisher_lmax']:.3g}")
        else:
            self.details.value = "Hover a point for its model; choose a model above to outline it."


__all__ = ["CriteriaScatter", "criteria_data", "image_map_html", "point_pixels", "render_criteria_scatter"]
