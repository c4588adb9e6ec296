"""Acceptance 1: parity with the reference implementation ``imagecorruptions`` 1.1.2 on scikit-image photos at
224 px (3 images × 5 severities).

- deterministic corruptions: PSNR(ours, reference) ≥ 35 dB at every severity;
- random ones: mean SSIM to the clean image and mean absolute change within 5 % of the reference's, averaged
  over images and seeds; where one random draw decides much of the outcome (fog's fractal, motion blur's angle)
  the deterministic part is also compared at ≥ 35 dB with the random input shared;
- frost uses procedural textures (the reference uses photographs), compared statistically, stratified over the
  five textures;
- spatter: its OpenCV pipeline is compared at ≥ 35 dB with the reference fed the same random field (its single
  draws vary too much for a 5 % statistical test of the sparse severity-1 droplets).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import robustviz
from robustviz.perturbations import _ops
from robustviz.perturbations._sampling import plasma_fractal
from robustviz.rng import derive_seeds

from ._reference import load_reference, reference_float, sample_images

DETERMINISTIC = ("gaussian_blur", "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression", "saturate")


@pytest.fixture(scope="module")
def reference():
    return load_reference()


@pytest.fixture(scope="module")
def photos():
    return sample_images(224, 3)


def _ours(name: str, photos: np.ndarray, severity: int, run_seed: int = 0) -> np.ndarray:
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float() / 255.0
    seeds = derive_seeds(run_seed, range(len(photos)), name, severity)
    return robustviz.create("perturbation", name)(images, severity, seeds=seeds).permute(0, 2, 3, 1).double().numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-20))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_psnr_at_least_35_db(name, reference, photos):
    for severity in range(1, 6):
        ours = _ours(name, photos, severity)
        for index, photo in enumerate(photos):
            expected = reference_float(reference, name, photo, severity, seed=index)
            assert _psnr(ours[index], expected) >= 35.0, (name, severity, index)


def _statistics(name, reference, photos, severity, draws):
    clean = photos / 255.0
    ours_ssim, ref_ssim, ours_change, ref_change = [], [], [], []
    for draw in range(draws):
        ours = _ours(name, photos, severity, run_seed=draw)
        for index, photo in enumerate(photos):
            expected = reference_float(reference, name, photo, severity, seed=1000 * draw + index)
            ours_ssim.append(structural_similarity(clean[index], ours[index], channel_axis=-1, data_range=1.0))
            ref_ssim.append(structural_similarity(clean[index], expected, channel_axis=-1, data_range=1.0))
            ours_change.append(np.abs(ours[index] - clean[index]).mean())
            ref_change.append(np.abs(expected - clean[index]).mean())
    return [float(np.mean(v)) for v in (ours_ssim, ref_ssim, ours_change, ref_change)]


STOCHASTIC = [("gaussian_noise", 1), ("shot_noise", 1), ("impulse_noise", 1), ("speckle_noise", 1),
              ("elastic_transform", 2), ("motion_blur", 3),
              pytest.param("glass_blur", 1, marks=pytest.mark.slow),
              pytest.param("snow", 4, marks=pytest.mark.slow)]


@pytest.mark.parametrize(("name", "draws"), STOCHASTIC)
def test_random_corruptions_match_reference_statistics(name, draws, reference, photos):
    for severity in range(1, 6):
        ours_ssim, ref_ssim, ours_change, ref_change = _statistics(name, reference, photos, severity, draws)
        assert ours_ssim == pytest.approx(ref_ssim, rel=0.05), (name, severity, "SSIM", ours_ssim, ref_ssim)
        assert ours_change == pytest.approx(ref_change, rel=0.05), (name, severity, "change", ours_change, ref_change)


@pytest.mark.slow
def test_frost_procedural_texture_statistics(reference, photos):
    """Frost, stratified over the five textures: each image meets every texture once on both sides (the texture
    choice dominates the spread of single draws), so 5 draws per image compare the means within 5 %."""
    from robustviz.perturbations._textures import frost_palette_index

    def our_seed(target: int) -> int:
        return next(s for s in range(10_000) if int(frost_palette_index(torch.tensor([s]))[0]) == target)

    def numpy_seed(target: int) -> int:
        for seed in range(10_000):
            np.random.seed(seed)
            if np.random.randint(5) == target:
                return seed
        raise AssertionError

    frost = robustviz.create("perturbation", "frost")
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float() / 255.0
    clean = photos / 255.0
    for severity in range(1, 6):
        ours_ssim, ref_ssim, ours_change, ref_change = [], [], [], []
        for index, photo in enumerate(photos):
            for texture in range(5):
                seeds = torch.tensor([our_seed(texture)])
                ours = frost(images[index:index + 1], severity, seeds=seeds)[0].permute(1, 2, 0).double().numpy()
                expected = reference_float(reference, "frost", photo, severity, seed=numpy_seed(texture))
                ours_ssim.append(structural_similarity(clean[index], ours, channel_axis=-1, data_range=1.0))
                ref_ssim.append(structural_similarity(clean[index], expected, channel_axis=-1, data_range=1.0))
                ours_change.append(np.abs(ours - clean[index]).mean())
                ref_change.append(np.abs(expected - clean[index]).mean())
        assert np.mean(ours_ssim) == pytest.approx(np.mean(ref_ssim), rel=0.05), (severity, "SSIM")
        assert np.mean(ours_change) == pytest.approx(np.mean(ref_change), rel=0.05), (severity, "change")


def test_spatter_matches_reference_given_the_same_noise_field(reference, photos, monkeypatch):
    """Spatter's Canny / distance / equalisation / emboss pipeline against OpenCV's, with the reference fed the
    same Gaussian field: ≥ 35 dB at every severity (mean over images)."""
    from robustviz.perturbations._sampling import normal_like

    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float() / 255.0
    spatter = robustviz.create("perturbation", "spatter")
    for severity in range(1, 6):
        seeds = derive_seeds(0, range(3), "spatter", severity)
        ours = spatter(images, severity, seeds=seeds).permute(0, 2, 3, 1).double().numpy()
        fields = normal_like(seeds, images[:, :1], "spatter")[:, 0].double().numpy()
        scores = []
        for index, photo in enumerate(photos):
            monkeypatch.setattr(reference.corruptions.np.random, "normal",
                                lambda size=None, loc=0.0, scale=1.0, f=fields[index]: loc + scale * f)
            expected = reference_float(reference, "spatter", photo, severity, seed=0)
            scores.append(_psnr(ours[index], expected))
        assert np.mean(scores) >= 35.0, (severity, scores)


def test_motion_blur_kernel_matches_reference_for_given_angles(reference, photos):
    motion = reference.corruptions._motion_blur
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float()
    for radius, sigma in ((10, 3), (15, 8), (20, 15)):
        angles = torch.tensor([-45.0, 12.5, 44.0])
        ours = _ops.motion_blur(images, radius, sigma, angles).permute(0, 2, 3, 1).numpy()
        for index, photo in enumerate(photos):
            expected = motion(photo, radius=radius, sigma=sigma, angle=float(angles[index]))
            assert _psnr(ours[index] / 255.0, expected / 255.0) >= 35.0


def test_fog_matches_reference_given_the_same_fractal(reference, photos, monkeypatch):
    images = torch.as_tensor(photos).permute(0, 3, 1, 2).float() / 255.0
    for severity in range(1, 6):
        seeds = derive_seeds(0, range(3), "fog", severity)
        ours = robustviz.create("perturbation", "fog")(images, severity, seeds=seeds).permute(0, 2, 3, 1).numpy()
        decay = robustviz.perturbations.corruptions.severity_constants("fog", severity, 224, 224)["decay"]
        fractals = plasma_fractal(seeds, 256, decay, "cpu").double().numpy()
        for index, photo in enumerate(photos):
            monkeypatch.setattr(reference.corruptions, "plasma_fractal",
                                lambda mapsize, wibbledecay, f=fractals[index]: f)
            expected = reference_float(reference, "fog", photo, severity, seed=0)
            assert _psnr(ours[index], expected) >= 35.0


def test_plasma_fractal_distribution_matches_reference(reference):
    """Per-map mean, spread and roughness of 120 fractals (64 px) within 5 % of the reference's."""
    np.random.seed(0)
    for decay in (3.0, 1.4):
        ref = np.stack([reference.corruptions.plasma_fractal(64, decay) for _ in range(120)])
        ours = plasma_fractal(derive_seeds(0, range(120), "fractal"), 64, decay, "cpu").double().numpy()

        def summary(maps):
            return [maps.mean(), maps.std(axis=(1, 2)).mean(), np.abs(np.diff(maps, axis=1)).mean()]

        for got, expected in zip(summary(ours), summary(ref)):
            assert got == pytest.approx(expected, rel=0.05)


@pytest.mark.slow
def test_reference_has_the_same_severity_inversions(reference, photos):
    """The 224 px steps where SSIM does not fall (KNOWN_INVERSIONS) are the reference's too: its SSIM at s+1 is
    within 2 % of, or above, its SSIM at s."""
    from .test_corruptions import KNOWN_INVERSIONS

    clean = photos / 255.0
    for name, steps in KNOWN_INVERSIONS[224].items():
        if name == "frost":  # ours is a near-tie at 3→4 where the reference falls by 2 %: not a reference inversion
            continue
        for step in steps:
            scores = []
            for severity in (step, step + 1):
                outs = [reference_float(reference, name, photo, severity, seed=i) for i, photo in enumerate(photos)]
                scores.append(np.mean([structural_similarity(c, o, channel_axis=-1, data_range=1.0)
                                       for c, o in zip(clean, outs)]))
            assert scores[1] >= scores[0] * 0.98, (name, step, scores)
