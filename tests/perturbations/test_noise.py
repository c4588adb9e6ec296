"""The CAM-study noise family: registration, level tables, statistics of each noise model against its formula,
severity ordering and batch invariance."""

from __future__ import annotations

import pytest
import torch

import robustviz
from robustviz.rng import derive_seeds
from robustviz.validation import InputError

NAMES = ("noise.gaussian", "noise.shot", "noise.impulse", "noise.speckle", "noise.uniform")


def _grey(value: float = 0.5, size: int = 64) -> torch.Tensor:
    return torch.full((4, 3, size, size), value)


def test_registered_with_study_family_and_five_levels():
    for name in NAMES:
        noise = robustviz.create("perturbation", name)
        assert noise.name == name and noise.family == "noise-study" and len(noise.levels) == 5


def test_gaussian_and_uniform_spread_match_their_levels():
    images = _grey()
    seeds = derive_seeds(0, range(4))
    gaussian = robustviz.create("perturbation", "noise.gaussian")
    for severity, sigma in zip(range(1, 4), gaussian.levels):  # σ ≤ 0.1: clipping at 0.5 ± 5σ is negligible
        delta = gaussian(images, severity, seeds=seeds) - images
        assert float(delta.std()) == pytest.approx(sigma, rel=0.02) and abs(float(delta.mean())) < 0.01 * sigma + 1e-3
    uniform = robustviz.create("perturbation", "noise.uniform")
    for severity, half_width in zip(range(1, 5), uniform.levels):
        delta = uniform(images, severity, seeds=seeds) - images
        assert float(delta.abs().max()) <= half_width + 1e-6
        assert float(delta.std()) == pytest.approx(half_width / 3 ** 0.5, rel=0.02)


def test_shot_noise_is_poisson_with_mean_x_and_variance_x_over_photons():
    images = _grey(0.3)
    noise = robustviz.create("perturbation", "noise.shot")
    for severity, photons in zip(range(1, 6), noise.levels):
        out = noise(images, severity, seeds=derive_seeds(1, range(4), severity))
        counts = out * photons
        assert torch.allclose(counts, counts.round(), atol=1e-3)  # integer photon counts
        assert float(out.mean()) == pytest.approx(0.3, rel=0.01)
        assert float(out.var()) == pytest.approx(0.3 / photons, rel=0.05)


def test_impulse_and_speckle():
    images = _grey(0.4)
    seeds = derive_seeds(2, range(4))
    impulse = robustviz.create("perturbation", "noise.impulse")
    for severity, amount in zip(range(1, 6), impulse.levels):
        out = impulse(images, severity, seeds=seeds)
        hit = out != images
        spread = (amount * (1 - amount) / hit.numel()) ** 0.5
        assert float(hit.float().mean()) == pytest.approx(amount, abs=4 * spread)  # 4 binomial standard errors
        assert set(out[hit].unique().tolist()) <= {0.0, 1.0}
        salt = float((out[hit] == 1.0).float().mean())
        assert salt == pytest.approx(0.5, abs=4 * 0.5 / float(hit.sum()) ** 0.5)  # 4 binomial standard errors
    speckle = robustviz.create("perturbation", "noise.speckle")
    delta = speckle(images, 2, seeds=seeds) - images
    assert float(delta.std()) == pytest.approx(0.4 * speckle.levels[1], rel=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_stronger_with_severity_and_batch_invariant(name):
    images = torch.rand(5, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    noise = robustviz.create("perturbation", name)
    changes = []
    for severity in range(1, 6):
        seeds = derive_seeds(0, range(5), name, severity)
        out = noise(images, severity, seeds=seeds)
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        changes.append(float((out - images).abs().mean()))
        alone = torch.cat([noise(images[i:i + 1], severity, seeds=seeds[i:i + 1]) for i in range(5)])
        assert torch.equal(out, alone)
    assert all(a < b for a, b in zip(changes, changes[1:]))
    single_channel = noise(images[:, :1], 2, seeds=derive_seeds(0, range(5)))
    assert single_channel.shape == (5, 1, 24, 24)


def test_custom_levels_are_validated():
    assert robustviz.create("perturbation", "noise.gaussian", levels=(0.1, 0.2, 0.3, 0.4, 0.5)).levels[0] == 0.1
    with pytest.raises(InputError, match="five"):
        robustviz.create("perturbation", "noise.gaussian", levels=(0.1, 0.2))
    with pytest.raises(InputError, match="increase"):
        robustviz.create("perturbation", "noise.uniform", levels=(0.5, 0.4, 0.3, 0.2, 0.1))
    with pytest.raises(InputError, match="decrease"):
        robustviz.create("perturbation", "noise.shot", levels=(1, 2, 3, 4, 5))
