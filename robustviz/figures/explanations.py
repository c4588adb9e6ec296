"""Explanation-robustness figures from a results cube: method × perturbation heatmaps, the CAM-noise criteria,
attribution galleries, example-image grids and AggAtt grids.

Every function reads a cube (or arrays computed from one) and returns a :class:`matplotlib.figure.Figure` in the
robustviz style (:mod:`robustviz.figures.style`); nothing runs a model. Attribution maps are drawn with a diverging
colour map centred on zero (red positive, blue negative) and, by default, one symmetric colour scale shared by every
map of a figure, so that maps can be compared by eye.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .style import annotate_cells, color, figure, style

#: Default AggAtt percentile edges (Böhle, Fritz & Schiele, CVPR 2022).
AGGATT_PERCENTILES = (0, 2, 5, 50, 95, 98, 100)
MAP_CMAP = "RdBu_r"


# ------------------------------------------------------------------------------------------------ selection helpers
def _require(ds: xr.Dataset, name: str, what: str) -> xr.DataArray:
    if name not in ds.data_vars:
        raise ValueError(f"{what} needs the cube variable {name!r}; the cube has {sorted(map(str, ds.data_vars))}")
    return ds[name]


def _pick(array: xr.DataArray, dim: str, value: Any) -> tuple[xr.DataArray, str]:
    """Select ``value`` on ``dim`` (default: the first entry); return the slice and the chosen name."""
    if value is None:
        value = array[dim].values[0]
    names = [str(name) for name in np.asarray(array[dim].values)]
    if str(value) not in names:
        raise ValueError(f"{dim} {value!r} is not in the cube; choose one of {names}")
    return array.sel({dim: array[dim].values[names.index(str(value))]}), str(value)


def _corrupted_severities(ds: xr.Dataset, severities: Sequence[int] | None) -> list[int]:
    available = [int(s) for s in np.asarray(ds["severity"].values)]
    chosen = [s for s in available if s > 0] if severities is None else [int(s) for s in severities]
    missing = [s for s in chosen if s not in available]
    if missing or not chosen:
        raise ValueError(f"severities {chosen} not all in the cube (it has {available})")
    return chosen


def heatmap_data(ds: xr.Dataset, variable: str = "consistency", *, model: str | None = None,
                 severities: Sequence[int] | None = None) -> xr.DataArray:
    """Method × perturbation means of an explanation variable: NaN-aware mean over samples and the chosen
    ``severities`` (default: every severity ≥ 1), for one ``model`` (default: the mean over all models)."""
    values = _require(ds, variable, "an explanation-robustness heatmap")
    if "method" not in values.dims:
        raise ValueError(f"{variable!r} has no 'method' dim; choose an explanation variable such as 'consistency'")
    values = values.sel(severity=_corrupted_severities(ds, severities)).astype("float64")
    if model is not None:
        values, _ = _pick(values, "model", model)
    reduce = [dim for dim in values.dims if dim not in ("method", "perturbation")]
    return values.mean(reduce, skipna=True).transpose("method", "perturbation").compute()


def robustness_heatmap(ds: xr.Dataset, variable: str = "consistency", *, model: str | None = None,
                       severities: Sequence[int] | None = None, annotate: bool = True, cmap: str = "viridis",
                       width: str | float = "double") -> Figure:
    """Heatmap of an explanation variable (e.g. ``consistency``, ``cosine``): rows methods, columns perturbations,
    each cell the mean over samples and severities ≥ 1 (see :func:`heatmap_data`); values printed in the cells."""
    data = heatmap_data(ds, variable, model=model, severities=severities)
    values = np.asarray(data.values, dtype=float)
    methods = [str(name) for name in data["method"].values]
    perturbations = [str(name) for name in data["perturbation"].values]
    direction = ds[variable].attrs.get("direction", "none")
    with style():
        fig = figure(width, aspect=max(0.25, 0.08 * len(methods) + 0.2), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(values, cmap=cmap, aspect="auto", interpolation="nearest")
        ax.grid(False)
        ax.set_xticks(range(len(perturbations)), perturbations, rotation=45, ha="right")
        ax.set_yticks(range(len(methods)), methods)
        ax.set_xlabel("perturbation")
        ax.set_ylabel("method")
        bar = fig.colorbar(image, ax=ax, shrink=0.9)
        bar.set_label(variable + (f" ({direction} is better)" if direction in ("higher", "lower") else ""))
        if annotate and values.size <= 400:
            annotate_cells(ax, values, fontsize=5)
        scope = f"model {model}" if model is not None else "mean over models"
        ax.set_title(f"{variable} per method and perturbation ({scope}, severities "
                     f"{', '.join(map(str, _corrupted_severities(ds, severities)))})")
    return fig


# --------------------------------------------------------------------------------------------- CAM-noise criteria
def cam_criteria_data(ds: xr.Dataset, *, similarity: str = "cosine", model: str | None = None,
                      perturbations: Sequence[str] | None = None,
                      severities: Sequence[int] | None = None) -> xr.Dataset:
    """The CAM-noise criteria per method, pooled over the chosen models, perturbations, severities ≥ 1 and samples:
    consistency = mean similarity where the prediction is unchanged from the clean image, responsiveness =
    mean (1 − similarity) where it changed, combined = consistency × responsiveness."""
    score = _require(ds, similarity, "the CAM-noise criteria").astype("float64")
    pred = _require(ds, "pred", "the CAM-noise criteria")
    changed = pred != pred.sel(severity=0)
    chosen = {"severity": _corrupted_severities(ds, severities)}
    if perturbations is not None:
        chosen["perturbation"] = list(perturbations)
    score, changed = score.sel(chosen), changed.sel(chosen)
    if model is not None:
        score, _ = _pick(score, "model", model)
        changed, _ = _pick(changed, "model", model)
    valid = score.notnull()
    pooled = [dim for dim in score.dims if dim != "method"]
    unchanged, changed = (~changed) & valid, changed & valid
    consistency = score.where(unchanged).sum(pooled) / unchanged.sum(pooled).where(unchanged.sum(pooled) > 0)
    responsiveness = (1 - score).where(changed).sum(pooled) / changed.sum(pooled).where(changed.sum(pooled) > 0)
    return xr.Dataset({"consistency": consistency, "responsiveness": responsiveness,
                       "combined": consistency * responsiveness,
                       "n_unchanged": unchanged.sum(pooled), "n_changed": changed.sum(pooled)}).compute()


def cam_criteria_bars(ds: xr.Dataset, *, similarity: str = "cosine", model: str | None = None,
                      perturbations: Sequence[str] | None = None, severities: Sequence[int] | None = None,
                      width: str | float = "single") -> Figure:
    """Grouped bars per method of consistency, responsiveness and combined (see :func:`cam_criteria_data`)."""
    data = cam_criteria_data(ds, similarity=similarity, model=model, perturbations=perturbations,
                             severities=severities)
    methods = [str(name) for name in data["method"].values]
    criteria = ("consistency", "responsiveness", "combined")
    positions = np.arange(len(methods))
    bar_width = 0.8 / len(criteria)
    with style():
        fig = figure(width, aspect=0.7, layout="constrained")
        ax = fig.add_subplot()
        for index, name in enumerate(criteria):
            ax.bar(positions + (index - 1) * bar_width, np.asarray(data[name].values, float), bar_width,
                   label=name, color=color(index))
        ax.set_xticks(positions, methods, rotation=30, ha="right")
        ax.set_ylabel(f"score (from {similarity})")
        ax.set_ylim(0, 1.05)
        ax.legend(frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, 1.0))
        ax.set_title("CAM-noise criteria per method" + (f" ({model})" if model else ""))
    return fig


# --------------------------------------------------------------------------------------------- galleries and grids
def _to_rgb(image: np.ndarray) -> np.ndarray:
    """``C×H×W`` uint8 (or float in [0, 1]) → ``H×W×3`` floats in [0, 1]."""
    image = np.asarray(image)
    image = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    image = np.moveaxis(image, 0, -1)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def _prediction_label(ds: xr.Dataset, model: str, perturbation: str, severity: int, sample: Any) -> str:
    if "pred" not in ds.data_vars or sample not in set(np.asarray(ds["sample"].values).tolist()):
        return ""
    cell = dict(model=model, perturbation=perturbation, severity=severity, sample=sample)
    pred = int(ds["pred"].sel(cell).values)
    names = json.loads(ds.attrs.get("class_names", "[]"))
    label = names[pred] if 0 <= pred < len(names) else str(pred)
    if "confidence" in ds.data_vars:
        label += f" {float(ds['confidence'].sel(cell).values):.2f}"
    return label


def attribution_gallery(ds: xr.Dataset, *, model: str | None = None, perturbation: str | None = None,
                        example: Any = None, methods: Sequence[str] | None = None,
                        severities: Sequence[int] | None = None, shared_scale: bool = True,
                        width: str | float = "double") -> Figure:
    """One stored example under increasing severity: the first row shows the image (with the predicted class and
    its confidence), each further row one method's attribution map. ``shared_scale`` uses one symmetric colour
    scale for every map (the default, so maps compare by eye); otherwise each map is scaled to its own maximum."""
    images = _require(ds, "example_image", "an attribution gallery")
    maps = _require(ds, "example_attribution", "an attribution gallery")
    images, model = _pick(images, "model", model)
    maps = maps.sel(model=images["model"].values) if "model" in maps.dims else maps
    images, perturbation = _pick(images, "perturbation", perturbation)
    maps = maps.sel(perturbation=images["perturbation"].values)
    images, _ = _pick(images, "example", example)
    maps = maps.sel(example=images["example"].values)
    sample = images["example"].values.item()
    chosen = [int(s) for s in np.asarray(ds["severity"].values)] if severities is None else list(severities)
    method_names = [str(m) for m in maps["method"].values] if methods is None else list(methods)
    grids = np.stack([np.asarray(_pick(maps, "method", name)[0].sel(severity=chosen).values, dtype=np.float64)
                      for name in method_names]) if method_names else np.zeros((0, len(chosen), 1, 1))
    limit = float(np.nanmax(np.abs(grids))) if grids.size else 1.0
    rows, columns = 1 + len(method_names), len(chosen)
    with style():
        inches = 6.9 if width == "double" else (3.3 if width == "single" else float(width))
        fig = Figure(figsize=(inches, inches * rows / max(columns, 1) * 1.05), layout="constrained")
        axes = np.asarray(fig.subplots(rows, columns, squeeze=False))
        for column, severity in enumerate(chosen):
            top = axes[0, column]
            top.imshow(_to_rgb(images.sel(severity=severity).values))
            label = _prediction_label(ds, model, perturbation, severity, sample)
            top.set_title(f"severity {severity}" + (f"\n{label}" if label else ""), fontsize=6)
            for row in range(len(method_names)):
                values = grids[row, column]
                scale = limit if shared_scale else float(np.nanmax(np.abs(values))) or 1.0
                axes[row + 1, column].imshow(values, cmap=MAP_CMAP, vmin=-(scale or 1.0), vmax=scale or 1.0)
        for row, name in enumerate(["image", *method_names]):
            axes[row, 0].set_ylabel(name, fontsize=6)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        fig.suptitle(f"{model} · {perturbation} · sample {sample}", fontsize=8)
    return fig


def example_grid(ds: xr.Dataset, *, model: str | None = None, example: Any = None,
                 perturbations: Sequence[str] | None = None, severities: Sequence[int] | None = None,
                 width: str | float = "double") -> Figure:
    """The stored example image under every perturbation (rows) and severity (columns)."""
    images = _require(ds, "example_image", "an example grid")
    images, model = _pick(images, "model", model)
    images, _ = _pick(images, "example", example)
    names = [str(p) for p in images["perturbation"].values] if perturbations is None else list(perturbations)
    chosen = [int(s) for s in np.asarray(ds["severity"].values)] if severities is None else list(severities)
    with style():
        inches = 6.9 if width == "double" else (3.3 if width == "single" else float(width))
        fig = Figure(figsize=(inches, inches * len(names) / len(chosen) * 0.95), layout="constrained")
        axes = np.asarray(fig.subplots(len(names), len(chosen), squeeze=False))
        for row, name in enumerate(names):
            cells = _pick(images, "perturbation", name)[0]
            for column, severity in enumerate(chosen):
                ax = axes[row, column]
                ax.imshow(_to_rgb(cells.sel(severity=severity).values))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if row == 0:
                    ax.set_title(f"severity {severity}", fontsize=6)
            axes[row, 0].set_ylabel(name, fontsize=5, rotation=0, ha="right", va="center")
        fig.suptitle(f"{model} · sample {images['example'].values.item()}", fontsize=8)
    return fig


# -------------------------------------------------------------------------------------------------------- AggAtt
def aggatt_maps(scores: np.ndarray, maps: np.ndarray,
                percentiles: Sequence[float] = AGGATT_PERCENTILES) -> tuple[np.ndarray, np.ndarray]:
    """AggAtt binning in numpy: sort samples by ascending score (NaN scores dropped), bin ``b`` holds the sorted
    positions ``[⌊P_b·N/100⌋, ⌊P_{b+1}·N/100⌋)``; returns the mean map per bin ``B×H×W`` (NaN for an empty bin)
    and the sample count per bin."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    maps = np.asarray(maps, dtype=np.float64)
    maps = maps[:, 0] if maps.ndim == 4 else maps
    if maps.shape[0] != scores.size:
        raise ValueError(f"got {scores.size} scores for {maps.shape[0]} maps")
    keep = ~np.isnan(scores)
    order = np.argsort(scores[keep], kind="stable")
    ordered = maps[keep][order]
    edges = np.array([int(p * order.size // 100) for p in percentiles])
    counts = np.maximum(edges[1:] - edges[:-1], 0)
    binned = np.full((len(percentiles) - 1, *maps.shape[1:]), np.nan)
    for index, count in enumerate(counts):
        if count:
            binned[index] = ordered[edges[index]:edges[index + 1]].mean(axis=0)
    return binned, counts


def aggatt_grid(maps: np.ndarray, row_labels: Sequence[str], *, counts: np.ndarray | None = None,
                percentiles: Sequence[float] = AGGATT_PERCENTILES, title: str = "AggAtt",
                width: str | float = "double") -> Figure:
    """AggAtt grid: rows (e.g. methods) × percentile bins of mean attribution maps (``rows × bins × H × W``, as
    :func:`aggatt_maps` gives per row), each row on its own symmetric colour scale; empty bins are left blank."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[0] != len(row_labels) or maps.shape[1] != len(percentiles) - 1:
        raise ValueError(f"maps must be rows × {len(percentiles) - 1} bins × H × W for {len(row_labels)} rows, "
                         f"got shape {maps.shape}")
    rows, bins = maps.shape[:2]
    with style():
        inches = 6.9 if width == "double" else (3.3 if width == "single" else float(width))
        fig = Figure(figsize=(inches, inches * rows / bins * 1.1), layout="constrained")
        axes = np.asarray(fig.subplots(rows, bins, squeeze=False))
        for row in range(rows):
            finite = maps[row][np.isfinite(maps[row])]
            limit = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
            for column in range(bins):
                ax = axes[row, column]
                if np.isfinite(maps[row, column]).any():
                    ax.imshow(maps[row, column], cmap=MAP_CMAP, vmin=-limit, vmax=limit)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if row == 0:
                    header = f"{percentiles[column]:g}–{percentiles[column + 1]:g} %"
                    if counts is not None:
                        header += f"\nn={int(np.asarray(counts)[column])}"
                    ax.set_title(header, fontsize=6)
            axes[row, 0].set_ylabel(str(row_labels[row]), fontsize=6)
        fig.suptitle(title, fontsize=8)
    return fig


def aggatt_from_cube(ds: xr.Dataset, variable: str, *, model: str | None = None, perturbation: str | None = None,
                     severity: int = 0, percentiles: Sequence[float] = AGGATT_PERCENTILES, source: str = "auto"
                     ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """AggAtt bins sorted by a per-sample explanation score (e.g. ``energy_in_mask``): returns (maps methods ×
    bins × H × W, counts, method names).

    ``source="pooled"`` bins **every** sample's ``attribution_pooled`` map (spec metric ``attribution_pooled``;
    maps at its grid resolution); ``"examples"`` bins only the stored example maps (full resolution, but few
    samples, so most bins are empty); ``"auto"`` takes the pooled maps when the cube has them."""
    if source not in ("auto", "pooled", "examples"):
        raise ValueError(f"source must be 'auto', 'pooled' or 'examples', got {source!r}")
    if source == "auto":
        source = "pooled" if "attribution_pooled" in ds.data_vars else "examples"
    name = "attribution_pooled" if source == "pooled" else "example_attribution"
    maps = _require(ds, name, "AggAtt from a cube")
    scores = _require(ds, variable, "AggAtt from a cube")
    maps, model = _pick(maps, "model", model)
    maps, perturbation = _pick(maps, "perturbation", perturbation)
    maps = maps.sel(severity=severity)
    samples = maps["sample" if source == "pooled" else "example"].values
    scores = scores.sel(model=model, perturbation=perturbation, severity=severity, sample=samples)
    names = [str(m) for m in maps["method"].values]
    binned, counts = [], None
    for name in names:
        method_scores = _pick(scores, "method", name)[0] if "method" in scores.dims else scores
        result, counts = aggatt_maps(method_scores.values, _pick(maps, "method", name)[0].values, percentiles)
        binned.append(result)
    return np.stack(binned), np.asarray(counts), names


__all__ = ["AGGATT_PERCENTILES", "aggatt_from_cube", "aggatt_grid", "aggatt_maps", "attribution_gallery",
           "cam_criteria_bars", "cam_criteria_data", "example_grid", "heatmap_data", "robustness_heatmap"]
