"""Spectral panel: I-ASIDE's spectral importance distribution (SID) per model, with its spectral robustness score.

SID is the per-band Shapley value ψ shifted to a minimum of 0 and divided by its sum (band 0 = lowest frequencies);
SRS = |⟨b̂, SID⟩ − D| / |1 − D| with b_k = β^k (β = 0.75), b̂ = b/‖b‖₂ and D = (‖b‖₁/‖b‖₂)/M scores how much of the
importance sits on low frequencies (Wang et al., I-ASIDE). Left: SID per model; right: SRS per model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._base import Panel, PanelError, check_choice, computed, new_figure, options


def spectral_data(ds: xr.Dataset, models: Sequence[Any] | None = None) -> xr.Dataset:
    """``sid`` (model, band) and ``srs`` (model) for the chosen models (default: all), computed."""
    missing = [name for name in ("sid", "srs") if name not in ds.data_vars]
    if missing:
        raise PanelError(f"this cube has no I-ASIDE results (missing {', '.join(missing)}); add the I-ASIDE metric "
                         f"to the spec's metrics to compute SID and SRS")
    models = options(ds, "model") if models is None else list(models)
    if not models:
        raise PanelError("choose at least one model")
    for model in models:
        check_choice(ds, "model", model)
    picked = ds[["sid", "srs"]].sel(model=models)
    return xr.Dataset({"sid": picked["sid"].transpose("model", "band").copy(data=computed(
        picked["sid"].transpose("model", "band"))), "srs": picked["srs"].copy(data=computed(picked["srs"]))})


def render_spectral(ds: xr.Dataset, models: Sequence[Any] | None = None) -> Figure:
    """SID lines per model (legend: model and SRS) and a bar chart of SRS."""
    data = spectral_data(ds, models)
    figure = new_figure(8.0, 3.4)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.3, top=0.88, wspace=0.3)
    sid_axes, srs_axes = figure.subplots(1, 2, width_ratios=[2, 1])
    bands = data["band"].values
    names = [str(m) for m in data["model"].values]
    scores = np.asarray(data["srs"].values, dtype=np.float64)
    colours = []
    for index, name in enumerate(names):
        (line,) = sid_axes.plot(bands, data["sid"].values[index], marker="o", markersize=3,
                                label=f"{name} (SRS {scores[index]:.3f})")
        colours.append(line.get_color())
    sid_axes.set_xlabel("frequency band (0 = lowest)")
    sid_axes.set_ylabel("SID (share of Shapley value)")
    sid_axes.set_xticks(bands)
    sid_axes.legend(fontsize=7)
    sid_axes.grid(alpha=0.3)
    srs_axes.bar(range(len(names)), scores, color=colours)
    srs_axes.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    srs_axes.set_ylabel("SRS (higher: more low-frequency)")
    figure.suptitle("I-ASIDE spectral importance", fontsize=10)
    return figure


class SpectralPanel(Panel):
    """SID per model with SRS; choose which models to show."""

    render_function = staticmethod(render_spectral)

    def _build_controls(self) -> list:
        import ipywidgets as widgets

        models = options(self.ds, "model")
        self.models = widgets.SelectMultiple(description="models", options=models, value=tuple(models),
                                             rows=min(6, len(models)))
        return [self.models]

    def state(self) -> dict[str, Any]:
        return {"models": list(self.models.value)}


__all__ = ["SpectralPanel", "render_spectral", "spectral_data"]
