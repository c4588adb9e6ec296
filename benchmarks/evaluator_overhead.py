"""Evaluator overhead: an accuracy-only cube versus bare batched forward passes doing the same work by hand.

Both sides create the same models, draw the same per-sample seeds, apply the same perturbations at every severity
and run the same batched forward passes; the evaluator additionally keeps its books (softmax, per-sample variables,
cube assembly, and — in the store variant — region writes to zarr with the done mask).
Target: evaluator / bare ≤ 1.2.

    python benchmarks/evaluator_overhead.py [--n-samples 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import robustviz as rv
from robustviz.rng import derive_seeds


def bare(spec: rv.EvaluationSpec, data: rv.ImageSet) -> float:
    """The same forward passes written by hand (no cube)."""
    started = time.perf_counter()
    for component in spec.models:
        model = rv.create("model", component.name, **component.kwargs).eval()
        with torch.no_grad():
            for part in range(0, spec.n_samples, spec.batch_size):
                model(data.images[part:part + spec.batch_size])
            for perturbation_component in spec.perturbations:
                perturbation = rv.create("perturbation", perturbation_component.name)
                for severity in spec.severities:
                    seeds = derive_seeds(spec.seed, data.sample_ids, "perturbation", perturbation_component.label,
                                         severity)
                    for part in range(0, spec.n_samples, spec.batch_size):
                        images = perturbation(data.images[part:part + spec.batch_size], severity,
                                              seeds=seeds[part:part + spec.batch_size])
                        model(images).softmax(1)
    return time.perf_counter() - started


def timed_evaluate(spec: rv.EvaluationSpec, data: rv.ImageSet, store: Path | None) -> float:
    started = time.perf_counter()
    rv.evaluate(spec, store=store, progress=False, overwrite=True, data=data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = rv.EvaluationSpec(
        models=["smallcnn-standard", "tinyresnet-standard"], dataset={"name": "shapes", "image_size": 64},
        n_samples=args.n_samples, perturbations=["gaussian_noise", "brightness", "contrast"],
        batch_size=args.batch_size, n_examples=0, device="cpu", sample_chunk=args.n_samples // 2)
    work = Path(tempfile.mkdtemp(prefix="rv-bench-"))
    try:
        # the same images for both sides, generated outside the timings
        data = rv.create("dataset", "shapes", n_samples=spec.n_samples, seed=spec.seed, **spec.dataset.kwargs)
        bare(spec, data)  # warm-up: weights, kernels
        results = {"bare": [], "in-memory": [], "zarr store": []}
        for repeat in range(args.repeats):
            results["bare"].append(bare(spec, data))
            results["in-memory"].append(timed_evaluate(spec, data, None))
            results["zarr store"].append(timed_evaluate(spec, data, work / f"cube{repeat}.zarr"))
        best = {name: min(times) for name, times in results.items()}
        n_images = len(spec.models) * spec.n_samples * (1 + len(spec.perturbations) * len(spec.severities))
        print(f"{n_images} images through {len(spec.models)} models, batch {spec.batch_size}, "
              f"{torch.get_num_threads()} threads; best of {args.repeats}")
        for name, seconds in best.items():
            print(f"  {name:>11}: {seconds:7.3f} s  ({n_images / seconds:8.0f} images/s)")
        for name in ("in-memory", "zarr store"):
            print(f"ratio evaluator ({name}) / bare forward passes: {best[name] / best['bare']:.3f}  (target ≤ 1.2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
