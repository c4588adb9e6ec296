"""Interaction latency of the panels on a large zarr-backed cube, and the static report's build time and size.

Builds (once; reused from the cache dir) a synthetic cube of 10 models × 25 perturbations × 6 severities (0–5) ×
10 methods × 1000 samples with ``robustviz.testing.cubes.make_cube``, writes it chunked with dask to zarr.

1. Linked explorer, in the browser (``--browser``, default on): a JupyterLab server runs a notebook that opens the
   store lazily and shows a ``LinkedExplorer``; headless Chromium clicks heatmap cells and measures, in the page,
   the time from the click to the per-sample view showing the clicked cell (kernel round trip + compute + redraw),
   for ``correct`` and for an explanation metric. Targets: median < 100 ms, p95 < 300 ms.
2. Static report of a demo-sized cube (the shipped demo's dims: 6 models × 19 perturbations × 5 methods, 64 px
   images; 64 samples): build time and file size (target < 10 MB).
3. ``--matplotlib``: the matplotlib panels' redraw time per interaction on the lazy cube and in memory (``ratio``).

    python benchmarks/panels.py [--cache DIR] [--clicks N] [--workers 2] [--matplotlib]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import dask
import matplotlib
import xarray as xr

matplotlib.use("Agg")

from robustviz.panels import CriteriaScatter, CubeExplorer, SampleGallery, SeverityCurves, SpectralPanel  # noqa
from robustviz.testing.cubes import make_cube  # noqa: E402

SIZES = {"n_models": 10, "n_perturbations": 25, "n_methods": 10, "n_samples": 1000, "n_examples": 4,
         "image_size": 32}
TARGET_SECONDS = 0.300


def build_store(path: Path) -> Path:
    """Write the large cube to ``path`` (chunked: one model × one method × all samples per explanation chunk)."""
    marker = path / ".robustviz-bench-complete"
    if marker.exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    cube = make_cube(**SIZES, seed=0)
    chunks = {"model": 1, "method": 1, "perturbation": 25, "severity": -1, "sample": -1, "example": -1}
    cube = cube.chunk({dim: size for dim, size in chunks.items() if dim in cube.dims})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube.to_zarr(path, mode="w", consolidated=True)
    marker.touch()
    print(f"built {path} in {time.perf_counter() - start:.1f} s")
    return path


def interactions(ds: xr.Dataset):
    """(name, panel, control name, values to cycle through)."""
    models = [str(m) for m in ds["model"].values]
    methods = [str(m) for m in ds["method"].values]
    perturbations = [str(p) for p in ds["perturbation"].values]
    explorer = CubeExplorer(ds)
    gallery = SampleGallery(ds)
    curves = SeverityCurves(ds)
    spectral = SpectralPanel(ds)
    scatter = CriteriaScatter(ds)
    explorer.variable.value = "cosine"
    return [
        ("explorer: variable", explorer, "variable", ["consistency", "deletion_auc", "responsiveness", "cosine",
                                                      "prob_true", "fisher_lmax"]),
        ("explorer: model", explorer, "model", models[1:] + models[:1]),
        ("explorer: method", explorer, "method", methods[1:] + methods[:1]),
        ("explorer: cell (perturbation)", explorer, "perturbation", perturbations[1:8]),
        ("explorer: cell (severity)", explorer, "severity", [1, 2, 3, 4, 5, 0]),
        ("gallery: model", gallery, "model", models[1:]),
        ("gallery: perturbation", gallery, "perturbation", perturbations[1:8]),
        ("gallery: sample", gallery, "example", [int(e) for e in ds["example"].values[1:]] + [0]),
        ("gallery: colour scale", gallery, "normalisation", ["per-map", "shared"] * 3),
        ("curves: variable", curves, "variable", ["cosine", "prob_true", "deletion_auc", "confidence", "correct"]),
        ("curves: perturbation", curves, "perturbation", perturbations[:6]),
        ("curves: lines per method", curves, "by", ["method", "model"] * 3),
        ("spectral: models", spectral, "models", [tuple(models[:k]) for k in (3, 5, 8, 2, 10)]),
        ("scatter: metric", scatter, "variable", ["consistency", "deletion_auc", "responsiveness", "cosine"]),
        ("scatter: method", scatter, "method", methods[1:7]),
        ("scatter: perturbation", scatter, "perturbation", perturbations[:6]),
        ("scatter: highlight model", scatter, "model", models[:6]),
    ]


def time_interactions(ds: xr.Dataset, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Per interaction: (wall seconds, CPU seconds of this process — all threads) of each value change."""
    timings: dict[str, list[tuple[float, float]]] = {}
    for name, panel, control_name, values in interactions(ds):
        panel.ensure_rendered()
        control = getattr(panel, control_name)
        for value in itertools.islice(itertools.cycle(values), repeats):
            if control.value == value:
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            control.value = value
            elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if panel.last_error:
                raise RuntimeError(f"{name}: {panel.last_error}")
            timings.setdefault(name, []).append((elapsed, cpu))
    return timings


BROWSER_CELL = """\
import dask, xarray as xr
from robustviz.panels import LinkedExplorer
dask.config.set(scheduler="threads", num_workers={workers})
explorer = LinkedExplorer(xr.open_zarr({path!r}))
explorer
"""
CLICK_JS = """async (index) => {
  const rect = document.querySelectorAll('.rv-view-heatmap rect.rv-cell')[index];
  const view = document.querySelector('.rv-view-cell');
  const want = JSON.stringify([rect.getAttribute('data-perturbation'), Number(rect.getAttribute('data-severity'))]);
  const start = performance.now();
  rect.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  await new Promise((resolve) => {
    if (view.getAttribute('data-key') === want) return resolve();
    const observer = new MutationObserver(() => {
      if (view.getAttribute('data-key') === want) { observer.disconnect(); resolve(); }
    });
    observer.observe(view, {attributes: true});
  });
  return performance.now() - start;
}"""


ALL_VIEWS_JS = """async (index) => {
  // click, then wait for the gallery (the last view a cell click changes) to show the clicked perturbation
  const rect = document.querySelectorAll('.rv-view-heatmap rect.rv-cell')[index];
  const gallery = document.querySelector('.rv-view-gallery');
  const [model, , sample] = JSON.parse(gallery.getAttribute('data-key'));
  const want = JSON.stringify([model, rect.getAttribute('data-perturbation'), sample]);
  const start = performance.now();
  rect.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  return await new Promise((resolve) => {
    const done = () => { if (gallery.getAttribute('data-key') === want) { observer.disconnect(); resolve(performance.now() - start); } };
    const observer = new MutationObserver(done);
    observer.observe(gallery, {attributes: true});
    done();
    setTimeout(() => { observer.disconnect(); resolve(null); }, 10000);
  });
}"""


def browser_latency(path: Path, clicks: int, workers: int) -> dict[str, list[float]]:
    """Click → per-sample view latency (ms) in JupyterLab, per variable."""
    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from playwright.sync_api import sync_playwright
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _notebook, _run_first_cell, running_server

    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            running_server("lab", Path(tmp), _notebook(BROWSER_CELL.format(path=str(path), workers=workers))) \
            as (url, _, log), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        start = time.perf_counter()
        _run_first_cell(page)
        page.wait_for_selector(".rv-view-cell[data-key]", timeout=180_000)
        page.wait_for_selector(".rv-view-scatter circle.rv-point", timeout=180_000)
        print(f"linked explorer shown {time.perf_counter() - start:.1f} s after running the cell (first "
              f"aggregates of the lazy cube)")
        n_cells = page.locator(".rv-view-heatmap rect.rv-cell").count()
        rng = random.Random(0)
        for variable in ("correct", "cosine"):
            if variable != "correct":
                page.locator("select.rv-control-variable").select_option(label=variable)
                page.wait_for_function("v => document.querySelector('.rv-view-cell .rv-cell-title')"
                                       ".textContent.startsWith(v + ':')", arg=variable, timeout=120_000)
            page.evaluate(CLICK_JS, 1)  # warm-up: the first click of a variable reads its aggregates
            timings[variable] = [page.evaluate(CLICK_JS, rng.randrange(n_cells)) for _ in range(clicks)]
        page.wait_for_timeout(1000)
        everything = []
        for _ in range(max(5, clicks // 3)):  # one click at a time, as a reader moves on after looking
            everything.append(page.evaluate(ALL_VIEWS_JS, rng.randrange(n_cells)))
            page.wait_for_timeout(300)
        timings["all views"] = [t for t in everything if t is not None]
        browser.close()
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report_benchmark(cache: Path) -> None:
    from robustviz.panels.report import timed_report

    cube = make_cube(n_models=6, n_perturbations=19, n_methods=5, n_samples=64, n_examples=4, image_size=64, seed=0)
    path, seconds, size = timed_report(cube, cache / "demo_report" / "report.html")
    print(f"\nstatic report of a demo-sized cube (6 models × 19 perturbations × 6 severities × 5 methods × 64 "
          f"samples, 64 px): built in {seconds:.1f} s, {size / 1e6:.2f} MB (target < 10 MB) — {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "robustviz-bench"))
    parser.add_argument("--repeats", type=int, default=5, help="matplotlib panels: changes per interaction")
    parser.add_argument("--clicks", type=int, default=30, help="browser: heatmap clicks per variable")
    parser.add_argument("--workers", type=int, default=2, help="dask threads (the target is for 2 cores)")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser latency")
    parser.add_argument("--no-report", action="store_true", help="skip the report build")
    parser.add_argument("--matplotlib", action="store_true", help="also time the matplotlib panels")
    args = parser.parse_args()
    path = build_store(Path(args.cache) / "panels_cube.zarr")
    if not args.no_browser:
        timings = browser_latency(path, args.clicks, args.workers)
        print(f"\nclick on a heatmap cell → per-sample view updated, in the browser (JupyterLab, lazy zarr cube, "
              f"{args.workers} dask threads; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        linked = timings.pop("all views")
        everything = [t for values in timings.values() for t in values]
        for name, values in [*timings.items(), ("all", everything)]:
            median, p95 = statistics.median(values), percentile(values, 95)
            print(f"  {name:8s} n={len(values):3d}  median {median:6.1f} ms  p95 {p95:6.1f} ms  "
                  f"({'ok' if median < 100 and p95 < 300 else 'SLOW'}; targets 100 / 300 ms)")
        if linked:
            print(f"click → every linked view updated (the gallery last; the other views wait until the selection "
                  f"has been still for 150 ms, so clicking through cells never queues behind them), one click at a "
                  f"time: n={len(linked)} median {statistics.median(linked):.0f} ms, p95 {percentile(linked, 95):.0f} ms")
    if not args.no_report:
        report_benchmark(Path(args.cache))
    if not args.matplotlib:
        return
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        start = time.perf_counter()
        lazy = xr.open_zarr(path)
        print(f"opened lazily in {1000 * (time.perf_counter() - start):.0f} ms: "
              + ", ".join(f"{d}={n}" for d, n in lazy.sizes.items()))
        lazy_times = time_interactions(lazy, args.repeats)
        start = time.perf_counter()
        loaded = xr.open_zarr(path).load()
        print(f"(reference) loaded into memory in {time.perf_counter() - start:.1f} s")
        memory_times = time_interactions(loaded, args.repeats)
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times include "
          f"waiting for a shared CPU; CPU ms is this process's own compute)")
    print(f"\n{'interaction':30s} {'wall ms':>8s} {'max':>6s} {'CPU ms':>7s} {'in-memory wall':>15s} {'ratio':>6s}"
          f"  target (CPU)")
    worst_wall = worst_cpu = 0.0
    for name, values in lazy_times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        reference = statistics.median(v[0] for v in memory_times[name])
        worst_wall, worst_cpu = max(worst_wall, wall), max(worst_cpu, cpu)
        print(f"{name:30s} {1000 * wall:8.0f} {1000 * max(v[0] for v in values):6.0f} {1000 * cpu:7.0f} "
              f"{1000 * reference:15.0f} {wall / reference:6.2f}  {'ok' if cpu < TARGET_SECONDS else 'SLOW'}")
    print(f"\nslowest median: wall {1000 * worst_wall:.0f} ms, CPU {1000 * worst_cpu:.0f} ms; target "
          f"{1000 * TARGET_SECONDS:.0f} ms (CPU ratio {worst_cpu / TARGET_SECONDS:.2f} of target)")

if __name__ == "__main__":
    main()
