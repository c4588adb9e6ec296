"""Model-robustness figures from a results cube: I-ASIDE spectra, SRS against accuracy, and mCE bars.

Each function reads a cube (never a model) and returns a :class:`matplotlib.figure.Figure` in the robustviz style
(:mod:`robustviz.figures.style`), built without pyplot so nothing leaks into global state. Pass ``ax=`` to draw into
an existing axes (e.g. a panel's).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..cube.robustness import IMAGENET_C_BENCHMARK, TABLE_BASELINE, mce
from .style import MARKERS, color, figure, style


def _variable(ds: xr.Dataset, name: str, dims: tuple[str, ...]) -> xr.DataArray:
    if name not in ds.data_vars:
        raise ValueError(f"the cube has no {name!r} variable; evaluate with the 'iaside' metric "
                         f"(spec metrics: [iaside]) to get {name!r} with dims {dims}")
    array = ds[name]
    if tuple(array.dims) != dims:
        raise ValueError(f"{name!r} must have dims {dims}, has {tuple(array.dims)}")
    return array


def _axes(ax: Axes | None, width: str | float, aspect: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    new = figure(width, aspect, layout="constrained")
    return new, new.add_subplot()


def sid_spectra(ds: xr.Dataset, *, width: str | float = "single", ax: Axes | None = None) -> Figure:
    """One line per model: I-ASIDE's spectral importance distribution over bands (low → high frequency), with the
    model's SRS in the legend."""
    distribution = _variable(ds, "sid", ("model", "band"))
    scores = ds["srs"] if "srs" in ds.data_vars else None
    bands = np.asarray(distribution["band"].values)
    with style():
        fig, ax = _axes(ax, width, 0.72)
        for index, model in enumerate(distribution["model"].values):
            label = str(model)
            if scores is not None:
                label += f" (SRS {float(scores.sel(model=model)):.3f})"
            ax.plot(bands, np.asarray(distribution.sel(model=model).values, dtype=float), label=label,
                    color=color(index), marker=MARKERS[index % len(MARKERS)])
        ax.set_xticks(bands)
        ax.set_xlabel("spectral band (0 = lowest frequencies)")
        ax.set_ylabel("spectral importance (SID)")
        ax.set_title("I-ASIDE spectral importance distribution")
        ax.legend(frameon=False)
    return fig


def srs_vs_accuracy(ds: xr.Dataset, *, accuracy: str = "corrupted", width: str | float = "single",
                    ax: Axes | None = None) -> Figure:
    """Scatter of each model's SRS against its accuracy: ``accuracy="clean"`` (severity 0) or ``"corrupted"``
    (mean over every perturbation and severity ≥ 1)."""
    scores = _variable(ds, "srs", ("model",))
    if "correct" not in ds.data_vars:
        raise ValueError("the cube has no 'correct' variable (dims model, perturbation, severity, sample)")
    correct = ds["correct"].astype(np.float64)
    if accuracy == "clean":
        values = correct.sel(severity=0).mean(("perturbation", "sample"))
    elif accuracy == "corrupted":
        severities = correct["severity"]
        values = correct.sel(severity=severities[severities > 0]).mean(("perturbation", "severity", "sample"))
    else:
        raise ValueError(f"accuracy must be 'clean' or 'corrupted', got {accuracy!r}")
    x = np.asarray(scores.values, dtype=float)
    y = np.asarray(values.sel(model=scores["model"]).values, dtype=float)
    with style():
        fig, ax = _axes(ax, width, 0.8)
        ax.scatter(x, y, color=[color(index) for index in range(x.size)])
        for model, x_value, y_value in zip(scores["model"].values, x, y):
            ax.annotate(str(model), (x_value, y_value), textcoords="offset points", xytext=(3, 3), fontsize=6)
        ax.set_xlabel("spectral robustness score (SRS)")
        ax.set_ylabel(f"{accuracy} accuracy")
        ax.set_title(f"SRS vs {accuracy} accuracy")
    return fig


def mce_bars(ds: xr.Dataset, baseline: str = TABLE_BASELINE, *, relative: bool = True, allow_partial: bool = True,
             width: str | float = "double", ax: Axes | None = None) -> Figure:
    """Bars of each model's mCE (and relative mCE when ``relative``) in % of the baseline; a dashed line marks the
    baseline's 100 %. With ``allow_partial`` the title says how many of the 15 corruptions were averaged."""
    scores = {"mCE": mce(ds, baseline, allow_partial=allow_partial)}
    if relative:
        scores["relative mCE"] = mce(ds, baseline, allow_partial=allow_partial, relative=True)
    models = [str(model) for model in scores["mCE"]["model"].values]
    positions = np.arange(len(models))
    bar_width = 0.8 / len(scores)
    count = len(scores["mCE"].attrs["corruptions"].split(", "))
    suffix = "" if count == len(IMAGENET_C_BENCHMARK) else f" ({count} of {len(IMAGENET_C_BENCHMARK)} corruptions)"
    with style():
        fig, ax = _axes(ax, width, 0.4)
        for index, (label, values) in enumerate(scores.items()):
            offset = (index - (len(scores) - 1) / 2) * bar_width
            bars = ax.bar(positions + offset, 100 * np.asarray(values.values, float), bar_width, label=label,
                          color=color(index))
            ax.bar_label(bars, fmt="%.1f", fontsize=6)
        ax.axhline(100.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(positions, models, rotation=30, ha="right")
        ax.set_ylabel(f"% of {baseline}")
        ax.set_title(f"Mean corruption error vs {baseline}{suffix}")
        ax.legend(frameon=False)
    return fig


__all__ = ["mce_bars", "sid_spectra", "srs_vs_accuracy"]
