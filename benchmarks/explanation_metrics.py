"""Time robustviz's max-sensitivity and deletion/insertion against Quantus on the same batch; print ours / Quantus.

Run: ``python benchmarks/explanation_metrics.py [--device cpu|cuda] [--size 32] [--n-images 16]``. Quantus must be
installed (``pip install quantus``; it is a dev/test-only reference). Quantus has no insertion/deletion AUC: its
``PixelFlipping`` (features set to black in order of decreasing attribution, ``features_in_step`` at a time) is the
deletion curve, so it is timed against our ``deletion_auc`` and ``insertion_auc`` with the same step.

Both libraries must do the same model work — ``n × N`` attributions for max-sensitivity, ``N × (steps + 1)``
forward passes for the curves — so each row also prints that work alone ("floor": one batched call of the method,
or plain forwards in blocks of 64) and both times as multiples of it. The floor bounds any speed-up:
``Quantus/floor`` is the most an implementation with zero overhead could gain.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from captum.attr import Saliency

import robustviz
from robustviz.metrics.base import MetricContext


def timed(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--n-samples", type=int, default=10, help="sensitivity draws")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import quantus

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = robustviz.create("model", "smallcnn-standard", pretrained=False).to(device).eval()
    images = torch.rand(args.n_images, 3, args.size, args.size, device=device)
    labels = model(images).argmax(dim=1).detach()
    seeds = torch.arange(args.n_images, dtype=torch.int64)
    method = robustviz.create("method", "saliency", abs=False)
    maps = method.attribute(model, images, labels, seeds=seeds)
    context = MetricContext(model=model, method=method, images=images, labels=labels, seeds=seeds,
                            attributions=maps, clean_logits=model(images).detach())

    def quantus_explain(model, inputs, targets, **kwargs):
        inputs = torch.as_tensor(inputs, dtype=torch.float32, device=device).requires_grad_(True)
        grads = Saliency(model).attribute(inputs, target=torch.as_tensor(targets, device=device), abs=False)
        return grads.sum(dim=1, keepdim=True).detach().cpu().numpy()

    x_np, y_np, a_np = images.cpu().numpy(), labels.cpu().numpy(), maps.cpu().numpy()
    rows = []

    ours_metric = robustviz.create("metric", "max_sensitivity_quantus", n_samples=args.n_samples, batch_size=256)
    quantus_metric = quantus.MaxSensitivity(nr_samples=args.n_samples, lower_bound=0.2, disable_warnings=True,
                                            display_progressbar=False)
    ours = timed(lambda: ours_metric(context), args.repeat)
    theirs = timed(lambda: quantus_metric(model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np,
                                          explain_func=quantus_explain, device=str(device),
                                          batch_size=args.n_images), args.repeat)
    noisy = (images.unsqueeze(1) + 0.2 * (2 * torch.rand(args.n_images, args.n_samples, *images.shape[1:],
                                                         device=device) - 1)).flatten(0, 1)
    noisy_targets = labels.repeat_interleave(args.n_samples)
    noisy_seeds = seeds.repeat_interleave(args.n_samples)
    floor = timed(lambda: method.explain(model, noisy, noisy_targets, seeds=noisy_seeds), args.repeat)
    rows.append((f"max-sensitivity (n={args.n_samples})", ours, theirs, floor))

    pixels = args.size * args.size
    step = int(np.ceil(pixels / 224))
    while pixels % step:  # Quantus needs features_in_step to divide H·W
        step -= 1
    pixel_flipping = quantus.PixelFlipping(features_in_step=step, perturb_baseline="black", normalise=False,
                                           disable_warnings=True, display_progressbar=False,
                                           return_auc_per_sample=False)  # its AUC uses np.trapz (gone in numpy 2)
    theirs = timed(lambda: pixel_flipping(model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np, device=str(device),
                                          softmax=True, batch_size=args.n_images), args.repeat)
    n_forward = args.n_images * (-(-pixels // step) + 1)
    block = images[torch.arange(64, device=device) % args.n_images]

    def forwards():
        with torch.no_grad():
            for _ in range(-(-n_forward // 64)):
                model(block)

    floor = timed(forwards, args.repeat)
    for name in ("deletion_auc", "insertion_auc"):
        metric = robustviz.create("metric", name, step=step)
        ours = timed(lambda: metric(context), args.repeat)
        rows.append((f"{name} vs PixelFlipping (step={step})", ours, theirs, floor))

    print(f"device={device} images={args.n_images}×3×{args.size}×{args.size} model=smallcnn-standard "
          f"method=saliency; best of {args.repeat}")
    print(f"{'metric':44s} {'ours [s]':>10s} {'Quantus [s]':>12s} {'ours/Quantus':>13s} {'speed-up':>9s} "
          f"{'floor [s]':>10s} {'ours/floor':>11s} {'Quantus/floor':>14s}")
    for label, ours, theirs, floor in rows:
        print(f"{label:44s} {ours:10.4f} {theirs:12.4f} {ours / theirs:13.4f} {theirs / ours:8.1f}× "
              f"{floor:10.4f} {ours / floor:11.2f} {theirs / floor:14.2f}")


if __name__ == "__main__":
    main()
