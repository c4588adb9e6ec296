"""Mean SSIM to the clean image per severity for every corruption, published vs monotone severity scale.

Reproduces the numbers behind ``robustviz.perturbations._corruption_base.MONOTONE`` and the table in
docs/perturbations.md ("Severity scales: published vs monotone"). The calibration photos are scikit-image samples
*not* used by the tests (rocket, immunohistochemistry, hubble_deep_field, retina, colorwheel, camera, coins, brick,
gravel), centre-cropped and resized (bicubic) to each size; the random draws are the same at every severity
(seeds ``derive_seeds(11, ids, name)``) so the step isolates the constants. Prints, per corruption and size, the
five mean SSIMs and the smallest drop between consecutive levels (negative: SSIM rises, an inversion).

    python benchmarks/severity_calibration.py [--sizes 32,64,224] [--scales published,monotone] [--only snow,frost]
                                              [--images calibration|tests|shapes]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from skimage.metrics import structural_similarity

import robustviz
from robustviz.perturbations.corruptions import ALL_CORRUPTIONS
from robustviz.rng import derive_seeds

CALIBRATION_PHOTOS = ("rocket", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel", "camera",
                      "coins", "brick", "gravel")
TEST_PHOTOS = ("astronaut", "coffee", "chelsea")  # what tests/perturbations/test_corruptions.py uses


def photos(names: tuple[str, ...], size: int) -> torch.Tensor:
    """scikit-image photos, centre-cropped square, resized bicubic to ``size``: N×3×size×size in [0, 1]."""
    from PIL import Image
    from skimage import data

    out = []
    for name in names:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        crop = Image.fromarray(np.ascontiguousarray(image[top:top + side, left:left + side, :3]))
        out.append(np.asarray(crop.resize((size, size), Image.BICUBIC)))
    return torch.as_tensor(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def mean_ssim_per_level(name: str, images: torch.Tensor, severity_scale: str = "published") -> list[float]:
    """Mean SSIM (scikit-image, data range 1) to the clean images at severities 1..5."""
    perturbation = robustviz.create("perturbation", name, severity_scale=severity_scale)
    seeds = derive_seeds(11, range(len(images)), name)
    clean = images.permute(0, 2, 3, 1).numpy()
    scores = []
    for severity in range(1, 6):
        out = perturbation(images, severity, seeds=seeds).permute(0, 2, 3, 1).numpy()
        scores.append(float(np.mean([structural_similarity(a, b, channel_axis=-1, data_range=1.0)
                                     for a, b in zip(clean, out)])))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,224")
    parser.add_argument("--scales", default="published,monotone")
    parser.add_argument("--only", default="", help="comma-separated corruption names")
    parser.add_argument("--images", default="calibration", choices=("calibration", "tests", "shapes"))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ALL_CORRUPTIONS
    for size in (int(s) for s in args.sizes.split(",")):
        if args.images == "shapes":
            from robustviz.data.shapes import make_shapes

            images = make_shapes(6, size).images
        else:
            images = photos(CALIBRATION_PHOTOS if args.images == "calibration" else TEST_PHOTOS, size)
        for scale in args.scales.split(","):
            print(f"\n{size} px, severity_scale={scale!r}, {len(images)} {args.images} images")
            print(f"{'corruption':<20}{'SSIM at severity 1 … 5':<42}{'min drop':>9}")
            worst = np.inf
            for name in names:
                scores = mean_ssim_per_level(name, images, scale)
                drop = float(-np.diff(scores).max())
                worst = min(worst, drop)
                flag = "  <- not monotone" if drop <= 0 else ("  <- < 0.01" if drop < 0.01 else "")
                print(f"{name:<20}{' '.join(f'{s:.4f}' for s in scores):<42}{drop:>9.4f}{flag}")
            print(f"smallest drop: {worst:.4f}")


if __name__ == "__main__":
    main()
