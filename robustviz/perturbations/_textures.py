"""Procedural textures for the weather corruptions: frost crystals and the spatter (water) ripple layer.

ImageNet-C's frost overlays crops of six photographs of frosted windows shipped with the code; robustviz ships
no images, so frost is generated: a tinted layer whose colour and contrast are drawn from the palette measured on
the five photographs the reference samples from, textured with crystal "needles" — white noise smeared along three
directions 60° apart (ice's hexagonal habit) — modulated by a plasma fractal so that dense and clear patches
alternate. Feature lengths are proportional to the image size, like the reference's crops (native resolution at
224 px, ×0.2 at 32 px).

The spatter helpers follow the OpenCV steps of the reference water branch (Canny edges, Euclidean distance
transform truncated at 20 px, 3×3 box blur, histogram equalisation, emboss kernel) in batched torch form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import rng
from . import _ops
from ._sampling import next_power_of_two, normal_like, plasma_fractal, uniform_like

#: Mean RGB and standard deviation of the five frost photographs the reference draws from (frost1..5).
FROST_PALETTE = torch.tensor([
    [0.305, 0.585, 0.650, 0.077],
    [0.787, 0.805, 0.841, 0.087],
    [0.787, 0.805, 0.841, 0.087],
    [0.540, 0.599, 0.648, 0.114],
    [0.441, 0.484, 0.528, 0.169],
])


def frost_texture(seeds: torch.Tensor, height: int, width: int, device: torch.device | str) -> torch.Tensor:
    """Seeded frost layers N×3×H×W in [0, 1]."""
    count = seeds.shape[0]
    size = min(height, width)
    needles = _standardise(_needles(seeds, height, width, size, device))
    mapsize = next_power_of_two(max(height, width))
    patches = plasma_fractal(rng.substream(seeds, "frost-patches"), mapsize, 2.0, device)[:, None, :height, :width]
    texture = _standardise(needles * (0.4 + patches) + 1.5 * (patches - _plane_mean(patches)))
    palette = FROST_PALETTE.to(device)[frost_palette_index(seeds).to(device)]
    tint, spread = palette[:, :3].reshape(count, 3, 1, 1), palette[:, 3].reshape(count, 1, 1, 1)
    return (tint + 0.8 * spread * texture).clamp(0.0, 1.0)


def _needles(seeds: torch.Tensor, height: int, width: int, size: int, device: torch.device | str) -> torch.Tensor:
    """Crystal needles N×1×H×W: Σ over two scales and three directions 60° apart of |white noise, Gaussian-blurred
    (σ = 0.006·size) and smeared along the direction (a one-sided Gaussian-weighted line of 0.06·size or
    0.02·size pixels)|.

    Everything happens in the frequency domain of a power-of-two field that wraps around (the texture is
    stationary, so wrapping shows nowhere): the noise is drawn as its spectrum and the blur is its transfer
    function, so each direction costs the transform of its sparse smear kernel and one inverse transform — no
    padding, no transform of the noise, power-of-two sizes. Every plane is transformed in its own call, so an
    image's texture does not depend on its batch (see :func:`robustviz.perturbations._ops.fft_correlate`).
    """
    count = seeds.shape[0]
    rows, cols = next_power_of_two(height), next_power_of_two(width)
    half = cols // 2 + 1
    fy = torch.fft.fftfreq(rows, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(cols, dtype=torch.float64, device=device)
    sigma = 0.006 * size
    blur = torch.exp(-2.0 * math.pi ** 2 * sigma ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2)).to(torch.float32)
    base_angle = uniform_like(seeds, seeds.reshape(-1, 1), "frost-angle").reshape(-1).to(device, torch.float64) * 180.0
    reference = torch.empty(count, 2, rows, half, device=device)
    scales = ((0.06, 1.0), (0.02, 0.6))
    # per image: 2 scales × 3 directions = 6 smear kernels and 6 copies of its (scale's) noise spectrum
    kernels = torch.zeros(count, 2 * 3, rows * cols, device=device)
    spectra, weights = [], []
    for index, (length, weight) in enumerate(scales):
        # unit-variance white noise: its unnormalised spectrum has variance rows·cols per (complex) bin
        white = normal_like(seeds, reference, "frost-noise", index) * (math.sqrt(rows * cols / 2.0) * blur)
        radius = max(1.0, length * size)
        offsets = torch.arange(int(2 * radius + 1), dtype=torch.float64, device=device)
        taps = torch.exp(-offsets ** 2 / (2.0 * (radius / 2.0) ** 2))
        taps = (taps / taps.sum()).to(torch.float32)
        for turn in range(3):
            theta = torch.deg2rad(base_angle + 60.0 * turn + 25.0 * index).reshape(-1, 1)
            shift_y = torch.ceil(offsets * torch.sin(theta) - 0.5).long() % rows  # N×taps, as motion blur's copies
            shift_x = torch.ceil(offsets * torch.cos(theta) - 0.5).long() % cols
            kernels[:, 3 * index + turn].scatter_add_(1, shift_y * cols + shift_x, taps.expand(count, -1))
            spectra.append(white)
            weights.append(weight)
    kernels = kernels.reshape(count, 2 * 3, rows, cols)
    weights = torch.tensor(weights, device=device).reshape(-1, 1, 1)
    needles = torch.empty(count, 1, height, width, device=device)
    for n in range(count):  # one call of a fixed shape (6 planes) per image: the same whatever the batch
        noise = torch.stack([spectrum[n] for spectrum in spectra], dim=1)  # 2×6×rows×half
        product = _ops.complex_multiply(torch.complex(noise[0], noise[1]), torch.fft.rfft2(kernels[n]))
        fields = torch.fft.irfft2(product, s=(rows, cols))[:, :height, :width]
        needles[n, 0] = (weights * fields.abs()).sum(dim=0)
    return needles


def _plane_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over H×W per image of N×1×H×W, keeping dims, batch-invariant.

    torch splits a reduction with a single output (one image) across threads and adds the partial sums, rounding
    differently from the one-thread sum it gives each image of a batch; a lone image is reduced as two expanded
    copies (no copy made) so that it takes the batch path too.
    """
    if values.shape[0] == 1:
        return values.expand(2, *values.shape[1:]).mean(dim=(2, 3), keepdim=True)[:1]
    return values.mean(dim=(2, 3), keepdim=True)


def _standardise(values: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit (sample) standard deviation per image over H×W."""
    centred = values - _plane_mean(values)
    count = values.shape[2] * values.shape[3]
    spread = (_plane_mean(centred.square()) * (count / max(1, count - 1))).sqrt()
    return centred / spread.clamp_min(1e-6)


def frost_palette_index(seeds: torch.Tensor) -> torch.Tensor:
    """Which of the five measured frost palettes each seed uses (uniform over 0..4)."""
    return torch.floor(uniform_like(seeds, seeds.reshape(-1, 1), "frost-tint").reshape(-1) * 5).long()


def canny(plane: torch.Tensor, low: float = 50.0, high: float = 150.0) -> torch.Tensor:
    """Canny edges of 8-bit planes N×H×W (OpenCV defaults: 3×3 Sobel, L1 magnitude, replicated border).

    Non-maximum suppression along the quantised gradient direction, then hysteresis: pixels above ``high`` seed
    edges that grow through 8-connected pixels above ``low``. Returns a bool mask.
    """
    x = plane.unsqueeze(1).to(torch.float32)
    padded = _ops.pad(x, 1, 1, 1, 1, "nearest")
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=plane.device)
    gx = _ops.correlate2d(padded, sobel_x)
    gy = _ops.correlate2d(padded, sobel_x.T)
    magnitude = gx.abs() + gy.abs()
    padded_mag = F.pad(magnitude, (1, 1, 1, 1))

    def neighbour(dy: int, dx: int) -> torch.Tensor:
        height, width = magnitude.shape[-2:]
        return padded_mag[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

    ax, ay = gx.abs(), gy.abs()
    tan22 = 0.4142135623730951
    horizontal = ay <= tan22 * ax
    vertical = ay > ax / tan22
    same_sign = (gx * gy) >= 0
    keep = torch.where(
        horizontal, (magnitude > neighbour(0, -1)) & (magnitude >= neighbour(0, 1)),
        torch.where(vertical, (magnitude > neighbour(-1, 0)) & (magnitude >= neighbour(1, 0)),
                    torch.where(same_sign, (magnitude > neighbour(-1, -1)) & (magnitude >= neighbour(1, 1)),
                                (magnitude > neighbour(-1, 1)) & (magnitude >= neighbour(1, -1)))))
    candidate = keep & (magnitude > low)
    edges = keep & (magnitude > high)
    while True:
        grown = _dilate3(edges) & candidate
        if torch.equal(grown, edges):
            break
        edges = grown
    return edges.squeeze(1)


def _dilate3(mask: torch.Tensor) -> torch.Tensor:
    """3×3 binary dilation of a bool mask …×H×W (zero border): two passes of three shifted ORs, ~10× cheaper than
    a float max-pool."""
    padded = F.pad(mask, (1, 1, 1, 1))
    rows = padded[..., :, :-2] | padded[..., :, 1:-1] | padded[..., :, 2:]
    return rows[..., :-2, :] | rows[..., 1:-1, :] | rows[..., 2:, :]


def truncated_distance(edges: torch.Tensor, limit: int = 20) -> torch.Tensor:
    """Euclidean distance to the nearest edge pixel, truncated at ``limit`` (exact within the limit): N×H×W."""
    big = float(limit + 1) ** 2
    height, width = edges.shape[-2:]
    # row pass in O(1) per pixel: distance to the previous and the next edge in the row (cumulative max/min)
    positions = torch.arange(width, device=edges.device, dtype=torch.float32).expand_as(edges)
    previous = torch.where(edges, positions, torch.full_like(positions, -1e9)).cummax(dim=-1).values
    following = torch.where(edges, positions, torch.full_like(positions, 1e9)).flip(-1).cummin(dim=-1).values.flip(-1)
    row_distance = torch.minimum(positions - previous, following - positions).clamp(max=limit + 1)
    # squared distances are small integers (≤ 2·(limit + 1)²): exact in int16, and half the memory traffic of float32
    best = (row_distance ** 2).to(torch.int16)
    column = F.pad(best.transpose(-1, -2), (limit, limit), value=int(big)).transpose(-1, -2).contiguous()
    squared = best.clone()
    for offset in range(-limit, limit + 1):
        if offset:
            torch.minimum(squared, column[..., limit + offset:limit + offset + height, :] + offset ** 2, out=squared)
    return squared.to(torch.float32).sqrt().clamp(max=float(limit))


def equalize_hist(plane: torch.Tensor) -> torch.Tensor:
    """OpenCV ``equalizeHist`` per image on integer planes N×H×W (0..255): lut[v] = round(255·(cdf(v) − h₀)/(n − h₀))
    with h₀ the count of the lowest occupied level."""
    count = plane.shape[0]
    flat = plane.reshape(count, -1).long()
    hist = torch.zeros(count, 256, dtype=torch.float64, device=plane.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    cdf = hist.cumsum(dim=1)
    first = torch.argmax((hist > 0).to(torch.int64), dim=1, keepdim=True)
    lowest = hist.gather(1, first)
    total = float(flat.shape[1])
    scale = 255.0 / (total - lowest).clamp_min(1.0)
    lut = torch.floor((cdf - lowest) * scale + 0.5).clamp(0, 255)
    lut = torch.where(torch.arange(256, device=plane.device) <= first, torch.zeros_like(lut), lut)
    return lut.gather(1, flat).reshape(plane.shape)


__all__ = ["FROST_PALETTE", "canny", "frost_palette_index", "equalize_hist", "frost_texture", "truncated_distance"]
