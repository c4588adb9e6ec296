"""Scale-out: wall time of the same spec on a LocalCluster with 1 and with 2 worker processes, and the scheduler's
overhead per task (round trip of an empty task).

On a 2-core machine the 2-worker run can at best halve the time; expect a ratio between 0.5 and 1 (worker start-up,
per-worker model loading and clean passes are paid once per worker). Each worker runs one torch thread, so a
1-worker cluster is compared with a single process limited to 1 torch thread as well.

    python benchmarks/scaleout.py [--n-samples 256]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import robustviz as rv
from robustviz.evaluate.distributed import make_client


def noop(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--tasks", type=int, default=400, help="empty tasks for the overhead measurement")
    args = parser.parse_args()
    spec = rv.EvaluationSpec(
        models=["smallcnn-standard", "tinyresnet-standard"], dataset={"name": "shapes", "image_size": 64},
        n_samples=args.n_samples, sample_chunk=args.n_samples // 4,
        perturbations=["gaussian_noise", "defocus_blur", "jpeg_compression", "contrast"],
        methods=["saliency", "grad_cam"], metrics=["cosine", "consistency"], batch_size=64, device="cpu",
        n_examples=0)
    work = Path(tempfile.mkdtemp(prefix="rv-scaleout-"))
    times = {}
    try:
        threads = torch.get_num_threads()
        for label, count in ((f"single process ({threads} torch threads)", threads),
                             ("single process (1 torch thread)", 1)):
            torch.set_num_threads(count)
            started = time.perf_counter()
            rv.evaluate(spec, store=work / f"single{count}.zarr", progress=False)
            times[label] = time.perf_counter() - started
        torch.set_num_threads(threads)
        for workers in (1, 2):
            client = make_client("local", workers=workers)
            try:
                client.submit(noop, 0).result()  # workers up
                started = time.perf_counter()
                rv.evaluate(spec, store=work / f"w{workers}.zarr", client=client, progress=False)
                times[f"{workers} worker{'s' if workers > 1 else ''}"] = time.perf_counter() - started
                if workers == 2:
                    started = time.perf_counter()
                    futures = client.map(noop, range(args.tasks), pure=False)
                    client.gather(futures)
                    overhead = (time.perf_counter() - started) / args.tasks
            finally:
                client.close()
                client.cluster.close()
        regions = len(spec.models) * len(spec.perturbations) * 4
        print(f"{regions} regions ({spec.n_samples} samples × {len(spec.perturbations)} perturbations × "
              f"{len(spec.models)} models, methods {', '.join(c.name for c in spec.methods)})")
        for name, seconds in times.items():
            print(f"  {name:>36}: {seconds:7.2f} s")
        print(f"ratio 2 workers / 1 worker: {times['2 workers'] / times['1 worker']:.2f}")
        print(f"ratio 1 worker / single process with its 1 torch thread: "
              f"{times['1 worker'] / times['single process (1 torch thread)']:.2f} (scheduling + store overhead)")
        print(f"ratio 2 workers / single process with {threads} torch threads: "
              f"{times['2 workers'] / times[f'single process ({threads} torch threads)']:.2f}")
        print(f"scheduler overhead per task: {overhead * 1e3:.2f} ms ({args.tasks} empty tasks, 2 workers)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
