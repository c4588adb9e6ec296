"""``ds.rv``: the robustviz accessor on results cubes (composition, no subclassing).

Summaries are computed here from the per-sample variables rather than stored, so a cube never holds the same
number twice. Functions that need more than xarray (statistics, CE/mCE, panels) are imported lazily.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from . import schema

#: Variables that are not per-sample scores to summarise.
_NOT_SCORES = ("pred", "done", "model_done", "example_image", "example_attribution")


@xr.register_dataarray_accessor("rv")
class RobustvizArrayAccessor:
    """``da.rv.sel(method=...)``: selection by dim names on one variable of a cube."""

    def __init__(self, da: xr.DataArray):
        self._da = da

    def sel(self, **indexers: Any) -> xr.DataArray:
        return self._da.sel(indexers)


@xr.register_dataset_accessor("rv")
class RobustvizAccessor:
    """Cube-level views and summaries: ``ds.rv.accuracy()``, ``ds.rv.summary()``, ``ds.rv.mce()``, …"""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # -- schema and provenance -----------------------------------------------------------------------------------
    def validate(self) -> xr.Dataset:
        """Check the cube schema; raises ``CubeError`` listing every problem."""
        return schema.validate(self._ds)

    @property
    def spec(self) -> dict[str, Any]:
        """The evaluation spec the cube was made from, as a dict."""
        return json.loads(self._ds.attrs.get("spec", "{}"))

    @property
    def class_names(self) -> list[str]:
        return json.loads(self._ds.attrs.get("class_names", "[]"))

    @property
    def scores(self) -> list[str]:
        """Per-sample score variables (a ``sample`` dim and only cube dims — not per-sample arrays such as
        ``attribution_pooled``), e.g. ``correct``, ``cosine``."""
        return [name for name, var in self._ds.data_vars.items()
                if "sample" in var.dims and name not in _NOT_SCORES and set(var.dims) <= set(schema.CORE_DIMS)]

    def is_complete(self) -> bool:
        """True when every region (and every model-level analysis) has been written."""
        done = self._ds["done"].values.all() if "done" in self._ds else True
        model_done = True
        if "model_done" in self._ds and any("band" in v.dims for v in self._ds.data_vars.values()):
            model_done = bool(self._ds["model_done"].values.all())
        return bool(done and model_done)

    # -- summaries ------------------------------------------------------------------------------------------------
    def accuracy(self, dim: str | Iterable[str] = "sample") -> xr.DataArray:
        """Top-1 accuracy, averaged over ``dim`` (default: samples → model × perturbation × severity).

        NaN where any averaged cell is missing (a region not written yet): a partial mean would not be the accuracy
        of the cell, and 0 would be a wrong one."""
        return self._ds["correct"].astype("float64").mean(dim=dim, skipna=False).rename("accuracy")

    def error(self, dim: str | Iterable[str] = "sample") -> xr.DataArray:
        """Top-1 error (1 − accuracy)."""
        return (1.0 - self.accuracy(dim)).rename("error")

    def mean(self, variable: str, dim: str | Iterable[str] = "sample") -> xr.DataArray:
        """NaN-aware mean of a per-sample variable over ``dim``."""
        return self._ds[variable].astype("float64").mean(dim=dim, skipna=True)

    def sel(self, **indexers: Any) -> xr.Dataset:
        """``ds.sel`` by dim names — including ``method``, which ``ds.sel(method=...)`` would take for xarray's
        inexact-match option rather than the ``method`` dim."""
        return self._ds.sel(indexers)

    def clean(self) -> xr.Dataset:
        """The severity-0 (clean) slice, identical for every perturbation, taken from the first one."""
        return self._ds.sel(severity=0).isel(perturbation=0, drop=True)

    def summary(self, variables: Iterable[str] | None = None,
                by: Iterable[str] = ("model", "perturbation", "severity")) -> pd.DataFrame:
        """A tidy table: one row per group in ``by`` (plus ``method`` for explanation scores), the mean of each
        per-sample variable (``correct`` is reported as ``accuracy``)."""
        by = list(by)
        names = list(variables) if variables is not None else self.scores
        frames = []
        for name in names:
            var = self._ds[name].astype("float64")
            keep = [d for d in by + ["method"] if d in var.dims]
            reduce = [d for d in var.dims if d not in keep]
            mean = var.mean(dim=reduce, skipna=True).compute()
            column = "accuracy" if name == "correct" else name
            frames.append(mean.to_dataframe(name=column)[[column]])
        if not frames:
            return pd.DataFrame()
        table = frames[0]
        for frame in frames[1:]:
            table = table.join(frame, how="outer")
        return table.reset_index()

    def accuracy_table(self) -> pd.DataFrame:
        """Model × perturbation accuracy averaged over severities ≥ 1, with a ``clean`` column first."""
        accuracy = self.accuracy().compute()
        table = accuracy.sel(severity=accuracy.severity > 0).mean("severity").to_pandas()
        table.insert(0, "clean", accuracy.sel(severity=0).isel(perturbation=0).to_pandas())
        return table

    # -- robustness (CE/mCE, flips) -------------------------------------------------------------------------------
    def corruption_error(self, baseline: str = "alexnet", **kwargs: Any) -> xr.DataArray:
        """CE per model and corruption (ImageNet-C), relative to the AlexNet table or a model in the cube."""
        from .robustness import corruption_error

        return corruption_error(self._ds, baseline=baseline, **kwargs)

    def mce(self, baseline: str = "alexnet", **kwargs: Any) -> xr.DataArray:
        """Mean corruption error per model over the 15 ImageNet-C benchmark corruptions."""
        from .robustness import mce

        return mce(self._ds, baseline=baseline, **kwargs)

    def relative_mce(self, baseline: str = "alexnet", **kwargs: Any) -> xr.DataArray:
        """Relative mCE (degradation from clean) per model."""
        from .robustness import relative_mce

        return relative_mce(self._ds, baseline=baseline, **kwargs)

    def error_table(self, **kwargs: Any) -> xr.DataArray:
        """Top-1 error per model × perturbation × severity."""
        from .robustness import error_table

        return error_table(self._ds, **kwargs)

    def flip_probability(self, **kwargs: Any) -> xr.DataArray:
        """Probability that the prediction changes between successive severities."""
        from .robustness import flip_probability

        return flip_probability(self._ds, **kwargs)

    # -- explanations ---------------------------------------------------------------------------------------------
    def compare_methods(self, variable: str, **kwargs: Any) -> Any:
        """Friedman test across methods, Wilcoxon pairs with Holm correction and bootstrap CIs."""
        from .stats import compare_methods

        return compare_methods(self._ds, variable, **kwargs)

    def cam_robustness(self, **kwargs: Any) -> xr.Dataset:
        """Consistency, responsiveness and their product per model × perturbation × severity × method."""
        from .stats import cam_robustness

        return cam_robustness(self._ds, **kwargs)

    def critical_difference(self, variable: str, **kwargs: Any) -> Any:
        """Average ranks of the methods and Nemenyi's critical difference (every other dim forms the blocks)."""
        from .stats import critical_difference

        return critical_difference(self._ds, variable, **kwargs)

    def effect_sizes(self, variable: str, **kwargs: Any) -> pd.DataFrame:
        """Paired effect sizes (Cohen's d_z, rank-biserial, Cliff's δ) of every pair of methods."""
        from .stats import effect_sizes

        return effect_sizes(self._ds, variable, **kwargs)

    # -- calibration ----------------------------------------------------------------------------------------------
    def calibration(self, n_bins: int = 15) -> xr.Dataset:
        """ECE (``n_bins`` equal-width bins), mean NLL and mean Brier (when evaluated) per cell."""
        from .calibration import calibration

        return calibration(self._ds, n_bins=n_bins)

    def nll(self) -> xr.DataArray:
        """Per-sample negative log-likelihood of the label, ``−log prob_true``."""
        from .calibration import nll

        return nll(self._ds)

    # -- merging ----------------------------------------------------------------------------------------------------
    def merge(self, other: xr.Dataset) -> xr.Dataset:
        """The union of this cube and ``other`` (same samples); conflicting shared cells raise an error."""
        from .merge import merge_cubes

        return merge_cubes(self._ds, other)

    def diff(self, other: xr.Dataset, variables: Iterable[str] | None = None) -> xr.Dataset:
        """``other − self`` per shared per-sample variable on the cells both cubes have."""
        from .merge import diff_cubes

        return diff_cubes(self._ds, other, variables)

    # -- views ----------------------------------------------------------------------------------------------------
    def explore(self, **kwargs: Any) -> Any:
        """Open the interactive cube explorer (needs a notebook front end)."""
        from ..panels import explore

        return explore(self._ds, **kwargs)

    def report(self, path: Any, **kwargs: Any) -> Any:
        """Write a self-contained static HTML report (linked views, tables, provenance, figures) to ``path`` (an
        ``.html`` file or a directory); opens from disk with no kernel and no network. Returns the file's path."""
        from ..panels.report import write_report

        return write_report(self._ds, path, **kwargs)

    def to_netcdf(self, path: Any) -> Any:
        from .io import to_netcdf

        return to_netcdf(self._ds, path)

    def region_mask(self) -> np.ndarray:
        """Which (model, perturbation, chunk) regions are written."""
        return self._ds["done"].values.astype(bool)


__all__ = ["RobustvizAccessor"]
