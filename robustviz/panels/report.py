"""A self-contained static HTML report of a cube: the linked views with their data embedded, no kernel, no network.

``robustviz report CUBE --out DIR`` and ``ds.rv.report(path)`` call :func:`write_report`. The page carries

- the same ES module as the live explorer (``static/views.js``), driven by a stand-in model that answers from
  payloads embedded as JSON (every selection's heatmap, per-sample values of a seeded subset of samples, curves,
  scatter, Fisher quantiles, SID; the stored examples' images and maps as PNG data URIs);
- summary tables, provenance (spec, versions, seeds) and the paper figures (PNG data URIs);
- a Content-Security-Policy that forbids every network request (only inline code, inline styles and ``data:``
  images), so the file opens from ``file://`` anywhere.

Every string from the cube is escaped: HTML text with :func:`html.escape`, embedded JSON with ``<``/``>``/``&``
written as ``\\u003c``… (:func:`robustviz.panels.payloads.dumps_for_script`), and the views use ``textContent``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

import xarray as xr

from .payloads import PAYLOAD_FIELDS, CubeData, dumps_for_script, json_list

GENERATOR = "robustviz report"
STATIC = Path(__file__).with_name("static")
#: Paper figures the report shows (stems of robustviz.figures.export.plan); the gallery already shows examples.
REPORT_FIGURES = ("accuracy_severity_curves", "mce_bars", "sid_spectra", "srs_vs_accuracy", "cam_criteria")
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'none'; font-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'")


class ReportError(ValueError):
    """The report cannot be written where asked; the message says why and what to do."""


def report_payloads(data: CubeData, n_examples: int | None = 1) -> dict[str, Any]:
    """Everything the views can ask for: ``payloads`` by kind and key; the per-sample values of the report's
    sample subset as one (perturbation, severity, sample) table per (variable, model, method) in ``cells`` (the
    front end cuts a cell out of it); ``pool``, each distinct image data URI once (gallery entries refer to it by
    index: a clean image or map is the same under every perturbation). Stored examples: the first
    ``n_examples`` (None: all)."""
    payloads: dict[str, dict[str, Any]] = {kind: {} for kind in PAYLOAD_FIELDS if kind != "cell"}
    cells: dict[str, Any] = {}
    pool: dict[str, int] = {}
    base = data.default_state()

    def add(kind: str, **state: Any) -> None:
        full = {**base, **state}
        key = data.key(kind, full)
        if key not in payloads[kind]:
            payloads[kind][key] = data.payload(kind, full)

    def pooled(uri: str) -> int:
        return pool.setdefault(uri, len(pool))

    subset = data._subset()
    scopes = [{"scope": "all"}] + [{"scope": "selected", "perturbation": p} for p in data.perturbations]
    for variable in data.variables:
        methods = data.methods if data.has_method(variable) else [None]
        for method in methods:
            values = data._values(variable, method)[..., subset]
            for index, model in enumerate(data.models):
                add("heatmap", variable=variable, model=model, method=method)
                key = json.dumps([variable, model, method], separators=(",", ":"), ensure_ascii=False)
                cells[key] = json_list(values[index], 3)
            for scope in scopes:
                add("curves", variable=variable, method=method, **scope)
    for explanation, scope in product(data.explanation_variables(), scopes):
        add("scatter", explanation=explanation, **scope)
    perturbed = [s for s in data.severities if s > 0]
    brushes = [[low, high] for i, low in enumerate(perturbed) for high in perturbed[i:]]
    for explanation, brushed in product(data.explanation_variables(), brushes):  # the curves' brush, scope all
        add("scatter", explanation=explanation, scope="all", severity_range=brushed)
    examples = data.examples if n_examples is None else data.examples[:n_examples]
    for model, perturbation, sample in product(data.models, data.perturbations, examples):
        add("gallery", model=model, perturbation=perturbation, sample=sample)
    for payload in payloads["gallery"].values():
        if payload.get("available"):
            payload["images"] = [pooled(uri) for uri in payload["images"]]
            for row in payload["maps"]:
                for entry in row["severities"]:
                    entry["png"] = pooled(entry["png"])
    add("spectral")
    for severity in data.severities:
        add("fisher", severity=severity)
    return {"payloads": payloads, "cells": cells, "samples": [data.samples[i] for i in subset],
            "n_samples": len(data.samples), "pool": list(pool)}


def _png(figure: Any, dpi: int) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def paper_figures(ds: xr.Dataset, dpi: int = 80) -> list[tuple[str, str | None, str]]:
    """(title, PNG data URI or None, note) for :data:`REPORT_FIGURES`; a figure the cube cannot give is listed
    with the reason."""
    from ..figures import export

    out = []
    for item in export.plan(ds):
        if item.stem not in REPORT_FIGURES:
            continue
        reason = export._unsupported(ds, item)
        if reason is None:
            try:
                out.append((item.title, _png(item.build(ds), dpi), ""))
                continue
            except Exception as error:  # a figure that fails must not cost the whole report
                reason = f"{type(error).__name__}: {error}"
        out.append((item.title, None, f"not drawn: {reason}"))
    return out


def _table_html(frame: Any, caption: str) -> str:
    return (f"<h3>{html.escape(caption)}</h3>"
            + frame.to_html(escape=True, float_format=lambda v: f"{v:.3f}", na_rep="missing", border=0,
                            classes="rv-table"))


def summary_tables(ds: xr.Dataset) -> str:
    """Accuracy per model × perturbation and per-model means of the other scores, as escaped HTML tables."""
    parts = []
    try:
        parts.append(_table_html(ds.rv.accuracy_table(), "Top-1 accuracy: clean, and per perturbation (mean over "
                                                         "severities ≥ 1)"))
    except Exception as error:
        parts.append(f"<p>accuracy table not available: {html.escape(str(error))}</p>")
    others = [name for name in ds.rv.scores if name not in ("correct", "pred")]
    if others:
        try:
            table = ds.rv.summary(others, by=("model",))
            parts.append(_table_html(table, "Mean scores per model (and method) over perturbations, severities "
                                            "and samples"))
        except Exception as error:
            parts.append(f"<p>score summary not available: {html.escape(str(error))}</p>")
    return "\n".join(parts)


def provenance(ds: xr.Dataset) -> dict[str, Any]:
    """The cube's attrs that say how it was made (spec as a dict, versions, seed, device, creation time)."""
    attrs = {str(k): v for k, v in ds.attrs.items() if k not in ("class_names",)}
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "spec" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)
    out["dims"] = {str(k): int(v) for k, v in ds.sizes.items()}
    return out


def render_report(ds: xr.Dataset, *, max_points: int = 24, n_examples: int | None = 1, map_size: int = 32,
                  map_levels: int = 64, figures: bool = True, title: str | None = None) -> str:
    """The report of ``ds`` as one HTML string (see the module docstring). ``max_points``: samples per cell in
    the per-sample view (a seeded subset that keeps the stored examples); ``n_examples``: stored examples in the
    gallery (None: all); ``map_size``/``map_levels``: side and grey levels of the embedded attribution maps."""
    data = CubeData(ds, max_points=max_points, map_size=map_size, map_levels=map_levels)
    state = {**data.default_state(), "scale": "per-method", "filter_models": [], "meta": data.meta(),
             "status": f"static report — {len(data.samples)} samples per cell in the cube, up to {max_points} "
                       f"per cell in the per-sample view"}
    bundle = {"state": state, **report_payloads(data, n_examples)}
    script = (STATIC / "views.js").read_text(encoding="utf-8")
    if "</script" in script.lower():
        raise ReportError("views.js contains '</script' and cannot be inlined")
    heading = title or str(ds.attrs.get("title") or ds.rv.spec.get("name") or "robustviz cube")
    figure_html = []
    for caption, uri, note in (paper_figures(ds) if figures else []):
        figure_html.append(f"<figure><figcaption>{html.escape(caption)}</figcaption>"
                           + (f'<img alt="{html.escape(caption)}" src="{uri}">' if uri else
                              f"<p class='rv-note'>{html.escape(note)}</p>") + "</figure>")
    prov = json.dumps(provenance(ds), indent=2, ensure_ascii=False, default=str)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="{GENERATOR}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(heading)} — robustviz report</title>
<style>
body{{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}} h1{{font-size:20px}}
h2{{font-size:16px;margin-top:24px}} .rv-table{{border-collapse:collapse;font-size:12px}}
.rv-table td,.rv-table th{{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}}
figure{{display:inline-block;margin:6px;vertical-align:top}} figure img{{max-width:560px}}
pre{{background:#f6f6f6;padding:8px;overflow:auto;max-height:400px}}
</style></head><body>
<h1>{html.escape(heading)}</h1>
<p class="rv-note">A robustviz report: linked views of a results cube. Click a heatmap cell for its samples, a sample
for its images and maps, a point or line for its model; drag a box in the scatter to filter. Everything is in this
file — it needs no kernel and no network.</p>
<h2>Linked views</h2>
<div id="rv-app"></div>
<h2>Summary tables</h2>
<div id="rv-tables">{summary_tables(ds)}</div>
<h2>Paper figures</h2>
<div id="rv-figures">{"".join(figure_html) or "<p>(not included)</p>"}</div>
<h2>Provenance</h2>
<pre id="rv-provenance">{html.escape(prov)}</pre>
<script type="application/json" id="rv-bundle">{dumps_for_script(bundle)}</script>
<script type="module">
{script}
const bundle = JSON.parse(document.getElementById("rv-bundle").textContent);
render({{ model: staticModel(bundle), el: document.getElementById("rv-app") }});
</script>
</body></html>
"""


def _target(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path if path.suffix.lower() in (".html", ".htm") else path / "report.html"


def write_report(ds: xr.Dataset, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the report of ``ds`` to ``path`` (an ``.html`` file, or a directory that gets ``report.html``).

    Refuses to replace a file robustviz did not write; writes to a temporary file first, so an error leaves
    nothing half-written. Returns the path written.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"report needs a robustviz cube (xarray.Dataset), got {type(ds).__name__}")
    target = _target(path)
    if target.exists():
        head = target.read_bytes()[:2048].decode("utf-8", "replace") if target.is_file() else ""
        if GENERATOR not in head:
            raise ReportError(f"{target} exists and was not written by robustviz; choose another --out or remove it")
    text = render_report(ds, **options)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def timed_report(ds: xr.Dataset, path: str | os.PathLike[str], **options: Any) -> tuple[Path, float, int]:
    """:func:`write_report` plus its wall time (s) and the file size (bytes) — for the CLI and benchmarks."""
    start = time.perf_counter()
    target = write_report(ds, path, **options)
    return target, time.perf_counter() - start, target.stat().st_size


__all__ = ["ReportError", "paper_figures", "provenance", "render_report", "report_payloads", "summary_tables",
           "timed_report", "write_report"]
