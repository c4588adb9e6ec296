"""Spectral bands and band-removal perturbations, against the I-ASIDE reference construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustviz
from robustviz.perturbations.spectral import band_index, band_masks, keep_bands
from robustviz.rng import derive_seeds
from robustviz.validation import InputError


def reference_band_masks(dim: int, n_bands: int) -> np.ndarray:
    """The I-ASIDE reference code's square slicing of a centred dim×dim spectrum: band i = low-pass square of side
    int(dim·(i+1)/M) minus the one of side int(dim·i/M), each starting at (dim − side)//2."""
    masks = np.zeros((n_bands, dim, dim), bool)
    for band in range(n_bands):
        outer = np.zeros((dim, dim), bool)
        side = int(dim * (band + 1) / n_bands)
        start = (dim - side) // 2
        outer[start:start + side, start:start + side] = True
        side = int(dim * band / n_bands)
        start = (dim - side) // 2
        outer[start:start + side, start:start + side] = False
        masks[band] = outer
    return masks


def reference_filter(images: torch.Tensor, keep: np.ndarray, masks: np.ndarray, fill_spectrum=None) -> torch.Tensor:
    """A direct per-coalition filter: FFT, keep the bands (else fill), inverse FFT, modulus, per-image min-max."""
    if not keep.any():
        return torch.zeros_like(images)
    spectrum = np.fft.fftshift(np.fft.fft2(images.double().numpy(), axes=(-2, -1)), axes=(-2, -1))
    kept = masks[keep].any(0)
    fill = np.zeros_like(spectrum) if fill_spectrum is None else fill_spectrum
    filtered = np.where(kept, spectrum, fill)
    pixels = np.abs(np.fft.ifft2(np.fft.ifftshift(filtered, axes=(-2, -1)), axes=(-2, -1)))
    low = pixels.min(axis=(1, 2, 3), keepdims=True)
    high = pixels.max(axis=(1, 2, 3), keepdims=True)
    return torch.from_numpy((pixels - low) / (high - low)).float()


@pytest.mark.parametrize("dim", [16, 32, 64, 224])
def test_band_masks_match_reference_slicing(dim):
    ours = band_masks(dim, dim, 8).numpy()
    np.testing.assert_array_equal(ours, reference_band_masks(dim, 8))


@pytest.mark.parametrize("shape", [(32, 32), (33, 33), (20, 48), (17, 40)])
def test_bands_partition_the_spectrum_and_grow_outwards(shape):
    height, width = shape
    masks = band_masks(height, width, 4)
    assert masks.shape == (4, height, width)
    assert bool((masks.sum(0) == 1).all())  # every frequency in exactly one band
    index = band_index(height, width, 4).numpy()
    assert index[height // 2, width // 2] == 0  # the DC term is in band 0
    assert index[0, 0] == 3 and index[0, width // 2] == 3 and index[height // 2, 0] == 3  # edges: highest band
    # Bands are rings: along the centre row the band index never decreases away from the centre.
    centre_row = index[height // 2, width // 2:]
    assert np.all(np.diff(centre_row) >= 0)


def test_odd_sizes_are_symmetric_about_dc():
    index = band_index(33, 33, 8).numpy()
    np.testing.assert_array_equal(index, index[::-1, ::-1])


def test_too_many_bands_for_the_image_is_a_clear_error():
    with pytest.raises(InputError, match="cannot be split into 8 bands"):
        band_masks(8, 8, 8)


def test_keep_bands_equals_direct_filter_for_every_fill():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 32, 32, generator=generator)
    others = torch.rand(3, 3, 32, 32, generator=generator)
    masks = reference_band_masks(32, 8)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 0], bool)
    np.testing.assert_allclose(keep_bands(images, keep), reference_filter(images, keep, masks), atol=2e-5)
    other_spectrum = np.fft.fftshift(np.fft.fft2(others.double().numpy(), axes=(-2, -1)), axes=(-2, -1))
    np.testing.assert_allclose(keep_bands(images, keep, fill="image", fill_images=others),
                               reference_filter(images, keep, masks, other_spectrum), atol=2e-5)


def test_noise_fill_is_complex_gaussian_with_sigma_half_and_batch_independent():
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    seeds = derive_seeds(7, range(4), "test")
    keep = torch.tensor([True] + [False] * 7)
    batch = keep_bands(images, keep, fill="noise", seeds=seeds)
    alone = keep_bands(images[2:3], keep, fill="noise", seeds=seeds[2:3])
    torch.testing.assert_close(batch[2:3], alone)
    other = keep_bands(images, keep, fill="noise", seeds=seeds + 1)
    assert not torch.allclose(batch, other)
    from robustviz.perturbations.spectral import noise_spectrum

    noise = noise_spectrum(derive_seeds(0, range(64), "n"), (3, 32, 32))
    assert abs(float(noise.real.std()) - 0.5) < 0.01 and abs(float(noise.imag.std()) - 0.5) < 0.01
    assert abs(float(noise.real.mean())) < 0.01


def test_all_bands_kept_gives_the_min_max_scaled_image():
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    images = (images - images.amin((1, 2, 3), keepdim=True)) / (images.amax((1, 2, 3), keepdim=True)
                                                                - images.amin((1, 2, 3), keepdim=True))
    torch.testing.assert_close(keep_bands(images, torch.ones(8, dtype=torch.bool)), images, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fill", ["zero", "noise", "image"])
def test_empty_coalition_is_the_zero_image(fill):
    images = torch.rand(2, 3, 16, 16)
    out = keep_bands(images, torch.zeros(4, dtype=torch.bool), fill=fill, seeds=torch.tensor([1, 2]),
                     fill_images=torch.rand(2, 3, 16, 16))
    assert out.shape == images.shape and bool((out == 0).all())


def test_many_coalitions_stack_single_ones():
    images = torch.rand(2, 1, 16, 16)
    coalitions = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    stacked = keep_bands(images, coalitions)
    assert stacked.shape == (3, 2, 1, 16, 16)
    for index in range(3):
        torch.testing.assert_close(stacked[index], keep_bands(images, coalitions[index]))
    assert float(stacked.min()) >= 0.0 and float(stacked.max()) <= 1.0


def test_bad_inputs_name_the_problem():
    images = torch.rand(2, 3, 16, 16)
    with pytest.raises(InputError, match="fill must be one of"):
        keep_bands(images, torch.ones(4, dtype=torch.bool), fill="blur")
    with pytest.raises(InputError, match="needs seeds"):
        keep_bands(images, torch.ones(4, dtype=torch.bool), fill="noise")
    with pytest.raises(InputError, match="fill_images"):
        keep_bands(images, torch.ones(4, dtype=torch.bool), fill="image")
    with pytest.raises(InputError, match="shape"):
        keep_bands(images, torch.ones(2, 2, 4, dtype=torch.bool))
    with pytest.raises(InputError, match="boolean mask"):
        keep_bands(images, torch.full((4,), 0.5))


@pytest.mark.parametrize("name, kept", [
    ("lowpass", {1: [0, 1, 2, 3, 4, 5], 2: [0, 1, 2, 3, 4], 3: [0, 1, 2, 3], 4: [0, 1, 2], 5: [0, 1]}),
    ("highpass", {1: [1, 2, 3, 4, 5, 6, 7], 2: [2, 3, 4, 5, 6, 7], 3: [3, 4, 5, 6, 7], 4: [4, 5, 6, 7],
                  5: [5, 6, 7]}),
])
def test_band_removal_perturbations_follow_their_tables(name, kept):
    perturbation = robustviz.create("perturbation", name)
    assert perturbation.family == "spectral" and tuple(perturbation.severities) == (1, 2, 3, 4, 5)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    seeds = derive_seeds(0, range(3), name)
    torch.testing.assert_close(perturbation(images, 0, seeds=seeds), images)
    masks = reference_band_masks(32, 8)
    for severity, bands in kept.items():
        keep = np.isin(np.arange(8), bands)
        np.testing.assert_array_equal(perturbation.kept_bands(severity).numpy(), keep)
        out = perturbation(images, severity, seeds=seeds)
        np.testing.assert_allclose(out, reference_filter(images, keep, masks), atol=2e-5)


def test_lowpass_removes_detail_progressively():
    """Total variation (a proxy for high-frequency content) falls as more high bands are removed."""
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    lowpass = robustviz.create("perturbation", "lowpass")
    seeds = derive_seeds(0, range(4), "lowpass")
    variation = [float((lowpass(images, s, seeds=seeds).diff(dim=-1).abs()).mean()) for s in range(1, 6)]
    assert all(later < earlier for earlier, later in zip(variation, variation[1:]))


def test_band_removal_rejects_image_fill():
    with pytest.raises(InputError, match="fill must be 'zero' or 'noise'"):
        robustviz.create("perturbation", "lowpass", fill="image")
