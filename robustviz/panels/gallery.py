"""Sample gallery: a stored example, clean and perturbed, with its attribution maps across severities.

Reads the cube's stored examples (``example_image``, ``example_attribution``; the ``example`` coordinate holds their
sample ids) — no model is run. Each column is a severity (0 = clean); the top row shows the image with the model's
predicted class and confidence (from ``pred``/``confidence`` at the example's sample id), the other rows one
explanation method each. Maps share one symmetric colour scale ``[-m, m]`` with ``m`` the largest ``|attribution|``
shown, so that maps can be compared by colour (signs kept: red positive, blue negative); ``normalisation="per-map"``
scales each map by its own ``max |a|`` instead, which shows shape but hides magnitude changes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._base import (Panel, PanelError, check_choice, class_names, computed, dropdown, new_figure, options,
                    require_variable)

NORMALISATIONS = ("shared", "per-map")
GAP = 2  #: pixels between tiles of a gallery row
ATTRIBUTION_COLOUR_MAP = "RdBu_r"


def gallery_data(ds: xr.Dataset, model: Any, perturbation: Any, example: Any, methods: Sequence[Any] | None = None,
                 severities: Sequence[int] | None = None) -> dict[str, Any]:
    """What the gallery shows, as numpy: ``images`` (severity, y, x, channel) uint8, ``attributions`` (method,
    severity, y, x) float32, ``pred``/``confidence``/``correct`` per severity, ``label``, ``methods``, ``severities``,
    ``class_names``."""
    images = require_variable(ds, "example_image", "the sample gallery")
    check_choice(ds, "model", model)
    check_choice(ds, "perturbation", perturbation)
    check_choice(ds, "example", example)
    severities = list(options(ds, "severity")) if severities is None else [int(s) for s in severities]
    for severity in severities:
        check_choice(ds, "severity", severity)
    has_maps = "example_attribution" in ds.data_vars and "method" in ds.dims
    if methods is None:
        methods = options(ds, "method") if has_maps else []
    methods = list(methods)
    if methods and not has_maps:
        raise PanelError("this cube stores no attribution maps ('example_attribution'); evaluate with methods and "
                         "n_examples > 0 to see them")
    for method in methods:
        check_choice(ds, "method", method)
    cell = {"model": model, "perturbation": perturbation, "severity": severities}
    image = computed(images.sel(example=example, **cell).transpose("severity", "y", "x", "channel"))
    attributions = np.zeros((0, len(severities), *image.shape[1:3]), np.float32)
    if methods:
        maps = ds["example_attribution"].sel({"example": example, "method": methods, **cell})
        attributions = computed(maps.transpose("method", "severity", "y", "x")).astype(np.float32)
    sample = {"sample": example} if "sample" in ds.dims else {}
    prediction = {}
    for name in ("pred", "confidence", "correct"):
        if name in ds.data_vars and sample:
            prediction[name] = computed(ds[name].sel(**cell, **sample))
    label = int(ds["label"].sel(**sample).values) if sample and "label" in ds.coords else None
    return {"images": image, "attributions": attributions, "methods": methods, "severities": severities,
            "label": label, "class_names": class_names(ds), **prediction}


def colour_limits(attributions: np.ndarray, normalisation: str = "shared") -> np.ndarray:
    """``(method, severity, 2)`` colour limits: symmetric around 0, shared across all maps or per map."""
    if normalisation not in NORMALISATIONS:
        raise PanelError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    magnitude = np.abs(np.nan_to_num(attributions.astype(np.float64)))
    if normalisation == "shared":
        extent = np.full(attributions.shape[:2], magnitude.max() if magnitude.size else 1.0)
    else:
        extent = magnitude.max(axis=(-2, -1)) if magnitude.size else np.ones(attributions.shape[:2])
    extent = np.where(extent > 0, extent, 1.0)
    return np.stack([-extent, extent], axis=-1)


def _class(names: list[str] | None, index: int) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def mosaic(tiles: np.ndarray, gap: int = GAP, fill: float = np.nan) -> np.ndarray:
    """Tiles ``(n, y, x[, channel])`` side by side with ``gap`` columns of ``fill`` between them.

    One image per gallery row draws far faster than one axes per tile; :func:`tile_of` cuts a tile back out."""
    n, height, width = tiles.shape[:3]
    out = np.full((height, n * (width + gap) - gap, *tiles.shape[3:]), fill,
                  dtype=np.result_type(tiles.dtype, np.asarray(fill).dtype) if tiles.dtype.kind == "f"
                  else tiles.dtype)
    for index in range(n):
        out[:, index * (width + gap): index * (width + gap) + width] = tiles[index]
    return out


def tile_of(row: np.ndarray, index: int, width: int, gap: int = GAP) -> np.ndarray:
    """Tile ``index`` of a :func:`mosaic` row."""
    return row[:, index * (width + gap): index * (width + gap) + width]


def render_gallery(ds: xr.Dataset, model: Any, perturbation: Any, example: Any,
                   methods: Sequence[Any] | None = None, severities: Sequence[int] | None = None,
                   normalisation: str = "shared") -> Figure:
    """Rows: the (perturbed) image, then one row of attribution maps per method; columns: severities. Each row is
    one image (a :func:`mosaic` of the tiles, ``GAP`` pixels apart); tile titles give "pred (confidence)".
    With ``normalisation="per-map"`` each map is divided by its own ``max |a|`` (drawn on [-1, 1])."""
    data = gallery_data(ds, model, perturbation, example, methods, severities)
    limits = colour_limits(data["attributions"], normalisation)
    n_rows, n_columns = 1 + len(data["methods"]), len(data["severities"])
    width = data["images"].shape[2]
    figure = new_figure(1.15 * n_columns + 1.4, 1.2 * n_rows + 0.7)
    top, bottom, row_height = 0.86, 0.04, 0.82 / n_rows
    right = 0.86 if data["methods"] and normalisation == "shared" else 0.97
    names = data["class_names"]
    rows = []
    for row in range(n_rows):
        axes = figure.add_axes((0.09, top - (row + 1) * row_height + 0.01, right - 0.09, row_height - 0.02))
        axes.set_xticks([])
        axes.set_yticks([])
        for side in axes.spines.values():
            side.set_visible(False)
        rows.append(axes)
    images = data["images"]
    picture = mosaic(images, fill=255)
    rows[0].imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
                   cmap="gray" if picture.shape[-1] == 1 else None, vmin=0, vmax=255, interpolation="nearest")
    rows[0].set_ylabel("image", fontsize=8)
    for column, severity in enumerate(data["severities"]):
        title = "clean" if severity == 0 else f"severity {severity}"
        if "pred" in data:
            title += f"\n{_class(names, int(data['pred'][column]))}"
            if "confidence" in data:
                title += f" ({float(data['confidence'][column]):.2f})"
        known = "correct" in data and not np.isnan(float(data["correct"][column]))  # NaN: not computed yet
        colour = "black" if not known else ("green" if float(data["correct"][column]) == 1 else "red")
        rows[0].text(column * (width + GAP) + (width - 1) / 2, -1.0, title, ha="center", va="bottom", fontsize=7,
                     color=colour)
    mappable = None
    for row, method in enumerate(data["methods"], start=1):
        maps = data["attributions"][row - 1]
        if normalisation == "per-map":
            maps = maps / limits[row - 1, :, 1][:, None, None]
            low, high = -1.0, 1.0
        else:
            low, high = limits[row - 1, 0]
        mappable = rows[row].imshow(mosaic(maps), cmap=ATTRIBUTION_COLOUR_MAP, vmin=low, vmax=high,
                                    interpolation="nearest")
        rows[row].set_ylabel(str(method), fontsize=8)
    if mappable is not None and normalisation == "shared":
        bar_axes = figure.add_axes((0.89, bottom + 0.01, 0.025, top - row_height - bottom - 0.01))
        figure.colorbar(mappable, cax=bar_axes, label="attribution")
    truth = "" if data["label"] is None else f", true class {_class(names, data['label'])}"
    figure.suptitle(f"{model} — {perturbation} — sample {example}{truth}"
                    + (" — per-map colour scale" if normalisation == "per-map" else ""), fontsize=9, y=0.99)
    return figure


class SampleGallery(Panel):
    """Stored examples across severities with their attribution maps."""

    render_function = staticmethod(render_gallery)

    def _build_controls(self) -> list:
        import ipywidgets as widgets

        ds = self.ds
        self.model = dropdown("model", options(ds, "model"))
        self.perturbation = dropdown("perturbation", options(ds, "perturbation"))
        self.example = dropdown("sample", options(ds, "example") if "example" in ds.dims else [])
        methods = options(ds, "method") if "method" in ds.dims else []
        self.methods = widgets.SelectMultiple(description="methods", options=methods, value=tuple(methods[:4]),
                                              rows=min(4, max(1, len(methods))))
        self.normalisation = widgets.ToggleButtons(description="scale", options=list(NORMALISATIONS),
                                                   value="shared", style={"button_width": "70px"})
        return [self.model, self.perturbation, self.example, self.methods, self.normalisation]

    def state(self) -> dict[str, Any]:
        return {"model": self.model.value, "perturbation": self.perturbation.value, "example": self.example.value,
                "methods": list(self.methods.value), "normalisation": self.normalisation.value}


__all__ = ["GAP", "NORMALISATIONS", "SampleGallery", "colour_limits", "gallery_data", "mosaic", "render_gallery",
           "tile_of"]
