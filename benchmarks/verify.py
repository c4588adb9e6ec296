"""Cost of integrity checks: `robustviz verify` on the demo cube versus computing that cube.

For each thread setting (all libraries on one thread, then on all threads) the demo spec (`robustviz demo`: the
tiny zoo on 64 px shapes, every registered ImageNet-C corruption, the demo methods and metrics) is evaluated into a
fresh store, then the store is verified (every written region re-read and hashed); both are timed in this process
on the same store. Hashing at write time is inside the evaluation time. Target: verify / evaluate < 0.1.

    python benchmarks/verify.py [--n-samples 8] [--quick] [--perturbations 19] [--threads 1,all]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import zarr

import robustviz as rv
from robustviz.cli import demo_spec
from robustviz.cube.integrity import verify_store


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    zarr.config.set({"async.concurrency": max(threads, 1) * 4 if threads > 1 else 1,
                     "threading.max_workers": threads})


def measure(spec: rv.EvaluationSpec, store: Path) -> tuple[float, float, str]:
    started = time.perf_counter()
    rv.evaluate(spec, store=store, progress=False, overwrite=True)
    evaluate_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_store(store)
    verify_s = time.perf_counter() - started
    assert report.ok, report.lines()
    return evaluate_s, verify_s, report.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=8, help="samples per cell (the demo's default: 8)")
    parser.add_argument("--quick", action="store_true", help="accuracy only (the demo's --quick)")
    parser.add_argument("--perturbations", type=int, default=None, help="only the first N perturbations")
    parser.add_argument("--threads", default="1,all", help="thread settings to measure (default: 1,all)")
    args = parser.parse_args()
    spec = demo_spec(args.n_samples, full=not args.quick).replace(device="cpu")
    if args.perturbations:
        spec = spec.replace(perturbations=list(spec.perturbations[: args.perturbations]))
    print(f"demo cube: {len(spec.models)} models × {len(spec.perturbations)} perturbations × "
          f"{len(spec.severities)} severities × {len(spec.methods)} methods × {spec.n_samples} samples")
    root = Path(tempfile.mkdtemp(prefix="robustviz-verify-"))
    try:
        settings = [os.cpu_count() or 1 if t == "all" else int(t) for t in args.threads.split(",")]
        for threads in settings:
            set_threads(threads)
            evaluate_s, verify_s, summary = measure(spec, root / f"cube-{threads}.zarr")
            size = sum(f.stat().st_size for f in (root / f"cube-{threads}.zarr").rglob("*") if f.is_file())
            print(f"threads={threads}: evaluate {evaluate_s:.2f} s, verify {verify_s:.3f} s, "
                  f"verify/evaluate = {verify_s / evaluate_s:.4f} (target < 0.1); store {size / 1e6:.1f} MB; "
                  f"{summary.split(': ', 1)[1]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
