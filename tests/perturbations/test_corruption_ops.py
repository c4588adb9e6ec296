"""The corruption building blocks against independent implementations: numpy padding, scipy filters and zoom,
scikit-image HSV, Pillow's resize and JPEG codec, scipy's Poisson quantiles, and an explicit Python loop for the
glass-blur sweep."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, stats
from skimage import color

from robustviz import rng
from robustviz.perturbations import _ops
from robustviz.perturbations._jpeg import jpeg_compress
from robustviz.perturbations._noise_blur import _sweep_sources
from robustviz.perturbations._sampling import poisson
from robustviz.perturbations._textures import equalize_hist, truncated_distance

from ._reference import sample_images


@pytest.fixture(scope="module")
def photos():
    return sample_images(64, 3)


@pytest.mark.parametrize(("mode", "numpy_mode"), [("nearest", "edge"), ("reflect", "symmetric"),
                                                  ("mirror", "reflect")])
def test_border_indices_match_numpy_pad(mode, numpy_mode):
    data = np.arange(5)
    for width in (1, 4, 12):  # wider than the axis: repeated folding
        expected = np.pad(data, (width, width + 1), mode=numpy_mode)
        assert np.array_equal(data[_ops.border_indices(5, width, width + 1, mode)], expected)


def test_gaussian_blur_matches_scipy():
    image = np.random.default_rng(0).random((2, 3, 40, 50))
    for sigma, mode, truncate in ((1.0, "nearest", 4.0), (2.24, "reflect", 3.0), ((0.7, 3.5), "nearest", 4.0)):
        ours = _ops.gaussian_blur(torch.as_tensor(image, dtype=torch.float32), sigma, mode, truncate).numpy()
        sig = (0, 0) + ((sigma, sigma) if np.isscalar(sigma) else tuple(sigma))
        expected = ndimage.gaussian_filter(image, sig, mode=mode, truncate=truncate)
        assert np.abs(ours - expected).max() < 1e-5


def test_filter2d_small_and_fft_paths_match_scipy_correlate():
    image = np.random.default_rng(1).random((1, 2, 37, 41))
    for size in (3, 21):
        kernel = np.random.default_rng(size).random((size, size))
        ours = _ops.filter2d(torch.as_tensor(image, dtype=torch.float32), torch.as_tensor(kernel), "mirror")
        expected = ndimage.correlate(image, kernel[None, None], mode="mirror")
        assert np.abs(ours.numpy() - expected).max() < 1e-4


def test_clipped_zoom_matches_scipy_zoom():
    image = np.random.default_rng(2).random((30, 30)).astype(np.float32)
    for zoom in (1.07, 1.3, 2.0):
        crop = int(np.ceil(30 / zoom))
        top = (30 - crop) // 2
        expected = ndimage.zoom(image[top:top + crop, top:top + crop], zoom, order=1)[:30, :30]
        ours = _ops.clipped_zoom(torch.as_tensor(image)[None, None], zoom)[0, 0].numpy()
        assert np.abs(ours - expected).max() < 1e-5


def test_hsv_closed_forms_match_scikit_image(photos):
    rgb = photos.astype(np.float64) / 255.0
    rgb[0, :4, :4] = 0.5  # grey pixels (no hue) and black ones
    rgb[1, :4, :4] = 0.0
    tensor = torch.as_tensor(rgb).permute(0, 3, 1, 2)
    for shift in (0.1, 0.5):
        hsv = color.rgb2hsv(rgb)
        hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
        ours = _ops.hsv_value_shift(tensor, shift).permute(0, 2, 3, 1).numpy()
        assert np.abs(ours - color.hsv2rgb(hsv)).max() < 1e-9
    for scale, offset in ((0.3, 0.0), (20.0, 0.2)):
        hsv = color.rgb2hsv(rgb)
        hsv[..., 1] = np.clip(hsv[..., 1] * scale + offset, 0, 1)
        ours = _ops.hsv_saturation_affine(tensor, scale, offset).permute(0, 2, 3, 1).numpy()
        assert np.abs(ours - color.hsv2rgb(hsv)).max() < 1e-9


def test_pillow_box_and_nearest_taps(photos):
    image = photos[0]
    tensor = torch.as_tensor(image).permute(2, 0, 1).double()
    for out_size in (38, 16, 51):
        for taps, resample in ((_ops.pil_box_taps, Image.BOX), (_ops.pil_nearest_taps, Image.NEAREST)):
            index, weight = taps(64, out_size)
            ours = _ops.resample_axis(_ops.resample_axis(tensor, -1, index, weight), -2, index, weight)
            expected = np.asarray(Image.fromarray(image).resize((out_size, out_size), resample), dtype=np.float64)
            assert np.abs(ours.permute(1, 2, 0).numpy() - expected).max() <= 1.0  # Pillow rounds to 8 bits


@pytest.mark.parametrize("size", [(64, 64), (40, 56)])
def test_jpeg_matches_pillow(size):
    photos = sample_images(max(size), 3)[:, :size[0], :size[1]]
    tensor = torch.as_tensor(photos).permute(0, 3, 1, 2).float() / 255.0
    for quality in (7, 25, 80):
        ours = jpeg_compress(tensor, quality).permute(0, 2, 3, 1).double().numpy()
        for index, photo in enumerate(photos):
            buffer = io.BytesIO()
            Image.fromarray(photo).save(buffer, "JPEG", quality=quality)
            expected = np.asarray(Image.open(buffer), dtype=np.float64) / 255.0
            psnr = 10 * np.log10(1.0 / max(np.mean((ours[index] - expected) ** 2), 1e-20))
            assert psnr >= 35.0, (quality, index, psnr)


@pytest.mark.parametrize("quantised", [False, True])
def test_poisson_is_the_inverse_cdf_of_its_uniforms(quantised):
    """Each count equals scipy's Poisson quantile of the element's uniform draw, for rates from 0 to 600 — through
    the mode walk (many distinct rates) and through the CDF tables (8-bit images: few distinct rates)."""
    rates = torch.linspace(0.0, 600.0, 4001, dtype=torch.float64).reshape(1, -1).repeat(3, 1)
    if quantised:
        rates = (torch.round(rates / 600 * 255) / 255 * 600).repeat(1, 4)
    seeds = torch.tensor([5, 6, 7])
    counts = poisson(rates, 1.0, seeds, "check")
    uniforms = rng.uniform(rng.substream(seeds, "poisson", "check"), rates.shape[1:], "cpu").double()
    expected = stats.poisson.ppf(uniforms.numpy(), rates.numpy())
    expected = np.where(rates.numpy() == 0, 0.0, expected)
    assert np.array_equal(counts.numpy(), expected)


def test_poisson_tables_exact_at_the_ends_of_the_unit_interval():
    """u = 0 and u → 1 against scipy: the smallest k with F(k) > u (F(0) = e^-60 ≈ 1e-26 > 0 for λ = 60)."""
    from robustviz.perturbations._sampling import _poisson_by_table

    distinct = torch.tensor([0.5, 3.0, 60.0, 300.0], dtype=torch.float64)
    u = torch.tensor([0.0, 2.0 ** -24, 0.5, 1 - 2.0 ** -24], dtype=torch.float64)
    index = torch.arange(4).repeat_interleave(4)
    counts = _poisson_by_table(distinct, index, u.repeat(4)).numpy()
    lam, q = distinct[index].numpy(), u.repeat(4).numpy()
    expected = np.where(q == 0, 0.0, stats.poisson.ppf(q, lam))
    assert np.array_equal(counts, expected)


def _reference_sweep(image: np.ndarray, dy: np.ndarray, dx: np.ndarray, delta: int) -> np.ndarray:
    """ImageNet-C's glass-blur loop, verbatim in behaviour (its view "swap" copies x[h', w'] into x[h, w])."""
    x = image.copy()
    height, width = x.shape[:2]
    for h in range(height - delta, delta, -1):
        for w in range(width - delta, delta, -1):
            h_prime, w_prime = h + dy[h, w], w + dx[h, w]
            x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


@pytest.mark.parametrize("delta", [1, 2, 4])
def test_glass_blur_sweep_equals_reference_loop(delta):
    generator = np.random.default_rng(delta)
    image = generator.integers(0, 255, size=(23, 19, 3)).astype(np.uint8)
    dy = generator.integers(-delta, delta, size=(23, 19))
    dx = generator.integers(-delta, delta, size=(23, 19))
    expected = _reference_sweep(image, dy, dx, delta)
    source = _sweep_sources(torch.as_tensor(dy)[None], torch.as_tensor(dx)[None], delta)[0].numpy()
    ours = image.reshape(-1, 3)[source].reshape(image.shape)
    assert np.array_equal(ours, expected)


def test_truncated_distance_matches_scipy_edt():
    edges = np.random.default_rng(3).random((2, 40, 45)) > 0.995
    ours = truncated_distance(torch.as_tensor(edges), 20).numpy()
    expected = np.stack([np.minimum(ndimage.distance_transform_edt(~e), 20.0) for e in edges])
    assert np.abs(ours - expected).max() < 1e-5


def test_equalize_hist_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    planes = np.random.default_rng(4).integers(3, 40, size=(2, 30, 30)).astype(np.uint8)
    ours = equalize_hist(torch.as_tensor(planes)).numpy()
    expected = np.stack([cv2.equalizeHist(p) for p in planes])
    assert np.array_equal(ours, expected)


def test_binary_dilation_equals_a_max_pool():
    """Canny's hysteresis grows edges by a 3×3 dilation of shifted ORs; a float max-pool is the reference."""
    from robustviz.perturbations._textures import _dilate3

    g = torch.Generator().manual_seed(3)
    for shape in ((2, 17, 23), (1, 1, 5, 4), (3, 1, 1)):
        mask = torch.rand(shape, generator=g) < 0.1
        pooled = torch.nn.functional.max_pool2d(mask.float().reshape(-1, 1, *shape[-2:]), 3, stride=1, padding=1)
        assert torch.equal(_dilate3(mask), (pooled > 0).reshape(shape))
