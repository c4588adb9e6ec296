"""I-ASIDE cost: our exact Shapley (all 2^M coalitions) against the bare 2^M batched forward passes it needs.

The reference time is the model alone: 2^M × N images, already built, through the model in the same batch size.
Ours adds the FFT filtering of every coalition, log-softmax and the Shapley sums. Target ratio: ≤ 1.5.

    .venv/bin/python benchmarks/iaside.py [--model smallcnn-standard] [--samples 32] [--bands 8] [--size 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import robustviz
from robustviz.metrics.spectral import coalition_values, shapley_values


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smallcnn-standard")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--bands", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = robustviz.create("model", args.model, pretrained=False)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.samples, 3, args.size, args.size, generator=generator)
    labels = torch.randint(0, model.num_classes, (args.samples,), generator=generator)
    n_coalitions = 2 ** args.bands

    def ours() -> np.ndarray:
        return shapley_values(coalition_values(model, images, labels, args.bands, batch_size=args.batch_size),
                              args.bands)

    per_batch = max(1, args.batch_size // args.samples)
    prepared = images.repeat(per_batch, 1, 1, 1)  # one batch of ready-made inputs, reused for every chunk

    @torch.no_grad()
    def reference() -> None:
        for start in range(0, n_coalitions, per_batch):
            count = min(per_batch, n_coalitions - start)
            model(prepared[: count * args.samples])

    ours()  # warm-up
    reference()
    ours_time = best_of(args.repeats, ours)
    reference_time = best_of(args.repeats, reference)
    print(f"model {args.model}, {args.samples} samples of {args.size}×{args.size}, M = {args.bands} bands "
          f"({n_coalitions} coalitions, {n_coalitions * args.samples} images), torch threads "
          f"{torch.get_num_threads()}")
    print(f"exact Shapley (ours):                {ours_time:8.3f} s")
    print(f"2^M batched forward passes (bare):   {reference_time:8.3f} s")
    print(f"ratio ours / forward passes:         {ours_time / reference_time:8.3f}  (target ≤ 1.5)")


if __name__ == "__main__":
    main()
