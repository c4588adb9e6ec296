"""ImageNet-C corruptions: registry, severity tables and size rule, identity/range, batch invariance, severity
monotonicity (SSIM to clean, from scikit-image) at 32, 64 and 224 px, and exact checks of the helpers against
independent implementations (numpy, scipy, scikit-image, Pillow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import robustviz
from robustviz.perturbations import corruptions as C
from robustviz.perturbations.base import Perturbation
from robustviz.rng import derive_seeds
from robustviz.validation import InputError

from ._reference import sample_images

FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}


def _batch(size: int, count: int) -> torch.Tensor:
    return torch.as_tensor(sample_images(size, count)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def images32():
    return _batch(32, 9)


def test_all_nineteen_registered_as_classes_with_imagenet_c_families():
    names = robustviz.registry.list_names("perturbation")
    assert len(C.ALL_CORRUPTIONS) == 19 and len(set(C.ALL_CORRUPTIONS)) == 19
    for family, members in FAMILIES.items():
        for name in members:
            assert name in names
            factory = robustviz.registry.get("perturbation", name)
            assert isinstance(factory, type) and issubclass(factory, Perturbation)
            instance = robustviz.create("perturbation", name, table="cifar")
            assert instance.name == name and instance.family == family and instance.table == "cifar"


def test_constants_reproduce_published_tables_and_scale_spatial_ones():
    # 224 px: imagecorruptions 1.1.2 values; 32 px: make_cifar_c.py values
    assert C.severity_constants("defocus_blur", 5, 224, 224)["radius"] == 10
    assert C.severity_constants("glass_blur", 3, 224, 224)["max_delta"] == 2
    assert C.severity_constants("gaussian_noise", 1, 32, 32)["sigma"] == 0.04
    assert C.severity_constants("jpeg_compression", 1, 32, 32)["quality"] == 80
    assert C.severity_constants("zoom_blur", 1, 224, 224)["zooms"] == tuple(np.arange(1, 1.11, 0.01))
    # 448 px: ImageNet-C table, spatial ×2, photometric kept
    big = C.severity_constants("snow", 2, 448, 448)
    base = C.severity_constants("snow", 2, 224, 224)
    assert big["reference"] == "imagenet" and big["spatial_scale"] == 2.0
    assert (big["zoom"], big["radius"], big["sigma"]) == (2 * base["zoom"], 2 * base["radius"], 2 * base["sigma"])
    assert (big["loc"], big["scale"], big["threshold"], big["blend"]) == \
        (base["loc"], base["scale"], base["threshold"], base["blend"])
    # 64 px: nearer to 32 than to 224 on a log scale → CIFAR table, spatial ×2
    small = C.severity_constants("gaussian_blur", 4, 64, 64)
    assert small["reference"] == "cifar" and small["sigma"] == pytest.approx(2 * 0.8)
    assert C.severity_constants("motion_blur", 1, 84, 100)["reference"] == "cifar"  # min side 84 ≤ √(32·224)
    assert C.severity_constants("motion_blur", 1, 85, 100)["reference"] == "imagenet"
    assert C.severity_constants("brightness", 3, 64, 64)["shift"] == 0.15
    forced = C.severity_constants("gaussian_blur", 1, 64, 64, table="imagenet")
    assert forced["sigma"] == pytest.approx(64 / 224)
    mud = C.severity_constants("spatter", 4, 448, 448)  # mud blur σ scales, water gain does not
    assert mud["intensity"] == 3.0 and C.severity_constants("spatter", 1, 448, 448)["intensity"] == 0.6
    with pytest.raises(InputError, match="table"):
        C.severity_constants("fog", 1, 32, 32, table="tiny")
    with pytest.raises(InputError, match="unknown corruption"):
        C.severity_constants("fogg", 1, 32, 32)


@pytest.mark.parametrize("name", C.ALL_CORRUPTIONS)
def test_identity_range_shape_and_greyscale(name, images32):
    perturbation = robustviz.create("perturbation", name)
    seeds = derive_seeds(0, range(3), name)
    assert torch.equal(perturbation(images32[:3], 0, seeds=seeds), images32[:3])
    out = perturbation(images32[:3], 3, seeds=seeds)
    assert out.shape == images32[:3].shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, images32[:3])
    grey = perturbation(images32[:2, :1], 2, seeds=seeds[:2])
    assert grey.shape == (2, 1, 32, 32) and float(grey.max()) <= 1.0


def test_rejects_four_channel_images():
    with pytest.raises(InputError, match="channels"):
        robustviz.create("perturbation", "fog")(torch.rand(1, 4, 32, 32), 1, seeds=torch.zeros(1, dtype=torch.long))


@pytest.mark.parametrize("name", C.ALL_CORRUPTIONS)
def test_bit_identical_across_batch_sizes(name, images32):
    """Acceptance 3: same seeds → the same bits whether a sample is corrupted alone, in 7s or in the whole batch."""
    perturbation = robustviz.create("perturbation", name)
    images = images32[:8]
    seeds = derive_seeds(3, range(8), name, 4)
    whole = perturbation(images, 4, seeds=seeds)
    singles = torch.cat([perturbation(images[i:i + 1], 4, seeds=seeds[i:i + 1]) for i in range(8)])
    sevens = torch.cat([perturbation(images[:7], 4, seeds=seeds[:7]), perturbation(images[7:], 4, seeds=seeds[7:])])
    assert torch.equal(whole, singles) and torch.equal(whole, sevens)
    other = perturbation(images, 4, seeds=derive_seeds(4, range(8), name, 4))
    deterministic = name in {"gaussian_blur", "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                             "jpeg_compression", "saturate"}
    assert torch.equal(whole, other) == deterministic


def test_bit_identical_alone_or_in_a_batch_at_224_px_on_two_threads():
    """At 224 px a plane holds more values than torch's grain size, so a reduction with one output (a lone image's
    mean) is split across threads and rounds differently from the same image in a batch (frost did): every
    corruption must give a lone image the bits it gets in a batch of three."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(224)
        images = torch.nn.functional.interpolate(torch.rand(3, 3, 28, 28, generator=g), size=224, mode="bilinear")
        failed = []
        for name in C.ALL_CORRUPTIONS:
            perturbation = robustviz.create("perturbation", name)
            seeds = derive_seeds(5, range(3), name, 3)
            whole = perturbation(images, 3, seeds=seeds)
            if not torch.equal(whole[1:2], perturbation(images[1:2], 3, seeds=seeds[1:2])):
                failed.append(name)
        assert not failed
    finally:
        torch.set_num_threads(threads)


def _mean_ssim(clean: np.ndarray, corrupted: np.ndarray) -> float:
    return float(np.mean([structural_similarity(a, b, channel_axis=-1, data_range=1.0)
                          for a, b in zip(clean, corrupted)]))


#: Severity steps s → s+1 at which the *published* constants do not lower SSIM to the clean image (so no faithful
#: implementation can): at 224 px the reference imagecorruptions shows the same inversions (checked in
#: test_corruptions_parity.py); at 32/64 px they come from the CIFAR-10-C table — elastic's affine jitter shrinks
#: with severity, glass blur's σ grows faster than its shuffling, saturate's severity 3 is a mild ×1.5 boost after
#: two desaturations. Frost 3→4 and motion blur 3→4 are near-ties (only one weight changes a little); frost's is in
#: the reference too (stratified over its textures it falls 0.6 %, ours 1.1 %; see docs/perturbations.md).
KNOWN_INVERSIONS = {
    224: {"glass_blur": {3}, "zoom_blur": {2}, "snow": {2}, "spatter": {3}, "frost": {3}},
    64: {"glass_blur": {1, 2, 4}, "motion_blur": {3}, "snow": {4}, "frost": {3}, "elastic_transform": {1, 2, 3, 4},
         "spatter": {3}, "saturate": {2}},
    32: {"glass_blur": {1, 2, 4}, "motion_blur": {3}, "frost": {3}, "elastic_transform": {1, 2, 3, 4},
         "spatter": {3}, "saturate": {2}},
}


def _ssim_per_level(name: str, images: torch.Tensor, severity_scale: str = "published") -> list[float]:
    clean = images.permute(0, 2, 3, 1).numpy()
    perturbation = robustviz.create("perturbation", name, severity_scale=severity_scale)
    seeds = derive_seeds(11, range(len(images)), name)  # the same random draws at every severity isolate its effect
    return [_mean_ssim(clean, perturbation(images, severity, seeds=seeds).permute(0, 2, 3, 1).numpy())
            for severity in range(1, 6)]


@pytest.mark.parametrize("size", [32, 64, pytest.param(224, marks=pytest.mark.slow)])
def test_severity_monotonic_ssim(size):
    """Acceptance 2 with severity_scale="monotone": mean SSIM to the clean image strictly decreases at every step, for
    every corruption, with no exception — on photos and (32, 64 px) shapes images, neither of which the scale was
    calibrated on (benchmarks/severity_calibration.py uses other scikit-image photos)."""
    from robustviz.data.shapes import make_shapes

    batches = {"photos": _batch(size, 3)}
    if size < 224:  # at 224 px flat shapes images barely change under JPEG 10 → 7 (a near-tie; docs/perturbations.md)
        batches["shapes"] = make_shapes(4, size).images
    failures = []
    for label, images in batches.items():
        for name in C.ALL_CORRUPTIONS:
            scores = _ssim_per_level(name, images, "monotone")
            bad = [s for s in range(1, 5) if scores[s - 1] <= scores[s]]
            if bad:
                failures.append((label, name, bad, np.round(scores, 4).tolist()))
    assert not failures, f"monotone scale: SSIM does not decrease at {size} px: {failures}"


@pytest.mark.parametrize("size", [32, 64, pytest.param(224, marks=pytest.mark.slow)])
def test_published_severity_inversions_are_the_documented_ones(size):
    """The published constants: every step where SSIM does not fall is in KNOWN_INVERSIONS, and every listed step
    is an inversion or a near-tie (drop < 0.01) on these images."""
    images = _batch(size, 3)
    unexpected, stale = [], []
    for name in C.ALL_CORRUPTIONS:
        scores = _ssim_per_level(name, images)
        allowed = KNOWN_INVERSIONS[size].get(name, set())
        unexpected += [(name, s) for s in range(1, 5) if scores[s - 1] <= scores[s] and s not in allowed]
        stale += [(name, s) for s in allowed if scores[s - 1] - scores[s] >= 0.01]
    assert not unexpected and not stale, (unexpected, stale)


def test_monotone_scale_keeps_published_levels_it_does_not_override():
    images = _batch(32, 2)
    for size, table in ((32, "cifar"), (64, "cifar"), (224, "imagenet")):
        batch = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear") if size != 32 else images
        for name in ("gaussian_noise", "frost", "motion_blur", "elastic_transform"):
            overridden = C.MONOTONE[table].get(name, {})
            published = robustviz.create("perturbation", name)
            monotone = robustviz.create("perturbation", name, severity_scale="monotone")
            seeds = derive_seeds(0, range(2), name)
            for severity in range(1, 6):
                same = torch.equal(published(batch, severity, seeds=seeds), monotone(batch, severity, seeds=seeds))
                assert same == (severity not in overridden), (name, size, severity)
    # every override really differs from the published level at that severity, and names only known constants
    for table, entries in C.MONOTONE.items():
        for name, levels in entries.items():
            for severity, row in levels.items():
                published = (C.IMAGENET_C if table == "imagenet" else C.CIFAR_10_C)[name][severity - 1]
                assert set(row) == set(published) and row != published, (table, name, severity)


def test_severity_scale_parameter_validated_and_shown():
    frost = robustviz.create("perturbation", "frost", severity_scale="monotone")
    assert frost.severity_scale == "monotone" and frost.severities == (1, 2, 3, 4, 5)
    assert "severity_scale='monotone'" in repr(frost)
    assert "severity_scale='published'" in repr(robustviz.create("perturbation", "frost"))
    assert C.severity_constants("frost", 4, 224, 224, severity_scale="monotone")["frost_weight"] == 0.725
    assert C.severity_constants("frost", 4, 224, 224)["frost_weight"] == 0.7
    # overrides follow the size rule: spatial constants scaled (64 px: CIFAR table ×2)
    assert C.severity_constants("motion_blur", 4, 64, 64, severity_scale="monotone")["sigma"] == pytest.approx(4.5)
    with pytest.raises(InputError, match="severity_scale must be 'published'.*'monotone'.*got 'strict'"):
        robustviz.create("perturbation", "fog", severity_scale="strict")
    with pytest.raises(InputError, match="severity_scale"):
        C.severity_constants("fog", 1, 32, 32, severity_scale="Monotone")


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", C.ALL_CORRUPTIONS)
def test_cuda_matches_cpu(name, images32):
    perturbation = robustviz.create("perturbation", name)
    seeds = derive_seeds(0, range(4), name, 3)
    cpu = perturbation(images32[:4], 3, seeds=seeds)
    gpu = perturbation(images32[:4].cuda(), 3, seeds=seeds)
    assert gpu.is_cuda
    # counter-based draws are identical; floats may differ by an ulp, which can flip a Poisson count or a
    # threshold now and then — compare as images
    assert float((gpu.cpu() - cpu).abs().mean()) < 2e-3
