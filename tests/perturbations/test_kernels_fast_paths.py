"""Fast paths of the corruption kernels give the same numbers as the slow, explicit forms, at every batch size."""

import numpy as np
import pytest
import torch

from robustviz.perturbations import _ops, _sampling
from robustviz.rng import derive_seeds


def _five_smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


@pytest.mark.parametrize("size", [1, 2, 7, 97, 254, 276, 284, 304, 1000, 1025])
def test_fast_length_is_the_smallest_5_smooth_size(size):
    expected = next(n for n in range(size, 4 * size + 2) if _five_smooth(n))
    assert _ops.fast_length(size) == expected


def test_complex_multiply_matches_torch_and_is_batch_exact():
    g = torch.Generator().manual_seed(0)
    a = torch.complex(torch.randn(20, 7, 9, generator=g), torch.randn(20, 7, 9, generator=g))
    b = torch.complex(torch.randn(20, 7, 9, generator=g), torch.randn(20, 7, 9, generator=g))
    full = _ops.complex_multiply(a, b)
    torch.testing.assert_close(full, a * b, rtol=1e-6, atol=1e-6)
    for n in (1, 5, 11, 16):
        assert torch.equal(_ops.complex_multiply(a[:n], b[:n]), full[:n])


def _motion_reference(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """The shifted-copies definition of ImageNet-C's motion blur, one image, float64, edges replicated."""
    width = int(2 * radius + 1)
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    theta = np.deg2rad(angle)
    height, image_width = image.shape[-2:]
    out = np.zeros_like(image, dtype=np.float64)
    rows, cols = np.arange(height)[:, None], np.arange(image_width)[None, :]
    for i, weight in enumerate(weights):
        dy, dx = -int(np.ceil(i * np.sin(theta) - 0.5)), -int(np.ceil(i * np.cos(theta) - 0.5))
        if abs(dy) >= height or abs(dx) >= image_width:
            break
        out += weight * image[..., np.clip(rows - dy, 0, height - 1), np.clip(cols - dx, 0, image_width - 1)]
    return out


def test_motion_blur_matches_shifted_copies_and_is_batch_exact():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(7, 3, 40, 40, generator=g)
    angles = torch.rand(7, generator=g) * 90 - 45
    blurred = _ops.motion_blur(images, 6, 2.5, angles)
    for index in range(7):
        expected = _motion_reference(images[index].double().numpy(), 6, 2.5, float(angles[index]))
        np.testing.assert_allclose(blurred[index].numpy(), expected, atol=2e-6)
    for n in (1, 2, 5, 6):
        assert torch.equal(_ops.motion_blur(images[:n], 6, 2.5, angles[:n]), blurred[:n])
    several = _ops.motion_blurs(images, 6, 2.5, [angles, angles + 60])
    assert torch.equal(several[0], blurred)
    assert torch.equal(several[1], _ops.motion_blur(images, 6, 2.5, angles + 60))


@pytest.mark.parametrize("photons", [3, 12, 60, 500])
def test_8bit_poisson_fast_path_equals_the_walk(photons):
    """The cached-table path for 8-bit images gives exactly the counts of the independent walk from the mode."""
    g = torch.Generator().manual_seed(photons)
    images = torch.randint(0, 256, (3, 3, 24, 24), generator=g).float() / 255
    seeds = derive_seeds(0, range(3), "shot", photons)
    counts = _sampling.poisson(images, photons, seeds, "shot")
    u = _sampling.uniform_like(seeds, images, "poisson", "shot").to(torch.float64).reshape(-1)
    lam = (images.to(torch.float64) * photons).reshape(-1)
    walked = _sampling._poisson_by_walk(lam, u).reshape(images.shape).float()
    assert torch.equal(counts, walked)
    assert torch.equal(_sampling.poisson(images[1:2], photons, seeds[1:2], "shot"), counts[1:2])
    # off the 8-bit grid the general path runs and agrees with the walk too
    shifted = (images * 0.999).clamp(0, 1)
    lam = (shifted.to(torch.float64) * photons).reshape(-1)
    u = _sampling.uniform_like(seeds, shifted, "poisson", "shot").to(torch.float64).reshape(-1)
    assert torch.equal(_sampling.poisson(shifted, photons, seeds, "shot"),
                       _sampling._poisson_by_walk(lam, u).reshape(images.shape).float())


@pytest.mark.parametrize("photons", [3, 60, 500])
def test_poisson_cell_table_is_exact_at_cell_edges(photons):
    """The lookup table settles a draw only when its whole (intensity, u) cell shares one count: at the cells'
    corners (x = j/2048, u on the first and last 2^-24 step of each u-cell) and in between, it equals the walk."""
    g = torch.Generator().manual_seed(photons)
    corners = torch.arange(2049, dtype=torch.float32) / 2048
    x = torch.cat([corners, torch.nextafter(corners[1:], torch.zeros(())), torch.rand(20000, generator=g)])
    cells = torch.randint(0, 1024, (x.numel(),), generator=g).to(torch.float64)
    edge = torch.randint(0, 3, (x.numel(),), generator=g)
    inside = torch.randint(1, 2 ** 14 - 1, (x.numel(),), generator=g).to(torch.float64)
    u = (cells * 2 ** 14 + torch.where(edge == 0, 0.0, torch.where(edge == 1, 2 ** 14 - 1.0, inside))) / 2 ** 24
    u = u.to(torch.float32)
    counts = _sampling._poisson_unit(x, float(photons), u)
    walked = _sampling._poisson_by_walk(x.to(torch.float64) * photons, u.to(torch.float64))
    assert torch.equal(counts.to(torch.float64), walked)
    assert (_sampling._cell_table(float(photons), "cpu") >= 0).float().mean() > 0.6  # the table does settle most
