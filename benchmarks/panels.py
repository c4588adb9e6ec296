"""Redraw latency of the notebook panels on a large zarr-backed cube.

Builds (once; reused from the cache dir) a synthetic cube of 10 models × 25 perturbations × 6 severities (0–5) ×
10 methods × 1000 samples with ``robustviz.testing.cubes.make_cube``, writes it chunked with dask to zarr, opens it
lazily with ``xr.open_zarr`` and times, for each panel interaction, the time from setting a widget's value to the
new PNG being in the image widget (the panels redraw synchronously in the value observer). Each interaction is
repeated with different values (so caches are not what is measured), and the same interactions are timed on the
cube loaded into memory: ``ratio`` = lazy zarr / in memory. Target: < 300 ms per interaction on 2 cores.

    python benchmarks/panels.py [--cache DIR] [--repeats N] [--workers 2]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "robustviz-bench"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="dask threads (the target is for 2 cores)")
    args = parser.parse_args()
    path = build_store(Path(args.cache) / "panels_cube.zarr")
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
