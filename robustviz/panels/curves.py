"""Severity curves: a metric's sample mean against severity, one line per model (or per method), with bootstrap CIs.

For each line and severity the values of the samples are resampled with replacement (percentile bootstrap,
``robustviz.cube.stats.bootstrap_ci``; NaN — undefined — samples are ignored), giving the shaded ``ci`` band around
the mean. With ``perturbation=None`` each sample's values are first averaged over the perturbations (the clean
severity 0 is the same for all of them), so the curve is the mean over perturbations and the band reflects sample
variation only.
"""

from __future__ import annotations

from typing import Any

import xarray as xr
from matplotlib.figure import Figure

from ..cube.stats import bootstrap_ci
from ._base import (Panel, PanelError, as_float, check_choice, computed, dropdown, label_of, new_figure, options,
                    require_variable, sample_variables)

GROUPINGS = ("model", "method")
ALL_PERTURBATIONS = "(mean over perturbations)"


def severity_curve_data(ds: xr.Dataset, variable: str, by: str = "model", *, model: Any = None, method: Any = None,
                        perturbation: Any = None, n_boot: int = 500, ci: float = 0.95,
                        seed: int = 0) -> xr.Dataset:
    """``mean``, ``low``, ``high`` with dims (``by``, severity).

    ``by="model"`` draws every model (for one ``method`` when the variable has a method dim, default the first);
    ``by="method"`` draws every method for one ``model`` (default the first).
    """
    array = require_variable(ds, variable, "severity curves")
    if variable not in sample_variables(ds):
        raise PanelError(f"severity curves need a per-sample variable; {variable!r} has dims {array.dims}")
    if by not in GROUPINGS:
        raise PanelError(f"by must be one of {GROUPINGS}, got {by!r}")
    if by == "method" and "method" not in array.dims:
        raise PanelError(f"variable {variable!r} has no method dim; draw it by='model' or pick an explanation "
                         f"metric")
    selection: dict[str, Any] = {}
    if by == "model" and "method" in array.dims:
        selection["method"] = check_choice(ds, "method", method if method is not None else options(ds, "method")[0])
    if by == "method":
        selection["model"] = check_choice(ds, "model", model if model is not None else options(ds, "model")[0])
    if perturbation is not None and perturbation != ALL_PERTURBATIONS:
        selection["perturbation"] = check_choice(ds, "perturbation", perturbation)
    values = as_float(array.sel(selection))
    if "perturbation" in values.dims:
        values = values.mean("perturbation", skipna=True)
    values = values.transpose(by, "severity", "sample")
    samples = computed(values)
    mean, low, high = bootstrap_ci(samples, axis=-1, n_boot=n_boot, ci=ci, seed=seed)
    coords = {by: values[by].values, "severity": values["severity"].values}
    dims = (by, "severity")
    return xr.Dataset({"mean": (dims, mean), "low": (dims, low), "high": (dims, high)}, coords=coords,
                      attrs={"variable": variable, "by": by, "ci": ci, "n_boot": n_boot,
                             **{f"fixed_{k}": str(v) for k, v in selection.items()}})


def render_severity_curves(ds: xr.Dataset, variable: str, by: str = "model", *, model: Any = None,
                           method: Any = None, perturbation: Any = None, n_boot: int = 500, ci: float = 0.95,
                           seed: int = 0) -> Figure:
    """One line (mean) and one shaded band (bootstrap CI) per model or method."""
    data = severity_curve_data(ds, variable, by, model=model, method=method, perturbation=perturbation,
                               n_boot=n_boot, ci=ci, seed=seed)
    figure = new_figure(6.5, 3.6)
    figure.subplots_adjust(left=0.11, right=0.98, bottom=0.13, top=0.9)
    axes = figure.add_subplot()
    severities = data["severity"].values
    for name in data[by].values:
        line = data.sel({by: name})
        (drawn,) = axes.plot(severities, line["mean"].values, marker="o", markersize=3, label=str(name))
        axes.fill_between(severities, line["low"].values, line["high"].values, color=drawn.get_color(), alpha=0.2,
                          linewidth=0)
    axes.set_xlabel("severity")
    axes.set_xticks(severities)
    axes.set_ylabel(label_of(ds, variable))
    fixed = ", ".join(f"{key[6:]} {value}" for key, value in data.attrs.items() if key.startswith("fixed_"))
    where = "mean over perturbations" if perturbation in (None, ALL_PERTURBATIONS) else ""
    axes.set_title(f"{variable} by {by}" + (f" ({', '.join(filter(None, [fixed, where]))})" if fixed or where
                                            else "") + f"; bands: {int(round(ci * 100))}% bootstrap CI",
                   fontsize=9)
    axes.legend(fontsize=7, ncol=2 if data.sizes[by] > 6 else 1)
    axes.grid(alpha=0.3)
    return figure


class SeverityCurves(Panel):
    """Metric vs severity per model or per method, with bootstrap confidence bands."""

    render_function = staticmethod(render_severity_curves)

    def __init__(self, ds: xr.Dataset, n_boot: int = 500, ci: float = 0.95):
        self.n_boot, self.ci = n_boot, ci
        super().__init__(ds)

    def _build_controls(self) -> list:
        ds = self.ds
        variables = sample_variables(ds)
        self.variable = dropdown("variable", variables, "correct" if "correct" in variables else variables[0])
        self.by = dropdown("lines per", list(GROUPINGS) if "method" in ds.dims else ["model"])
        self.model = dropdown("model", options(ds, "model"))
        self.method = dropdown("method", options(ds, "method") if "method" in ds.dims else [None])
        self.perturbation = dropdown("perturbation", [ALL_PERTURBATIONS, *options(ds, "perturbation")])
        return [self.variable, self.by, self.model, self.method, self.perturbation]

    def _sync_controls(self) -> None:
        has_method = "method" in self.ds[self.variable.value].dims
        by = self.by.value if has_method else "model"
        self.by.disabled = not has_method
        self.model.disabled = by == "model"
        self.method.disabled = by == "method" or not has_method

    def state(self) -> dict[str, Any]:
        has_method = "method" in self.ds[self.variable.value].dims
        by = self.by.value if has_method else "model"
        return {"variable": self.variable.value, "by": by, "model": self.model.value,
                "method": self.method.value if has_method else None, "perturbation": self.perturbation.value,
                "n_boot": self.n_boot, "ci": self.ci}


__all__ = ["ALL_PERTURBATIONS", "GROUPINGS", "SeverityCurves", "render_severity_curves", "severity_curve_data"]
