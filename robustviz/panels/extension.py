"""``%load_ext robustviz``: a rich HTML display for cubes and ``explore`` in the notebook namespace.

A Dataset is shown as a cube when it carries the ``robustviz_version`` attr: its dims, variables (with direction
and category), provenance (versions, device, seed, creation time, spec) and one inline-SVG sparkline per model of
accuracy against severity. Any other Dataset keeps xarray's own HTML display.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import xarray as xr

from ._base import computed

SPARKLINE_SIZE = (90, 22)
_PROVENANCE = ("robustviz_version", "torch_version", "captum_version", "device", "seed", "created",
               "schema_version")


def is_cube(obj: Any) -> bool:
    return isinstance(obj, xr.Dataset) and "robustviz_version" in obj.attrs


def sparkline_svg(values: np.ndarray, width: int = SPARKLINE_SIZE[0], height: int = SPARKLINE_SIZE[1],
                  low: float = 0.0, high: float = 1.0) -> str:
    """A tiny inline SVG polyline of ``values`` on the fixed range [low, high] (NaNs skipped)."""
    values = np.asarray(values, dtype=np.float64)
    points = []
    for index, value in enumerate(values):
        if np.isfinite(value):
            x = 2 + (width - 4) * (index / max(len(values) - 1, 1))
            y = height - 2 - (height - 4) * (np.clip(value, low, high) - low) / ((high - low) or 1.0)
            points.append(f"{x:.1f},{y:.1f}")
    return (f'<svg class="robustviz-sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><rect width="{width}" height="{height}" fill="none" '
            f'stroke="#ddd"/><polyline fill="none" stroke="#1f77b4" stroke-width="1.5" '
            f'points="{" ".join(points)}"/></svg>')


def accuracy_by_severity(ds: xr.Dataset) -> xr.DataArray | None:
    """Mean ``correct`` over perturbations and samples, dims (model, severity); None without ``correct``."""
    if "correct" not in ds.data_vars:
        return None
    mean = ds["correct"].astype(np.float64).mean([d for d in ds["correct"].dims if d not in ("model", "severity")])
    mean = mean.transpose("model", "severity")
    return mean.copy(data=computed(mean))


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th style='text-align:left;padding-right:1em'>{key}</th><td style='text-align:left'>"
                   f"{value}</td></tr>" for key, value in pairs)


def cube_html(ds: xr.Dataset) -> str:
    """The cube's HTML display (see the module docstring)."""
    escape = html.escape
    dims = ", ".join(f"<b>{escape(str(d))}</b>: {n}" for d, n in ds.sizes.items())
    variables = []
    for name, var in ds.data_vars.items():
        attrs = var.attrs
        variables.append((escape(str(name)), f"({escape(', '.join(map(str, var.dims)))}) {var.dtype} — "
                          f"{escape(str(attrs.get('long_name', '')))} "
                          f"<i>{escape(str(attrs.get('direction', '')))} {escape(str(attrs.get('category', '')))}"
                          f"</i>"))
    provenance = [(key, escape(str(ds.attrs[key]))) for key in _PROVENANCE if key in ds.attrs]
    spec = ds.attrs.get("spec")
    if spec:
        try:
            spec = json.dumps(json.loads(spec), indent=1)
        except (TypeError, ValueError):
            spec = str(spec)
        provenance.append(("spec", f"<details><summary>show</summary><pre>{escape(spec)}</pre></details>"))
    sparklines = []
    accuracy = accuracy_by_severity(ds)
    if accuracy is not None:
        severities = [int(s) for s in accuracy["severity"].values]
        for index, model in enumerate(accuracy["model"].values):
            values = accuracy.values[index]
            sparklines.append((escape(str(model)), f"{sparkline_svg(values)} "
                               f"<span style='font-size:85%'>{values[0]:.2f} → {values[-1]:.2f} "
                               f"(severity {severities[0]} → {severities[-1]})</span>"))
    parts = [f"<div class='robustviz-cube'><b>robustviz cube</b> <span style='color:#666'>"
             f"{escape(str(ds.attrs.get('title', '')))}</span><br>{dims}"]
    if sparklines:
        parts.append("<details open><summary>accuracy vs severity</summary><table>" + _rows(sparklines)
                     + "</table></details>")
    parts.append("<details><summary>variables</summary><table>" + _rows(variables) + "</table></details>")
    parts.append("<details><summary>provenance</summary><table>" + _rows(provenance) + "</table></details>")
    parts.append("<span style='font-size:85%;color:#666'>explore(ds) opens the panels</span></div>")
    return "".join(parts)


def dataset_html(ds: xr.Dataset) -> str:
    """The cube display for cubes, xarray's own HTML for every other Dataset."""
    if is_cube(ds):
        try:
            return cube_html(ds)
        except Exception as error:  # a display must never break a notebook: fall back, say why
            return ds._repr_html_() + f"<p style='color:#b00'>robustviz display failed: {html.escape(str(error))}</p>"
    return ds._repr_html_()


def load_ipython_extension(ipython: Any) -> None:
    """Register the cube HTML display for ``xarray.Dataset`` and put ``explore`` in the user namespace."""
    from . import explore

    ipython.display_formatter.formatters["text/html"].for_type(xr.Dataset, dataset_html)
    ipython.push({"explore": explore})


def unload_ipython_extension(ipython: Any) -> None:
    """Give Datasets back xarray's own display."""
    formatter = ipython.display_formatter.formatters["text/html"]
    try:
        formatter.pop(xr.Dataset)
    except KeyError:
        pass


__all__ = ["accuracy_by_severity", "cube_html", "dataset_html", "is_cube", "load_ipython_extension",
           "sparkline_svg", "unload_ipython_extension"]
