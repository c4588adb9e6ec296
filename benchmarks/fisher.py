"""λmax of the input Fisher information: model passes, time and accuracy of each method against the exact value.

The reference algorithm is the one of the seed paper's code: 100 Rayleigh-quotient (power) iterations, each one JVP
and one VJP — 1 + 2·100 = 201 model passes (202 as run here: our double-backward JVP spends one extra backward pass
building u ↦ Jᵀu). Ours: the exact K-backward method (1 + K passes), Lanczos (exact after
≤ K iterations because rank F ≤ K − 1) and power iteration with a residual stopping rule.

    .venv/bin/python benchmarks/fisher.py [--model smallcnn-standard] [--samples 16] [--size 32]
"""

from __future__ import annotations

import argparse
import time

import torch

import robustviz
from robustviz.metrics.fisher import fisher_lmax, lanczos, power_iteration
from robustviz.rng import derive_seeds

REFERENCE_ITERATIONS = 100


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smallcnn-standard")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()

    model = robustviz.create("model", args.model, pretrained=False)
    images = torch.rand(args.samples, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    seeds = derive_seeds(0, range(args.samples), "benchmark")
    fisher_lmax(model, images[:1], mode="exact")  # warm-up

    exact, exact_time = timed(lambda: fisher_lmax(model, images, mode="exact"))
    rows = [("exact (1 forward + K backward)", exact, exact_time)]
    reference, reference_time = timed(lambda: power_iteration(model, images, seeds=seeds, tol=0.0,
                                                              max_iter=REFERENCE_ITERATIONS))
    rows.append((f"reference: {REFERENCE_ITERATIONS} Rayleigh-quotient iterations", reference, reference_time))
    for label, solver in (("ours: Lanczos, tol 1e-3", lanczos), ("ours: power iteration, tol 1e-3", power_iteration)):
        result, seconds = timed(lambda solver=solver: solver(model, images, seeds=seeds, tol=1e-3))
        rows.append((label, result, seconds))

    print(f"model {args.model} (K = {model.num_classes}), {args.samples} samples of {args.size}×{args.size}")
    print(f"{'method':48s} {'passes':>7s} {'time s':>8s} {'max rel. error':>15s}")
    for label, result, seconds in rows:
        error = ((result.values - exact.values).abs() / exact.values).max().item()
        print(f"{label:48s} {result.model_passes:7d} {seconds:8.3f} {error:15.2e}")
    for label, result, seconds in rows[2:]:
        print(f"passes {label} / reference: {result.model_passes} / {reference.model_passes} = "
              f"{result.model_passes / reference.model_passes:.3f}; time ratio {seconds / reference_time:.3f}")
    print(f"time exact / reference: {exact_time / reference_time:.3f}")


if __name__ == "__main__":
    main()
