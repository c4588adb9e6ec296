"""LaTeX tables from a results cube (booktabs: ``\\toprule``, ``\\midrule``, ``\\bottomrule``).

Each ``*_table(ds)`` function returns a :class:`pandas.DataFrame` (so a notebook can show it), and
:func:`to_latex` turns any DataFrame into a ``table`` environment ready for ``\\input{}`` in a paper (needs
``\\usepackage{booktabs}``). The best value of each row or column can be set in bold. Text is escaped for LaTeX
(``gaussian_noise`` → ``gaussian\\_noise``); missing values print as ``--``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIALS.get(character, character) for character in str(text))


def _format(value: Any, digits: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "--" if math.isnan(value) else f"{value:.{digits}f}"
    return escape(value)


def _best_positions(table: pd.DataFrame, highlight: str | None, axis: str,
                    columns: Sequence[str] | None) -> set[tuple[int, int]]:
    if highlight is None:
        return set()
    if highlight not in ("max", "min"):
        raise ValueError(f"highlight must be 'max', 'min' or None, got {highlight!r}")
    if columns is None:  # default: the float columns (counts and labels are not scores)
        columns = [name for name, dtype in table.dtypes.items() if pd.api.types.is_float_dtype(dtype)]
    unknown = [name for name in columns if name not in table.columns]
    if unknown:
        raise ValueError(f"highlight_columns {unknown} are not columns of the table ({list(table.columns)})")
    numeric = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
    numeric[:, [index for index, name in enumerate(table.columns) if name not in columns]] = np.nan
    best: set[tuple[int, int]] = set()
    lines = numeric if axis == "rows" else numeric.T
    for line_index, line in enumerate(lines):
        if np.isfinite(line).any():
            target = np.nanmax(line) if highlight == "max" else np.nanmin(line)
            for position in np.flatnonzero(line == target):
                best.add((line_index, int(position)) if axis == "rows" else (int(position), line_index))
    return best


def to_latex(table: pd.DataFrame, *, caption: str | None = None, label: str | None = None, digits: int = 3,
             highlight: str | None = None, highlight_axis: str = "rows",
             highlight_columns: Sequence[str] | None = None, index: bool = True,
             float_environment: bool = True) -> str:
    """A booktabs LaTeX table of ``table``: one header row (the index name, then the columns), ``\\midrule``, one
    line per row, ``\\bottomrule``. ``highlight="max"|"min"`` sets the best value of each row (``highlight_axis=
    "rows"``) or column (``"columns"``) in bold, among ``highlight_columns`` (default: the float columns).
    ``float_environment=False`` gives the bare ``tabular``."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"to_latex needs a pandas DataFrame, got {type(table).__name__}")
    if highlight_axis not in ("rows", "columns"):
        raise ValueError(f"highlight_axis must be 'rows' or 'columns', got {highlight_axis!r}")
    best = _best_positions(table, highlight, highlight_axis, highlight_columns)
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes]
    spec = ("l" if index else "") + "".join("r" if is_number else "l" for is_number in numeric)
    header = ([escape(table.index.name or "")] if index else []) + [escape(column) for column in table.columns]
    lines = []
    for row_index, name in enumerate(table.index):
        cells = [escape(name)] if index else []
        for column_index in range(table.shape[1]):
            text = _format(table.iat[row_index, column_index], digits)  # per cell: keeps each column's dtype
            cells.append(rf"\textbf{{{text}}}" if (row_index, column_index) in best else text)
        lines.append(" & ".join(cells) + r" \\")
    tabular = "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule",
                         *lines, r"\bottomrule", r"\end{tabular}"])
    if not float_environment:
        return tabular + "\n"
    parts = [r"\begin{table}[t]", r"\centering"]
    if caption:
        parts.append(rf"\caption{{{escape(caption)}}}")
    if label:
        parts.append(rf"\label{{{label}}}")
    return "\n".join([*parts, tabular, r"\end{table}"]) + "\n"


# --------------------------------------------------------------------------------------------------- cube tables
def _corrupted(array: xr.DataArray) -> xr.DataArray:
    severities = array["severity"]
    return array.sel(severity=severities[severities > 0])


def accuracy_table(ds: xr.Dataset, *, percent: bool = True) -> pd.DataFrame:
    """Top-1 accuracy: one row per perturbation (mean over severities ≥ 1 and samples), a first row ``clean``
    (severity 0) and a last row ``mean`` (over the perturbation rows); one column per model."""
    if "correct" not in ds.data_vars:
        raise ValueError("an accuracy table needs the cube variable 'correct'")
    accuracy = ds["correct"].astype("float64").mean("sample").compute()
    scale = 100.0 if percent else 1.0
    per_perturbation = _corrupted(accuracy).mean("severity").transpose("perturbation", "model").to_pandas() * scale
    clean = accuracy.sel(severity=0).isel(perturbation=0).to_pandas() * scale
    table = pd.concat([clean.to_frame("clean").T, per_perturbation,
                       per_perturbation.mean(axis=0).to_frame("mean").T])
    table.index.name = "perturbation"
    table.columns = [str(column) for column in table.columns]
    return table


def mce_table(ds: xr.Dataset, baseline: str = "alexnet", *, percent: bool = True) -> pd.DataFrame:
    """Per model: clean error, mCE and relative mCE against ``baseline`` (the published AlexNet ImageNet-C errors
    or a model in the cube), over the ImageNet-C benchmark corruptions the cube holds (column ``corruptions``)."""
    from ..cube.robustness import error_table, mce

    scale = 100.0 if percent else 1.0
    values = mce(ds, baseline, allow_partial=True)
    relative = mce(ds, baseline, allow_partial=True, relative=True)
    clean_error = error_table(ds).sel(severity=0).isel(perturbation=0)
    models = [str(model) for model in values["model"].values]
    table = pd.DataFrame({
        "clean error": np.asarray(clean_error.values, float) * scale,
        "mCE": np.asarray(values.values, float) * scale,
        "relative mCE": np.asarray(relative.values, float) * scale,
        "corruptions": len(values.attrs["corruptions"].split(", ")),
    }, index=pd.Index(models, name="model"))
    return table


def method_table(ds: xr.Dataset, variables: Iterable[str] | None = None, *, model: str | None = None) -> pd.DataFrame:
    """Per explanation method, the mean of each explanation variable (default: every variable with a ``method``
    dim) over models (or one ``model``), perturbations, severities ≥ 1 and samples (NaN-aware)."""
    names = list(variables) if variables is not None else [
        str(name) for name, var in ds.data_vars.items()
        if "method" in var.dims and "sample" in var.dims and name != "example_attribution"]
    if not names:
        raise ValueError("the cube has no explanation variables (variables with a 'method' dim)")
    columns = {}
    for name in names:
        values = _corrupted(ds[name]).astype("float64")
        if model is not None:
            values = values.sel(model=model)
        columns[name] = values.mean([d for d in values.dims if d != "method"], skipna=True).compute().to_pandas()
    table = pd.DataFrame(columns)
    table.index = [str(name) for name in table.index]
    table.index.name = "method"
    return table


def cam_criteria_table(ds: xr.Dataset, *, similarity: str = "cosine", model: str | None = None,
                       perturbations: Sequence[str] | None = None) -> pd.DataFrame:
    """Per method: the CAM-noise criteria (consistency, responsiveness, combined) pooled over the chosen cells,
    and how many (changed / unchanged) samples they rest on."""
    from .explanations import cam_criteria_data

    data = cam_criteria_data(ds, similarity=similarity, model=model, perturbations=perturbations)
    table = data.to_dataframe()[["consistency", "responsiveness", "combined", "n_unchanged", "n_changed"]]
    table.index = [str(name) for name in table.index]
    table.index.name = "method"
    return table


def spectral_table(ds: xr.Dataset) -> pd.DataFrame:
    """Per model: I-ASIDE's spectral robustness score (SRS), clean accuracy and the mean accuracy under the
    perturbations (severities ≥ 1)."""
    if "srs" not in ds.data_vars:
        raise ValueError("a spectral table needs the cube variable 'srs' (evaluate with the 'iaside' metric)")
    srs = ds["srs"].compute().to_pandas()
    table = pd.DataFrame({"SRS": srs.astype(float)})
    if "correct" in ds.data_vars:
        correct = ds["correct"].astype("float64")
        table["clean accuracy"] = correct.sel(severity=0).mean(("perturbation", "sample")).to_pandas()
        table["corrupted accuracy"] = _corrupted(correct).mean(("perturbation", "severity", "sample")).to_pandas()
    table.index = [str(name) for name in table.index]
    table.index.name = "model"
    return table


__all__ = ["accuracy_table", "cam_criteria_table", "escape", "mce_table", "method_table", "spectral_table",
           "to_latex"]
