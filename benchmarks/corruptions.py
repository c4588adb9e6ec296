"""Speed of robustviz's ImageNet-C corruptions against the reference ``imagecorruptions`` 1.1.2 (CPU).

Both run on the same 224 px batch of scikit-image photos. The reference corrupts one uint8 image at a time (that
is its API); ours corrupts the whole batch at once. Prints per corruption: reference seconds, ours, and the
speed-up (reference / ours); then the totals. Targets: ≥ 10× overall, ≥ 50× for glass_blur.

    python benchmarks/corruptions.py [--images 16] [--severities 3] [--repeats 1] [--device cpu]

Needs ``imagecorruptions==1.1.2`` and opencv (the test-only references); the shims live in
tests/perturbations/_reference.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "perturbations"))
from _reference import load_reference_unchecked, reference_float, sample_images  # noqa: E402

import robustviz  # noqa: E402
from robustviz.perturbations.corruptions import ALL_CORRUPTIONS  # noqa: E402
from robustviz.rng import derive_seeds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--severities", default="3", help="comma-separated, e.g. 1,2,3,4,5")
    parser.add_argument("--repeats", type=int, default=1, help="timing repeats for ours (best is kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated corruption names")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # benchmark setting only; the library never sets it
    reference = load_reference_unchecked()
    photos = sample_images(224, args.images)
    while len(photos) < args.images:  # fewer photos ship offline: add mirrored copies
        photos = np.concatenate([photos, photos[:, :, ::-1]])[: args.images]
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float().div(255).to(args.device)
    severities = [int(s) for s in args.severities.split(",")]
    names = args.only.split(",") if args.only else ALL_CORRUPTIONS
    print(f"{len(photos)} images of 224 px, severities {severities}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}")
    print(f"{'corruption':<20}{'reference s':>13}{'ours s':>10}{'speed-up':>10}")
    total_reference = total_ours = 0.0
    for name in names:
        perturbation = robustviz.create("perturbation", name)
        perturbation(images[:1], severities[0], seeds=derive_seeds(0, [0], name))  # warm-up (kernels, caches)
        ours = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for severity in severities:
                perturbation(images, severity, seeds=derive_seeds(0, range(len(photos)), name, severity))
            if args.device != "cpu":
                torch.cuda.synchronize()
            ours = min(ours, time.perf_counter() - start)
        start = time.perf_counter()
        for severity in severities:
            for index, photo in enumerate(photos):
                reference_float(reference, name, photo, severity, seed=index)
        ref = time.perf_counter() - start
        total_reference, total_ours = total_reference + ref, total_ours + ours
        print(f"{name:<20}{ref:>13.3f}{ours:>10.3f}{ref / ours:>9.1f}×", flush=True)
    print(f"{'overall':<20}{total_reference:>13.3f}{total_ours:>10.3f}{total_reference / total_ours:>9.1f}×")


if __name__ == "__main__":
    main()
