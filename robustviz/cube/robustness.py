"""Corruption errors of a results cube: error tables, CE, mCE, relative mCE and flip probability.

Definitions (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019), with ``E_{s,c}`` the top-1 error at severity ``s`` of corruption ``c`` and ``E_clean``
the clean error (severity 0):

- ``CE_c = Σ_s E_{s,c} / Σ_s E^{base}_{s,c}``
- ``relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^{base}_{s,c} − E^{base}_clean)``
- ``mCE`` (and relative mCE) = the mean of CE_c over the 15 benchmark corruptions.

Values are fractions (1.0 = 100 %, the baseline's own score). The baseline is a model in the cube (any
perturbation) or ``"alexnet"``: AlexNet's published ImageNet-C errors (averaged over severities 1–5), valid only for
the 19 ImageNet-C corruption names and only when the cube holds all five severities. A model named ``alexnet`` in
the cube takes precedence over the published table; the result's ``baseline_source`` attr says which was used.

This module stands alone (xarray/numpy only), like the rest of :mod:`robustviz.cube`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: The 15 ImageNet-C benchmark corruptions (mCE averages these).
IMAGENET_C_BENCHMARK: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
#: The 4 extra ImageNet-C corruptions (held out of mCE).
IMAGENET_C_EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
#: AlexNet's ImageNet-C top-1 errors averaged over severities 1–5 (Hendrycks & Dietterich 2019).
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640, "defocus_blur": 0.819880,
    "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572,
    "fog": 0.819324, "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
    "pixelate": 0.717840, "jpeg_compression": 0.606500, "speckle_noise": 0.845388, "gaussian_blur": 0.787108,
    "spatter": 0.717512, "saturate": 0.658248,
}
ALEXNET_CLEAN_ERROR = 0.43478
TABLE_BASELINE = "alexnet"
_TABLE_SEVERITIES = (1, 2, 3, 4, 5)
_TABLE_SOURCE = "published AlexNet ImageNet-C errors (Hendrycks & Dietterich 2019)"


class RobustnessError(ValueError):
    """A cube that cannot give the requested corruption error; the message says what is missing and what to do."""


def _require(ds: xr.Dataset, variable: str) -> xr.DataArray:
    if variable not in ds.data_vars:
        raise RobustnessError(f"the cube has no {variable!r} variable (dims model, perturbation, severity, sample); "
                              f"corruption errors need the per-sample model outputs of an evaluation")
    array = ds[variable]
    missing = [dim for dim in ("model", "perturbation", "severity", "sample") if dim not in array.dims]
    if missing:
        raise RobustnessError(f"variable {variable!r} lacks the dims {missing}; expected (model, perturbation, "
                              f"severity, sample)")
    if "severity" not in array.coords or 0 not in set(np.asarray(array["severity"].values).tolist()):
        raise RobustnessError("the cube has no severity 0 (clean) entry; corruption errors compare with it")
    return array


def error_table(ds: xr.Dataset) -> xr.DataArray:
    """Top-1 error (``1 − mean(correct)`` over samples) per model × perturbation × severity (severity 0 = clean)."""
    correct = _require(ds, "correct")
    errors = 1.0 - correct.astype(np.float64).mean("sample")
    errors.name = "error"
    errors.attrs = {"long_name": "top-1 error", "direction": "lower", "units": "fraction"}
    return errors


def _corrupted(errors: xr.DataArray) -> xr.DataArray:
    severities = errors["severity"]
    if not bool((severities > 0).any()):
        raise RobustnessError("the cube holds only severity 0 (clean); evaluate at least one severity ≥ 1")
    return errors.sel(severity=severities[severities > 0])


def _baseline_sums(ds: xr.Dataset, errors: xr.DataArray, baseline: str) -> tuple[xr.DataArray, xr.DataArray, str]:
    """Σ_s E^{base}_{s,c} and Σ_s (E^{base}_{s,c} − E^{base}_clean), per perturbation, and their source."""
    models = [str(name) for name in np.asarray(errors["model"].values)]
    if baseline in models:
        base = errors.sel(model=baseline).drop_vars("model")
        corrupted = _corrupted(base)
        return (corrupted.sum("severity"), (corrupted - base.sel(severity=0)).sum("severity"),
                f"model {baseline!r} in the cube")
    if baseline != TABLE_BASELINE:
        raise RobustnessError(f"baseline {baseline!r} is neither a model in the cube ({models}) nor "
                              f"{TABLE_BASELINE!r} (published AlexNet ImageNet-C errors)")
    severities = tuple(int(s) for s in np.asarray(errors["severity"].values) if s > 0)
    if severities != _TABLE_SEVERITIES:
        raise RobustnessError(f"AlexNet's published errors average severities 1–5, but the cube holds severities "
                              f"{list(severities)}; evaluate all five or pass baseline=<a model in the cube>")
    names = [str(name) for name in np.asarray(errors["perturbation"].values)]
    known = [name for name in names if name in ALEXNET_ERRORS]
    if not known:
        raise RobustnessError(f"none of the cube's perturbations {names} is an ImageNet-C corruption, so the AlexNet "
                              f"table does not apply; pass baseline=<a model in the cube> instead")
    count = len(_TABLE_SEVERITIES)
    average = np.array([ALEXNET_ERRORS[name] for name in known])
    coords = {"perturbation": np.array(known, dtype=object)}
    total = xr.DataArray(count * average, dims="perturbation", coords=coords)
    relative = xr.DataArray(count * (average - ALEXNET_CLEAN_ERROR), dims="perturbation", coords=coords)
    return total, relative, _TABLE_SOURCE


def _keep_coords(array: xr.DataArray) -> xr.DataArray:
    """Drop leftover scalar coords (e.g. ``severity`` from selecting the clean slice); keep ``family``."""
    return array.drop_vars([name for name, coord in array.coords.items() if not coord.dims])


def corruption_error(ds: xr.Dataset, baseline: str = TABLE_BASELINE, *, relative: bool = False) -> xr.DataArray:
    """CE (or relative CE) per model × perturbation, as a fraction of the baseline's.

    With the AlexNet table only ImageNet-C corruptions appear in the result; with a baseline model from the cube
    every perturbation does. A relative CE whose baseline degrades by 0 is ±inf or NaN.
    """
    errors = error_table(ds)
    base_total, base_relative, source = _baseline_sums(ds, errors, baseline)
    errors = errors.sel(perturbation=base_total["perturbation"])
    corrupted = _corrupted(errors)
    if relative:
        numerator = (corrupted - errors.sel(severity=0)).sum("severity")
        denominator = base_relative
    else:
        numerator, denominator = corrupted.sum("severity"), base_total
    with np.errstate(divide="ignore", invalid="ignore"):
        result = numerator / denominator
    result = _keep_coords(result)
    result = result.transpose("model", "perturbation")
    result.name = "relative_ce" if relative else "ce"
    result.attrs = {"long_name": ("relative " if relative else "") + "corruption error", "direction": "lower",
                    "units": "fraction of baseline", "baseline": baseline, "baseline_source": source}
    return result


def mce(ds: xr.Dataset, baseline: str = TABLE_BASELINE, *, allow_partial: bool = False,
        relative: bool = False) -> xr.DataArray:
    """Mean CE over the 15 ImageNet-C benchmark corruptions, per model (1.0 = the baseline).

    Raises :class:`RobustnessError` when some benchmark corruptions are missing, unless ``allow_partial=True``
    (then the mean is over those present, listed in the ``corruptions`` attr).
    """
    errors = corruption_error(ds, baseline, relative=relative)
    names = [str(name) for name in np.asarray(errors["perturbation"].values)]
    present = [name for name in IMAGENET_C_BENCHMARK if name in names]
    missing = [name for name in IMAGENET_C_BENCHMARK if name not in names]
    if not present:
        raise RobustnessError(f"the cube holds none of the 15 ImageNet-C benchmark corruptions (it has {names}); "
                              f"mCE is their mean — use corruption_error() for other perturbations")
    if missing and not allow_partial:
        raise RobustnessError(f"mCE averages the 15 ImageNet-C benchmark corruptions; the cube lacks {missing}. "
                              f"Evaluate them, or pass allow_partial=True for the mean over the {len(present)} present")
    result = errors.sel(perturbation=present).mean("perturbation")
    result.name = "relative_mce" if relative else "mce"
    result.attrs = {**errors.attrs, "long_name": ("relative " if relative else "") + "mean corruption error",
                    "corruptions": ", ".join(present), "partial": int(bool(missing))}
    return result


def relative_mce(ds: xr.Dataset, baseline: str = TABLE_BASELINE, *, allow_partial: bool = False) -> xr.DataArray:
    """Relative mCE: mean over the 15 benchmark corruptions of the relative CE (see :func:`mce`)."""
    return mce(ds, baseline, allow_partial=allow_partial, relative=True)


def flip_probability(ds: xr.Dataset) -> xr.DataArray:
    """Probability that the prediction changes from one severity to the next, per model × perturbation:
    ``mean over s ≥ 1 of P(pred_s ≠ pred_{s−1})`` (ImageNet-P's flip probability, over severities instead of
    video frames; severity 0 is the clean image)."""
    pred = _require(ds, "pred")
    severities = np.asarray(pred["severity"].values)
    if severities.size < 2:
        raise RobustnessError("flip probability needs at least two severities (0 and one more)")
    current = pred.isel(severity=slice(1, None))
    previous = pred.isel(severity=slice(None, -1)).assign_coords(severity=current["severity"].values)
    flips = (current != previous).astype(np.float64).mean(("sample", "severity"))
    flips = _keep_coords(flips)
    flips.name = "flip_probability"
    flips.attrs = {"long_name": "probability that the prediction changes between successive severities",
                   "direction": "lower", "units": "fraction"}
    return flips.transpose("model", "perturbation")


__all__ = ["ALEXNET_CLEAN_ERROR", "ALEXNET_ERRORS", "IMAGENET_C_BENCHMARK", "IMAGENET_C_EXTRA", "RobustnessError",
           "TABLE_BASELINE", "corruption_error", "error_table", "flip_probability", "mce", "relative_mce"]
