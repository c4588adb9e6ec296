"""Write every figure and LaTeX table a cube supports: ``robustviz figures CUBE --out DIR`` calls :func:`write_all`.

Figures whose variables the cube lacks are skipped, with the reason, in ``DIR/index.md`` (which also lists what was
written), so a cube from a narrow spec still gives every figure it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from . import explanations, robustness, tables
from .curves import severity_curves

#: Vector and raster formats matplotlib writes; PDF/SVG are the paper formats.
SUPPORTED_FORMATS = ("pdf", "svg", "png", "eps", "ps", "pgf")
LOCALISATION_VARIABLES = ("energy_in_mask", "pointing_game")  # grid_pg AggAtt needs maps aligned to the cell


@dataclass(frozen=True)
class Item:
    """One figure or table: its file stem, what it shows, the cube variables it needs, and how to build it."""

    stem: str
    title: str
    needs: tuple[str, ...]
    build: Callable[[xr.Dataset], Figure | str]


def _explanation_variables(ds: xr.Dataset) -> list[str]:
    return [str(name) for name, var in ds.data_vars.items()
            if "method" in var.dims and "sample" in var.dims and name != "example_attribution"]


def _first_per_family(ds: xr.Dataset) -> list[str]:
    names = [str(name) for name in ds["perturbation"].values]
    if "family" not in ds.coords:
        return names[:1]
    seen: dict[str, str] = {}
    for name, family in zip(names, np.asarray(ds["family"].values)):
        seen.setdefault(str(family), name)
    return list(seen.values())


def _caption(ds: xr.Dataset, what: str) -> str:
    return f"{what} ({ds.attrs.get('title') or ds.rv.spec.get('name', 'robustviz cube')})"


def plan(ds: xr.Dataset) -> list[Item]:
    """Every figure and table robustviz knows how to make from a cube, in the order they are written."""
    items = [Item("accuracy_severity_curves", "accuracy vs severity per model", ("correct",),
                  lambda d: severity_curves(d, "correct"))]
    for name in _explanation_variables(ds):
        items.append(Item(f"{name}_severity_curves", f"{name} vs severity per method", (name,),
                          lambda d, name=name: severity_curves(d, name, by="method")))
    if "fisher_lmax" in ds.data_vars:
        items.append(Item("fisher_lmax_severity_curves", "Fisher λmax vs severity per model", ("fisher_lmax",),
                          lambda d: severity_curves(d, "fisher_lmax")))
    items += [
        Item("mce_bars", "mCE and relative mCE vs AlexNet", ("correct",), lambda d: robustness.mce_bars(d)),
        Item("sid_spectra", "I-ASIDE spectral importance per model", ("sid",), lambda d: robustness.sid_spectra(d)),
        Item("srs_vs_accuracy", "SRS against accuracy", ("srs", "correct"),
             lambda d: robustness.srs_vs_accuracy(d)),
    ]
    for name in _explanation_variables(ds):
        items.append(Item(f"{name}_heatmap", f"{name} per method × perturbation", (name,),
                          lambda d, name=name: explanations.robustness_heatmap(d, name)))
    items.append(Item("cam_criteria", "CAM-noise criteria per method", ("cosine", "pred"),
                      lambda d: explanations.cam_criteria_bars(d)))
    for perturbation in _first_per_family(ds):
        items.append(Item(f"gallery_{perturbation}", f"attribution gallery under {perturbation}",
                          ("example_image", "example_attribution"),
                          lambda d, p=perturbation: explanations.attribution_gallery(d, perturbation=p)))
    items.append(Item("example_grid", "an example under every perturbation and severity", ("example_image",),
                      lambda d: explanations.example_grid(d)))
    localisation = [name for name in LOCALISATION_VARIABLES if name in ds.data_vars]
    items.append(Item("aggatt", "AggAtt of the stored examples by localisation score",
                      ("example_attribution", localisation[0] if localisation else LOCALISATION_VARIABLES[0]),
                      lambda d: _aggatt(d, localisation[0])))
    items += [
        Item("table_accuracy", "top-1 accuracy (%) per perturbation and model", ("correct",),
             lambda d: tables.to_latex(tables.accuracy_table(d), caption=_caption(d, "Top-1 accuracy (%)"),
                                       label="tab:accuracy", digits=1, highlight="max")),
        Item("table_mce", "clean error, mCE and relative mCE (%)", ("correct",),
             lambda d: tables.to_latex(tables.mce_table(d), caption=_caption(d, "Corruption errors (%, AlexNet = 100)"),
                                       label="tab:mce", digits=1)),
        Item("table_methods", "explanation scores per method", tuple(_explanation_variables(ds)[:1]) or ("cosine",),
             lambda d: tables.to_latex(tables.method_table(d), caption=_caption(d, "Explanation scores per method"),
                                       label="tab:methods")),
        Item("table_cam_criteria", "CAM-noise criteria per method", ("cosine", "pred"),
             lambda d: tables.to_latex(tables.cam_criteria_table(d), label="tab:cam-criteria", highlight="max",
                                       highlight_axis="columns", caption=_caption(d, "CAM-noise criteria"))),
        Item("table_spectral", "I-ASIDE SRS and accuracy per model", ("srs",),
             lambda d: tables.to_latex(tables.spectral_table(d), caption=_caption(d, "Spectral robustness"),
                                       label="tab:spectral")),
    ]
    return items


def _aggatt(ds: xr.Dataset, variable: str) -> Figure:
    maps, counts, methods = explanations.aggatt_from_cube(ds, variable)
    return explanations.aggatt_grid(maps, methods, counts=counts, title=f"AggAtt by {variable} (stored examples)")


def _missing(ds: xr.Dataset, needs: Iterable[str]) -> list[str]:
    return [name for name in needs if name not in ds.data_vars and name not in ds.dims]


def _unsupported(ds: xr.Dataset, item: Item) -> str | None:
    """Why the cube cannot give ``item`` (None when it can)."""
    missing = _missing(ds, item.needs)
    if missing:
        return f"the cube has no {', '.join(repr(name) for name in missing)}"
    if item.stem in ("mce_bars", "table_mce"):
        from ..cube.robustness import RobustnessError, mce

        try:
            mce(ds, allow_partial=True)
        except RobustnessError as error:
            return str(error)
    return None


def write_all(ds: xr.Dataset, out_dir: str | Path, formats: Sequence[str] = ("pdf", "svg")) -> list[Path]:
    """Write every figure (in each of ``formats``) and LaTeX table (``.tex``) that ``ds`` supports into ``out_dir``,
    plus ``index.md`` listing what was written and what was skipped and why. Returns the written paths."""
    formats = tuple(str(fmt).lower().lstrip(".") for fmt in formats)
    unknown = [fmt for fmt in formats if fmt not in SUPPORTED_FORMATS]
    if unknown or not formats:
        raise ValueError(f"unsupported figure format(s) {unknown or formats}; choose from {SUPPORTED_FORMATS}")
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"write_all needs a robustviz cube (xarray.Dataset), got {type(ds).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lines = ["# Figures and tables", "", f"Cube: {ds.attrs.get('title') or ds.rv.spec.get('name', '')}", ""]
    skipped = []
    for item in plan(ds):
        reason = _unsupported(ds, item)
        if reason is not None:
            skipped.append(f"- `{item.stem}` ({item.title}): skipped — {reason}")
            continue
        result = item.build(ds)
        if isinstance(result, str):
            path = out / f"{item.stem}.tex"
            path.write_text(result)
            paths = [path]
        else:
            paths = [out / f"{item.stem}.{fmt}" for fmt in formats]
            for path in paths:
                result.savefig(path)
        written += paths
        lines.append(f"- `{item.stem}`: {item.title} — " + ", ".join(path.name for path in paths))
    if skipped:
        lines += ["", "## Skipped", "", *skipped]
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return [*written, index]


__all__ = ["Item", "SUPPORTED_FORMATS", "plan", "write_all"]
