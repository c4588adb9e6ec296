"""Calibration summaries of a cube, derived from the per-sample variables every cube has (nothing stored twice).

Per (model, perturbation, severity) cell, over the samples whose values are present (NaN = not written):

- ECE (Guo et al., ICML 2017) with ``n_bins`` (15) equal-width confidence bins ``(b/B, (b+1)/B]`` (a confidence of
  exactly 0 joins the first bin): ``ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|`` from ``confidence`` (the softmax
  probability of the predicted class) and ``correct``;
- NLL: the mean of ``−log prob_true``. ``prob_true`` is stored as float32, so a probability that underflowed to 0
  is read as the smallest normal float32 (NLL ≤ 87.3) rather than giving an infinite mean;
- Brier: the mean of the per-sample ``brier`` metric, when the cube has it (spec ``metrics: [brier]``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: The smallest normal float32: where a stored ``prob_true`` underflowed to 0.
_FLOOR = float(np.finfo(np.float32).tiny)


def _require(ds: xr.Dataset, *names: str) -> None:
    missing = [name for name in names if name not in ds.data_vars]
    if missing:
        raise ValueError(f"calibration needs the cube variables {', '.join(map(repr, missing))}; this cube has "
                         f"{sorted(map(str, ds.data_vars))}")


def nll(ds: xr.Dataset) -> xr.DataArray:
    """Per-sample negative log-likelihood ``−log prob_true`` (NaN where not written)."""
    _require(ds, "prob_true")
    values = -np.log(ds["prob_true"].astype(np.float64).clip(min=_FLOOR))
    return values.rename("nll").assign_attrs(direction="lower", long_name="negative log-likelihood of the label")


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """ECE along the last axis of ``confidence`` / ``correct`` (NaN confidences are skipped; all-NaN → NaN)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    valid = ~np.isnan(confidence) & ~np.isnan(correct)
    bins = np.clip(np.ceil(np.nan_to_num(confidence) * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = valid.sum(axis=-1)
    total = np.zeros(confidence.shape[:-1])
    for index in range(n_bins):
        members = valid & (bins == index)
        gap = np.abs(np.where(members, correct - confidence, 0.0).sum(axis=-1))
        total = total + gap  # |Σ_B (correct − conf)| = |B| · |acc(B) − conf(B)|
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def calibration(ds: xr.Dataset, n_bins: int = 15) -> xr.Dataset:
    """ECE, mean NLL and (when present) mean Brier per cell, with the number of samples used."""
    _require(ds, "confidence", "correct", "prob_true")
    confidence = ds["confidence"].astype(np.float64)
    correct = ds["correct"].astype(np.float64).where(confidence.notnull())
    ece = xr.apply_ufunc(expected_calibration_error, confidence, correct, input_core_dims=[["sample"], ["sample"]],
                         kwargs={"n_bins": n_bins}, dask="allowed")
    result = {
        "ece": ece.assign_attrs(direction="lower", long_name=f"expected calibration error ({n_bins} bins)"),
        "nll": nll(ds).mean("sample", skipna=True).assign_attrs(direction="lower", long_name="mean NLL"),
        "n": confidence.notnull().sum("sample").assign_attrs(direction="none", long_name="samples used"),
    }
    if "brier" in ds.data_vars:
        result["brier"] = ds["brier"].astype(np.float64).mean("sample", skipna=True).assign_attrs(
            direction="lower", long_name="mean Brier score")
    return xr.Dataset(result).assign_attrs(n_bins=n_bins)


__all__ = ["calibration", "expected_calibration_error", "nll"]
