"""What each preset costs at 224 px, and how close the dry-run estimate is to a measured run.

A ResNet-18-shaped model (plain torch, random weights, no torchvision) on 224-px shapes images.

    .venv/bin/python benchmarks/estimate_224.py presets [--threads 2]   # estimate per preset (no run)
    .venv/bin/python benchmarks/estimate_224.py check [--threads 2]     # estimate, then run, print the ratio

``presets`` prints, per preset, the estimated passes and seconds per component for one image through the suite of
docs/guide/papers_settings.md (5 corruptions × 5 severities, 5 methods, 6 metrics). ``check`` runs a small spec
under ``preset: fast`` and prints estimate / measured wall time (the acceptance is within 30 %).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import torch
from torch import nn

import robustviz as rv
from robustviz.data import SHAPE_CLASSES
from robustviz.evaluate.scoping import DegenerateMetricWarning


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Shaped(nn.Module):
    """ResNet-18's layers and FLOPs (1.8 GFLOPs at 224²), random weights; ``cam_layer`` = the last stage."""

    def __init__(self, num_classes: int):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, width = [], 64
        for out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(width, out, stride), BasicBlock(out, out, 1)))
            width = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = nn.Linear(512, num_classes)
        self.cam_layer = self.layer4
        self.num_classes = num_classes

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.head(x.mean((2, 3)))


SUITE = dict(
    perturbations=["gaussian_noise", "defocus_blur", "fog", "jpeg_compression", "pixelate"],
    methods=["saliency", "integrated_gradients", "grad_cam", "smoothgrad", "rise"],
    metrics=["consistency", "deletion_auc", "insertion_auc", "max_sensitivity", {"name": "fisher_lmax", "at": "clean"},
             {"name": "iaside", "n_samples": 8}],
)


def spec(preset: str, n_samples: int, **changes) -> rv.EvaluationSpec:
    data = dict(name=f"workload-224-{preset}", models=["resnet18-shaped"], dataset={"name": "shapes",
                "image_size": 224}, n_samples=n_samples, severities=[1, 2, 3, 4, 5], batch_size=8, seed=0,
                device="cpu", n_examples=0, preset=preset, **SUITE)
    data.update(changes)
    return rv.EvaluationSpec.from_dict(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["presets", "check"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", DegenerateMetricWarning)
    model = ResNet18Shaped(len(SHAPE_CLASSES)).eval()
    models = {"resnet18-shaped": model}
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; ResNet-18-shaped, 224 px, {len(SHAPE_CLASSES)} classes")
    if args.part == "presets":
        for preset in ("fast", "paper"):
            started = time.perf_counter()
            result = rv.estimate(spec(preset, args.samples), models=models)
            took = time.perf_counter() - started
            rates = result.calibration["resnet18-shaped"]
            print(f"\n== preset: {preset} — {args.samples} images, estimate took {took:.0f} s; calibrated "
                  f"{rates['forward_image'] * 1e3:.0f} ms per forward image, "
                  f"{rates['backward_image'] * 1e3:.0f} ms per backward image; per image of the dataset:")
            table = result.table()
            for row in table.itertuples():
                print(f"  {row.kind + ': ' + row.name:<42} {row.forwards / args.samples:>12,.0f} fwd "
                      f"{row.backwards / args.samples:>9,.0f} bwd {row.seconds / args.samples:>10.1f} s "
                      f"{row.share:>6.1%}")
            print(f"  {'total':<42} {result.total_forwards / args.samples:>12,.0f} fwd "
                  f"{result.total_backwards / args.samples:>9,.0f} bwd "
                  f"{result.total_seconds / args.samples:>10.1f} s")
    else:
        small = spec("fast", args.samples, perturbations=["gaussian_noise"], severities=[3],
                     methods=["saliency", "grad_cam", "rise"],
                     metrics=["consistency", {"name": "deletion_auc", "step": 6272}, {"name": "iaside", "n_bands": 4,
                                                                                     "n_samples": 4}])
        started = time.perf_counter()
        result = rv.estimate(small, models=models)
        took = time.perf_counter() - started
        print(result)
        started = time.perf_counter()
        rv.evaluate(small, models=models, progress=False)
        measured = time.perf_counter() - started
        print(f"estimate {result.total_seconds:.1f} s (took {took:.1f} s to make), measured run {measured:.1f} s: "
              f"ratio {result.total_seconds / measured:.2f}")


if __name__ == "__main__":
    main()
