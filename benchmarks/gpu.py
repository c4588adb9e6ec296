"""GPU versus CPU throughput, in one run: the corruption suite (images/s per corruption at 224 px) and the demo
cube (images/s through the whole evaluator). Skips the GPU half, saying so, when CUDA is absent.

    python benchmarks/gpu.py [--batch 64] [--n-samples 64]
"""

from __future__ import annotations

import argparse
import time

import torch

import robustviz as rv
from robustviz.cli import IMAGENET_C, IMAGENET_C_EXTRA, demo_spec
from robustviz.rng import derive_seeds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def corruption_throughput(device: torch.device, batch: int, size: int = 224) -> dict[str, float]:
    images = rv.create("dataset", "shapes", n_samples=batch, image_size=size).images.to(device)
    seeds = derive_seeds(0, range(batch), "bench")
    rates = {}
    for name in IMAGENET_C + IMAGENET_C_EXTRA:
        if name not in rv.list_names("perturbation"):
            continue
        corruption = rv.create("perturbation", name)
        corruption(images, 3, seeds=seeds)  # warm-up (kernels, caches)
        _sync(device)
        started = time.perf_counter()
        for severity in corruption.severities:
            corruption(images, severity, seeds=seeds)
        _sync(device)
        rates[name] = batch * len(corruption.severities) / (time.perf_counter() - started)
    return rates


def demo_throughput(device: torch.device, n_samples: int) -> float:
    spec = demo_spec(n_samples).replace(device=device.type)
    started = time.perf_counter()
    ds = rv.evaluate(spec, progress=False)
    seconds = time.perf_counter() - started
    images = ds.sizes["model"] * ds.sizes["perturbation"] * ds.sizes["severity"] * ds.sizes["sample"]
    return images / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n-samples", type=int, default=64)
    args = parser.parse_args()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    else:
        print("CUDA is not available: GPU numbers skipped")
    corruption = {device.type: corruption_throughput(device, args.batch) for device in devices}
    print(f"\ncorruption suite at 224 px, batch {args.batch}, all 5 severities (images/s)")
    print(f"{'corruption':>18} " + " ".join(f"{d.type:>10}" for d in devices) + ("   speed-up" if len(devices) > 1
                                                                                  else ""))
    for name in corruption["cpu"]:
        row = [corruption[d.type][name] for d in devices]
        ratio = f"   {row[1] / row[0]:8.1f}×" if len(row) > 1 else ""
        print(f"{name:>18} " + " ".join(f"{rate:10.0f}" for rate in row) + ratio)
    demo = {device.type: demo_throughput(device, args.n_samples) for device in devices}
    print(f"\ndemo cube ({args.n_samples} samples): " + ", ".join(f"{k}: {v:.0f} images/s" for k, v in demo.items()))
    if len(devices) > 1:
        print(f"demo speed-up GPU / CPU: {demo['cuda'] / demo['cpu']:.1f}×")


if __name__ == "__main__":
    main()
