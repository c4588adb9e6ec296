"""Speed of robustviz's ImageNet-C corruptions against the reference ``imagecorruptions`` 1.1.2 (CPU).

Both run on the same 224 px batch of scikit-image photos. The reference corrupts one uint8 image at a time (that
is its API); ours corrupts the whole batch at once. Prints per corruption: reference seconds, ours, and the
speed-up (reference / ours); then the totals. Targets: ≥ 10× overall, ≥ 50× for glass_blur, with every library
on one thread.

By default the script runs itself twice in subprocesses: once with torch, numpy/BLAS and OpenCV each on ONE thread
(``OMP_NUM_THREADS=1`` etc. set before any import, ``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``) — the
fair comparison, and the one that holds on a busy machine, where torch's thread pool and numpy's single thread do
not compete on equal terms — and once with all threads. ``--threads 1`` or ``--threads all`` runs one of them.

    python benchmarks/corruptions.py [--images 16] [--severities 3] [--repeats 1] [--device cpu] [--threads both]

Needs ``imagecorruptions==1.1.2`` and opencv (the test-only references); the shims live in
tests/perturbations/_reference.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
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


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--severities", default="3", help="comma-separated, e.g. 1,2,3,4,5")
    parser.add_argument("--repeats", type=int, default=1, help="timing repeats for ours (best is kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated corruption names")
    parser.add_argument("--threads", default="both", help="'1' (every library on one thread), 'all', or 'both' "
                                                          "(two subprocesses, default)")
    args = parser.parse_args()

    if args.threads == "both":
        argv = [a for a in sys.argv[1:] if not a.startswith("--threads")]
        for threads in ("1", "all"):
            env = dict(os.environ, **({name: "1" for name in THREAD_VARS} if threads == "1" else {}))
            print(f"=== {'every library on one thread' if threads == '1' else 'all threads'} ===", flush=True)
            subprocess.run([sys.executable, __file__, *argv, "--threads", threads], env=env, check=True)
        return
    if args.threads == "1":
        torch.set_num_threads(1)  # benchmark setting only; the library never sets it
        try:
            import cv2

            cv2.setNumThreads(1)
        except ImportError:
            pass
    reference = load_reference_unchecked()
    photos = sample_images(224, args.images)
    while len(photos) < args.images:  # fewer photos ship offline: add mirrored copies
        photos = np.concatenate([photos, photos[:, :, ::-1]])[: args.images]
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float().div(255).to(args.device)
    severities = [int(s) for s in args.severities.split(",")]
    names = args.only.split(",") if args.only else ALL_CORRUPTIONS
    print(f"{len(photos)} images of 224 px, severities {severities}, torch threads {torch.get_num_threads()}, "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')} OMP/BLAS threads, device {args.device}")
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
