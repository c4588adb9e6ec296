"""Severity curves: a metric versus severity, one line per model (or method), with bootstrap CI bands."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .style import LINESTYLES, MARKERS, color, figure, style


def _ci(values: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap 95 % CI over the last axis (NaN-aware)."""
    try:
        from ..cube.stats import bootstrap_ci
    except ImportError:  # statistics module not available: plain means, no bands
        mean = np.nanmean(values, axis=-1)
        return mean, mean, mean
    return bootstrap_ci(values, axis=-1, n_boot=n_boot, ci=0.95, seed=seed)


def severity_curves(ds: xr.Dataset, variable: str = "correct", *, by: str = "model", method: str | None = None,
                    perturbations: Sequence[str] | None = None, n_boot: int = 500, seed: int = 0,
                    width: str | float = "single", ax=None) -> Figure:
    """Mean of ``variable`` (``correct`` → accuracy) against severity, averaged over the chosen perturbations
    (default all), one line per ``by`` value (``"model"`` or ``"method"``), with bootstrap 95 % CI bands over samples.
    """
    if variable not in ds:
        raise KeyError(f"the cube has no variable {variable!r}; variables: {', '.join(ds.data_vars)}")
    var = ds[variable]
    if perturbations is not None:
        var = var.sel(perturbation=list(perturbations))
    if "method" in var.dims:
        if by != "method":
            var = var.sel(method=method) if method is not None else var.isel(method=0)
    elif by == "method":
        raise ValueError(f"{variable!r} has no method dim; use by='model'")
    other = [d for d in ("model", "method") if d in var.dims and d != by]
    for dim in other:
        var = var.isel({dim: 0})
    # average perturbations per sample first, so the CI is over samples
    values = var.astype("float64").mean("perturbation", skipna=True).transpose(by, "severity", "sample")
    values = np.asarray(values.values)
    mean, low, high = _ci(values, n_boot, seed)
    severities = np.asarray(ds["severity"].values)
    with style():
        fig = ax.figure if ax is not None else figure(width)
        ax = ax or fig.add_subplot(1, 1, 1)
        for index, name in enumerate(np.asarray(var[by].values)):
            ax.plot(severities, mean[index], label=str(name), color=color(index),
                    linestyle=LINESTYLES[index // 8 % len(LINESTYLES)], marker=MARKERS[index % len(MARKERS)])
            ax.fill_between(severities, low[index], high[index], color=color(index), alpha=0.18, linewidth=0)
        label = "accuracy" if variable == "correct" else ds[variable].attrs.get("long_name", variable)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(label if len(label) < 40 else variable)
        ax.set_xticks(severities)
        ax.legend(frameon=False, ncol=1 + len(mean) // 4, loc="best")
        name = "accuracy" if variable == "correct" else variable
        title = "all perturbations" if perturbations is None else ", ".join(perturbations)
        ax.set_title(f"{name} vs severity ({title})" if len(title) < 40 else f"{name} vs severity")
    return fig


__all__ = ["severity_curves"]
