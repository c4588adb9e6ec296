"""The data behind the linked views, as JSON-ready dicts, computed from a (lazy) cube on demand and cached.

The linked explorer (:mod:`robustviz.panels.linked`) and the static report (:mod:`robustviz.panels.report`) share
these functions, so a report shows exactly what the live views show. Each view reads one *payload* that depends on
a few selection fields; :func:`payload_key` names those (the JavaScript front end builds the same key). Aggregates
are computed per (variable, method) for all models × perturbations × severities at once — one read of that slice
of the store — and cached, so moving the selection inside a variable only slices numpy arrays; the per-sample view
and the gallery read just the cell or example they show.

Missing values stay missing: a cell whose samples are all NaN (e.g. a region an evaluation has not written yet)
has ``n = 0`` and mean ``null`` in JSON, never 0.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Sequence

import numpy as np
import xarray as xr

from .encoding import (_downsample, _label, _quiet, _to_uint8_rgb, colour_table, dumps_for_script, json_list,
                       png_data_uri, round_significant)
from ._base import PanelError, as_float, class_names, computed, options, sample_variables

#: Payload kinds and the selection fields each depends on (``method`` only for variables with a method dim).
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "heatmap": ("variable", "model", "method"),
    "cell": ("variable", "model", "method", "perturbation", "severity"),
    "curves": ("variable", "method", "scope_perturbation"),
    "scatter": ("explanation", "scope_perturbation", "severity_range"),
    "gallery": ("model", "perturbation", "sample"),
    "spectral": (),
    "fisher": ("severity",),
}
Z95 = 1.959963984540054  #: two-sided 95% normal quantile


def payload_key(kind: str, state: dict[str, Any], has_method: bool) -> str:
    """The key of ``kind``'s payload for a selection (JSON of the fields it depends on; the JS builds the same)."""
    values = []
    for field in PAYLOAD_FIELDS[kind]:
        if field == "method" and not has_method:
            values.append(None)
        elif field == "scope_perturbation":
            values.append(state.get("perturbation") if state.get("scope") == "selected" else None)
        elif field == "explanation":
            values.append(state.get("explanation"))
        elif field == "severity_range":
            values.append(list(state.get("severity_range") or []) or None)
        else:
            values.append(state.get(field))
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


class CubeData:
    """Cached aggregates of one cube for the linked views; thread-safe (a store watcher may refresh from a thread).

    ``max_points`` caps the samples the per-sample view gets (a seeded random subset, always including the stored
    examples); ``map_size`` the side of the attribution maps sent to the gallery and ``map_levels`` their grey
    levels (the report uses fewer: smaller files).
    """

    def __init__(self, ds: xr.Dataset, *, max_points: int = 1000, map_size: int = 64, map_levels: int = 256,
                 seed: int = 0):
        if "model" not in ds.dims or "correct" not in ds.data_vars:
            raise PanelError("this Dataset is not a robustviz cube (no model dim or 'correct' variable); build "
                             "cubes with robustviz.evaluate or robustviz.testing.make_cube")
        self.ds = ds
        self.max_points, self.map_size, self.map_levels, self.seed = max_points, map_size, map_levels, seed
        self._cache: dict[tuple, Any] = {}
        self._lock = threading.RLock()
        self.models = [_label(v) for v in options(ds, "model")]
        self.perturbations = [_label(v) for v in options(ds, "perturbation")]
        self.severities = [int(v) for v in options(ds, "severity")]
        self.methods = [_label(v) for v in options(ds, "method")] if "method" in ds.dims else []
        self.variables = sample_variables(ds)
        self.examples = [int(v) for v in options(ds, "example")] if "example" in ds.dims else []
        self.samples = [_label(v) for v in options(ds, "sample")]

    # -- shared -------------------------------------------------------------------------------------------------
    def has_method(self, variable: str | None) -> bool:
        return variable in self.ds.data_vars and "method" in self.ds[variable].dims

    def explanation_variables(self) -> list[str]:
        return [v for v in self.variables if self.has_method(v)]

    def _cached(self, key: tuple, build) -> Any:
        """``build()`` once per key. Built outside the lock, so a slow build (a gallery read in a background
        thread) never blocks a fast lookup; two threads may build the same key once each, harmlessly."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            return self._cache.setdefault(key, value)

    def _values(self, variable: str, method: Any) -> np.ndarray:
        """(model, perturbation, severity, sample) float64 of one variable (and method): one read of the store."""
        def build() -> np.ndarray:
            array = as_float(self.ds[variable])
            if "method" in array.dims:
                array = array.sel({"method": method})
            extra = [d for d in array.dims if d not in ("model", "perturbation", "severity", "sample")]
            if extra:
                raise PanelError(f"variable {variable!r} has extra dims {extra}; the linked views show "
                                 f"(model, perturbation, severity, sample) variables")
            return computed(array.transpose("model", "perturbation", "severity", "sample")).astype(np.float64)
        return self._cached(("values", variable, method), build)

    def stats(self, variable: str, method: Any = None) -> dict[str, np.ndarray]:
        """Mean, standard deviation and count of defined (non-NaN) samples, each (model, perturbation, severity)."""
        def build() -> dict[str, np.ndarray]:
            values = self._values(variable, method)
            finite = np.isfinite(values)
            n = finite.sum(axis=-1)
            filled = np.where(finite, values, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = filled.sum(axis=-1) / n
                sd = np.sqrt(np.where(finite, (values - mean[..., None]) ** 2, 0.0).sum(axis=-1)
                             / np.maximum(n - 1, 1))
            return {"mean": mean, "sd": sd, "n": n}
        return self._cached(("stats", variable, method), build)

    def _check(self, variable: str, method: Any) -> None:
        if variable not in self.variables:
            raise PanelError(f"variable {variable!r} is not a per-sample variable of this cube; choose one of "
                             f"{self.variables}")
        if self.has_method(variable) and method not in self.methods:
            raise PanelError(f"method {method!r} is not in this cube; choose one of {self.methods}")

    # -- payloads -----------------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Labels, variables (direction, long name, method dim), class names and colour maps."""
        ds = self.ds
        variables = {name: {"direction": str(ds[name].attrs.get("direction", "none")),
                            "long_name": str(ds[name].attrs.get("long_name", "")),
                            "category": str(ds[name].attrs.get("category", "")),
                            "has_method": self.has_method(name)} for name in self.variables}
        return {"models": self.models, "perturbations": self.perturbations, "severities": self.severities,
                "methods": self.methods, "variables": variables, "examples": self.examples,
                "class_names": class_names(ds), "title": str(ds.attrs.get("title", "")),
                "explanation_variables": self.explanation_variables(),
                "colour_maps": {"viridis": colour_table("viridis"), "RdBu_r": colour_table("RdBu_r"),
                                "plasma": colour_table("plasma")},
                "has": {"gallery": "example_image" in ds.data_vars and bool(self.examples),
                        "spectral": {"sid", "srs"} <= set(ds.data_vars),
                        "fisher": "fisher_lmax" in self.variables,
                        "scatter": bool(self.explanation_variables())}}

    def heatmap(self, variable: str, model: Any, method: Any = None) -> dict[str, Any]:
        """Mean over samples per (perturbation, severity) with a normal-theory 95% CI (mean ± 1.96 s/√n) and n."""
        self._check(variable, method)
        if model not in self.models:
            raise PanelError(f"model {model!r} is not in this cube; choose one of {self.models}")
        stats = self.stats(variable, method if self.has_method(variable) else None)
        index = self.models.index(model)
        mean, sd, n = stats["mean"][index], stats["sd"][index], stats["n"][index]
        half = Z95 * sd / np.sqrt(np.maximum(n, 1))
        half = np.where(n > 1, half, np.nan)
        return {"variable": variable, "model": model, "method": method if self.has_method(variable) else None,
                "direction": str(self.ds[variable].attrs.get("direction", "none")),
                "mean": json_list(mean), "low": json_list(mean - half), "high": json_list(mean + half),
                "n": n.astype(int).tolist()}

    def _subset(self) -> np.ndarray:
        """Indices of the samples the per-sample view shows (all, or a seeded subset that keeps the examples)."""
        def build() -> np.ndarray:
            total = len(self.samples)
            if total <= self.max_points:
                return np.arange(total)
            keep = [self.samples.index(e) for e in self.examples if e in self.samples]
            rest = np.setdiff1d(np.arange(total), keep)
            chosen = np.random.default_rng(self.seed).choice(rest, self.max_points - len(keep), replace=False)
            return np.sort(np.concatenate([np.asarray(keep, dtype=int), chosen]))
        return self._cached(("subset",), build)

    def cell(self, variable: str, model: Any, method: Any, perturbation: Any, severity: int) -> dict[str, Any]:
        """Per-sample values of one cell and of the same samples clean (severity 0)."""
        self._check(variable, method)
        for dim, value, labels in (("model", model, self.models), ("perturbation", perturbation, self.perturbations),
                                   ("severity", severity, self.severities)):
            if value not in labels:
                raise PanelError(f"{dim} {value!r} is not in this cube; choose one of {labels}")
        key = ("values", variable, method if self.has_method(variable) else None)
        subset = self._subset()
        if key in self._cache:  # already read for aggregates: slice it
            values = self._cache[key][self.models.index(model), self.perturbations.index(perturbation)]
            pair = values[[self.severities.index(0) if 0 in self.severities else 0, self.severities.index(severity)]]
            pair = pair[:, subset]
        else:
            array = as_float(self.ds[variable]).sel(model=model, perturbation=perturbation)
            if self.has_method(variable):
                array = array.sel({"method": method})
            clean = 0 if 0 in self.severities else self.severities[0]
            pair = computed(array.sel(severity=[clean, severity]).isel(sample=subset)
                            .transpose("severity", "sample")).astype(np.float64)
        perturbed = pair[1]
        return {"variable": variable, "model": model, "method": method if self.has_method(variable) else None,
                "perturbation": perturbation, "severity": int(severity),
                "samples": [self.samples[i] for i in subset], "clean": json_list(pair[0], 5),
                "perturbed": json_list(perturbed, 5), "n_total": len(self.samples),
                "n_defined": int(np.isfinite(perturbed).sum())}

    def curves(self, variable: str, method: Any = None, perturbation: Any = None) -> dict[str, Any]:
        """Per model: mean over samples against severity with a 95% CI; ``perturbation=None``: each sample's values
        averaged over perturbations first (the band then reflects sample-to-sample variation)."""
        self._check(variable, method)
        method = method if self.has_method(variable) else None
        if perturbation is None:
            def build() -> dict[str, np.ndarray]:
                values = self._values(variable, method)
                with np.errstate(invalid="ignore"), _quiet():
                    per_sample = np.nanmean(values, axis=1)  # (model, severity, sample)
                finite = np.isfinite(per_sample)
                n = finite.sum(-1)
                with np.errstate(invalid="ignore", divide="ignore"), _quiet():
                    mean = np.nanmean(per_sample, -1)
                    sd = np.nanstd(per_sample, -1, ddof=1)
                return {"mean": mean, "sd": sd, "n": n}
            stats = self._cached(("over-perturbations", variable, method), build)
        else:
            if perturbation not in self.perturbations:
                raise PanelError(f"perturbation {perturbation!r} is not in this cube; choose one of "
                                 f"{self.perturbations}")
            full = self.stats(variable, method)
            index = self.perturbations.index(perturbation)
            stats = {k: v[:, index] for k, v in full.items()}
        half = np.where(stats["n"] > 1, Z95 * stats["sd"] / np.sqrt(np.maximum(stats["n"], 1)), np.nan)
        lines = [{"model": model, "mean": json_list(stats["mean"][i]), "low": json_list(stats["mean"][i] - half[i]),
                  "high": json_list(stats["mean"][i] + half[i]), "n": stats["n"][i].astype(int).tolist()}
                 for i, model in enumerate(self.models)]
        return {"variable": variable, "method": method, "perturbation": perturbation, "severities": self.severities,
                "direction": str(self.ds[variable].attrs.get("direction", "none")), "lines": lines}

    def _faithfulness_variable(self, explanation: str) -> str | None:
        candidates = [v for v in self.explanation_variables()
                      if self.ds[v].attrs.get("category") == "faithfulness" and v != explanation]
        return candidates[0] if candidates else None

    def scatter(self, explanation: str | None = None, perturbation: Any = None,
                severity_range: Sequence[int] | None = None) -> dict[str, Any]:
        """One point per (model, method): accuracy under perturbation, mean ``explanation`` robustness and mean
        faithfulness (the first variable of category "faithfulness") over the same cells — severities ≥ 1, or
        those in ``severity_range`` (low, high), both included (the severity curves' brush)."""
        candidates = self.explanation_variables()
        if not candidates:
            raise PanelError("the three-criteria scatter needs an explanation metric (a variable with a method dim)")
        explanation = explanation if explanation in candidates else candidates[0]
        faithfulness = self._faithfulness_variable(explanation)
        if severity_range:
            low, high = sorted(int(v) for v in severity_range)
            cells = np.array([low <= s <= high for s in self.severities])
            if not cells.any():
                raise PanelError(f"no severity of this cube lies in {low}–{high} (it has {self.severities})")
        else:
            cells = np.array([s > 0 for s in self.severities])
        columns = slice(None) if perturbation is None else [self.perturbations.index(perturbation)]

        def pooled(stats: dict[str, np.ndarray]) -> np.ndarray:
            mean, n = stats["mean"][:, columns][:, :, cells], stats["n"][:, columns][:, :, cells]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(n > 0, np.nan_to_num(mean) * n, 0).sum((1, 2)) / n.sum((1, 2))

        accuracy = pooled(self.stats("correct"))
        points = []
        for method in self.methods:
            robustness = pooled(self.stats(explanation, method))
            faithful = pooled(self.stats(faithfulness, method)) if faithfulness else np.full(len(self.models), np.nan)
            for i, model in enumerate(self.models):
                points.append({"model": model, "method": method, "accuracy": json_list(accuracy[i]),
                               "explanation": json_list(robustness[i]), "faithfulness": json_list(faithful[i])})
        chosen = [s for s, keep in zip(self.severities, cells) if keep]
        return {"explanation": explanation, "faithfulness": faithfulness, "perturbation": perturbation,
                "severities": chosen, "severity_range": [chosen[0], chosen[-1]] if severity_range else None,
                "directions": {name: str(self.ds[name].attrs.get("direction", "none"))
                               for name in filter(None, (explanation, faithfulness))}, "points": points}

    def gallery(self, model: Any, perturbation: Any, sample: Any) -> dict[str, Any]:
        """Stored example ``sample``: image per severity (PNG), each method's map per severity (grey PNG of
        ``(a / m + 1) / 2`` with its own scale ``m = max |a|``, so the front end can apply per-method or shared
        scales), and the predicted class and confidence per severity."""
        ds = self.ds
        base = {"model": model, "perturbation": perturbation, "sample": sample, "examples": self.examples}
        if "example_image" not in ds.data_vars or not self.examples:
            return {**base, "available": False, "reason": "this cube stores no example images (n_examples = 0)"}
        if sample not in self.examples:
            return {**base, "available": False,
                    "reason": f"sample {sample} has no stored images; stored examples: {self.examples}"}
        images_of_model, maps_of_model = self._examples(model)
        p, e = self.perturbations.index(perturbation), self.examples.index(sample)
        sevs = [int(s) for s in ds["example_image"]["severity"].values]
        payload = {**base, "available": True, "severities": sevs,
                   "images": [png_data_uri(_to_uint8_rgb(image)) for image in images_of_model[p, e]], "maps": []}
        if maps_of_model is not None:
            for method, per_severity in zip(self.methods, maps_of_model[p, e]):
                entries = []
                for amap in per_severity:
                    amap = _downsample(np.nan_to_num(amap), self.map_size)
                    scale = float(np.abs(amap).max()) or 1.0
                    step = 256 // self.map_levels  # fewer grey levels compress better (the report)
                    grey = np.round((amap / scale + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
                    grey = ((grey // step) * step + step // 2).clip(0, 255).astype(np.uint8) if step > 1 else grey
                    entries.append({"png": png_data_uri(grey), "scale": float(round_significant(scale, 5))})
                payload["maps"].append({"method": method, "severities": entries})
        names = class_names(ds)
        for name in ("pred", "confidence", "correct"):
            if name in ds.data_vars and "sample" in ds.dims:
                values = computed(as_float(ds[name]).sel(model=model, perturbation=perturbation, sample=sample)
                                  .sel(severity=sevs))
                payload[name] = json_list(values, 4)
        if "pred" in payload and names:
            payload["pred_name"] = [names[int(p)] if p is not None and 0 <= int(p) < len(names) else None
                                    for p in payload["pred"]]
        if "label" in ds.coords and "sample" in ds.dims:
            label = int(ds["label"].sel(sample=sample).values)
            payload["label"] = label
            payload["label_name"] = names[label] if names and 0 <= label < len(names) else str(label)
        return payload

    def _examples(self, model: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """One model's stored images (perturbation, example, severity, y, x, channel) and maps (perturbation,
        example, method, severity, y, x), read once per model (the store chunks them by model and method, so one
        gallery would read every chunk anyway); the last two models are kept."""
        def build() -> tuple[np.ndarray, np.ndarray | None]:
            ds = self.ds
            images = computed(ds["example_image"].sel(model=model).transpose(
                "perturbation", "example", "severity", "y", "x", "channel"))
            maps = None
            if "example_attribution" in ds.data_vars and self.methods:
                maps = computed(ds["example_attribution"].sel(model=model).transpose(
                    "perturbation", "example", "method", "severity", "y", "x")).astype(np.float32)
            return images, maps
        with self._lock:
            stale = [key for key in self._cache if key[0] == "examples" and key[1] != model]
            for key in stale[:-1]:
                del self._cache[key]
        return self._cached(("examples", model), build)

    def spectral(self) -> dict[str, Any]:
        """I-ASIDE SID (model, band) and SRS per model."""
        if not {"sid", "srs"} <= set(self.ds.data_vars):
            return {"available": False, "reason": "this cube has no I-ASIDE results (add the iaside metric)"}
        sid = computed(self.ds["sid"].transpose("model", "band"))
        srs = computed(self.ds["srs"])
        return {"available": True, "bands": [int(b) for b in self.ds["band"].values],
                "models": [{"model": m, "sid": json_list(sid[i], 5), "srs": json_list(srs[i], 5)}
                           for i, m in enumerate(self.models)]}

    def fisher(self, severity: int) -> dict[str, Any]:
        """Distribution of ``fisher_lmax`` over samples per (model, perturbation) at ``severity``: quantiles
        10/25/50/75/90 % and n."""
        if "fisher_lmax" not in self.variables:
            return {"available": False, "reason": "this cube has no Fisher λmax (add the fisher_lmax metric)"}
        if severity not in self.severities:
            raise PanelError(f"severity {severity!r} is not in this cube; choose one of {self.severities}")

        def build() -> np.ndarray:
            with _quiet():
                return np.nanpercentile(self._values("fisher_lmax", None), [10, 25, 50, 75, 90], axis=-1)
        quantiles = self._cached(("fisher-quantiles",), build)[:, :, :, self.severities.index(severity)]
        n = self.stats("fisher_lmax")["n"][:, :, self.severities.index(severity)]
        return {"available": True, "severity": int(severity), "quantiles": [10, 25, 50, 75, 90],
                "values": json_list(quantiles, 5), "n": n.astype(int).tolist()}

    def payload(self, kind: str, state: dict[str, Any]) -> dict[str, Any]:
        """The ``kind`` payload for a selection; a problem becomes ``{"error": message}`` (shown in the view)."""
        variable = state.get("variable")
        method = state.get("method") if self.has_method(variable) else None
        scope = state.get("perturbation") if state.get("scope") == "selected" else None
        try:
            if kind == "heatmap":
                return self.heatmap(variable, state.get("model"), method)
            if kind == "cell":
                return self.cell(variable, state.get("model"), method, state.get("perturbation"),
                                 state.get("severity"))
            if kind == "curves":
                return self.curves(variable, method, scope)
            if kind == "scatter":
                return self.scatter(state.get("explanation"), scope, state.get("severity_range")) \
                    if self.explanation_variables() else \
                    {"available": False, "reason": "no explanation metric in this cube"}
            if kind == "gallery":
                return self.gallery(state.get("model"), state.get("perturbation"), state.get("sample"))
            if kind == "spectral":
                return self.spectral()
            if kind == "fisher":
                return self.fisher(state.get("severity"))
        except (PanelError, KeyError, ValueError, IndexError) as error:
            return {"error": str(error)}
        raise ValueError(f"unknown payload kind {kind!r}; one of {list(PAYLOAD_FIELDS)}")

    def key(self, kind: str, state: dict[str, Any]) -> str:
        return payload_key(kind, state, self.has_method(state.get("variable")))

    def default_state(self) -> dict[str, Any]:
        """The first selection: accuracy of the first model, its strongest perturbation severity, first example."""
        explanation = self.explanation_variables()
        return {"variable": "correct" if "correct" in self.variables else self.variables[0],
                "explanation": "cosine" if "cosine" in explanation else (explanation[0] if explanation else None),
                "model": self.models[0], "method": self.methods[0] if self.methods else None,
                "perturbation": self.perturbations[0], "severity": self.severities[-1],
                "sample": self.examples[0] if self.examples else self.samples[0], "scope": "all"}


__all__ = ["CubeData", "PAYLOAD_FIELDS", "dumps_for_script", "json_list", "payload_key", "png_data_uri",
           "round_significant"]
