"""Batched JPEG compression in torch, following libjpeg(-turbo) as Pillow drives it (``Image.save(..., "JPEG",
quality=q)``: baseline, 4:2:0 chroma subsampling, IJG tables, "fancy" upsampling on decode).

Pipeline (ITU-T T.81 with the IJG library's conventions):

1. RGB → YCbCr with libjpeg's 16-bit fixed-point coefficients (jccolor.c), exactly in integer arithmetic;
2. Cb, Cr averaged over 2×2 with libjpeg's alternating rounding bias 1, 2 (jcsample.c ``h2v2_downsample``);
3. level shift −128, orthonormal 8×8 DCT-II per block, quantisation q = round-half-away(coef / Q) with the
   Annex-K tables scaled by the IJG quality rule (S = 5000/q for q < 50, else 200 − 2q; Q = clip(⌊(T·S + 50)/100⌋,
   1, 255));
4. dequantise, inverse DCT, +128, round and clip to 0..255;
5. chroma upsampled with libjpeg's triangular "fancy" filter (jdsample.c ``h2v2_fancy_upsample``: ¾ nearer + ¼
   farther sample per axis, rounding biases 8 / 7), YCbCr → RGB with the fixed-point tables of jdcolor.c.

Residual differences from Pillow: libjpeg uses a scaled *integer* DCT ("islow") where we use a float DCT, which
moves a coefficient across a rounding boundary now and then (±1 quantisation step in a few coefficients per image);
images whose sides are not multiples of 16 are edge-padded as a whole rather than per component.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._ops import pad

LUMINANCE_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
CHROMINANCE_TABLE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32).reshape(8, 8)

_SCALEBITS = 16
_ONE_HALF = 1 << (_SCALEBITS - 1)


def _fix(value: float) -> int:
    return int(value * (1 << _SCALEBITS) + 0.5)


def quality_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """IJG ``jpeg_set_quality(quality, force_baseline=TRUE)``: the scaled luminance and chrominance tables."""
    quality = min(max(int(quality), 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - quality * 2
    tables = []
    for base in (LUMINANCE_TABLE, CHROMINANCE_TABLE):
        table = (base * scale + 50) // 100
        tables.append(np.clip(table, 1, 255))
    return tables[0], tables[1]


def _dct_matrix() -> torch.Tensor:
    k = np.arange(8).reshape(-1, 1)
    n = np.arange(8).reshape(1, -1)
    matrix = np.cos((2 * n + 1) * k * math.pi / 16) * np.sqrt(2 / 8)
    matrix[0] /= np.sqrt(2)
    return torch.as_tensor(matrix, dtype=torch.float32)


def _rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """Integer RGB (N×3×H×W int32) → integer YCbCr, libjpeg jccolor.c."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    cbcr_offset = 128 << _SCALEBITS
    y = (_fix(0.29900) * r + _fix(0.58700) * g + _fix(0.11400) * b + _ONE_HALF) >> _SCALEBITS
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + cbcr_offset + _ONE_HALF - 1) >> _SCALEBITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + cbcr_offset + _ONE_HALF - 1) >> _SCALEBITS
    return torch.stack([y, cb, cr], dim=1)


def _ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """Integer YCbCr → RGB, libjpeg jdcolor.c tables (arithmetic right shifts), clipped to 0..255."""
    cb, cr = cb - 128, cr - 128
    red = y + ((_fix(1.40200) * cr + _ONE_HALF) >> _SCALEBITS)
    blue = y + ((_fix(1.77200) * cb + _ONE_HALF) >> _SCALEBITS)
    green = y + ((-_fix(0.34414) * cb + _ONE_HALF - _fix(0.71414) * cr) >> _SCALEBITS)
    return torch.stack([red, green, blue], dim=1).clamp(0, 255)


def _downsample_h2v2(channel: torch.Tensor) -> torch.Tensor:
    """2×2 average with libjpeg's alternating bias (1, 2, 1, 2, ... along each output row)."""
    summed = channel[:, 0::2, 0::2] + channel[:, 0::2, 1::2] + channel[:, 1::2, 0::2] + channel[:, 1::2, 1::2]
    bias = torch.ones(summed.shape[-1], dtype=summed.dtype, device=summed.device)
    bias[1::2] = 2
    return (summed + bias) >> 2


def _upsample_h2v2_fancy(channel: torch.Tensor) -> torch.Tensor:
    """libjpeg's triangular 2× upsampling in both directions with its integer rounding."""
    above = torch.cat([channel[:, :1], channel[:, :-1]], dim=1)
    below = torch.cat([channel[:, 1:], channel[:, -1:]], dim=1)
    rows = torch.stack([3 * channel + above, 3 * channel + below], dim=2)  # N×h×2×w: output rows 2i, 2i+1
    rows = rows.reshape(channel.shape[0], -1, channel.shape[-1])
    left = torch.cat([rows[..., :1], rows[..., :-1]], dim=-1)
    right = torch.cat([rows[..., 1:], rows[..., -1:]], dim=-1)
    even = (3 * rows + left + 8) >> 4
    odd = (3 * rows + right + 7) >> 4
    return torch.stack([even, odd], dim=-1).reshape(rows.shape[0], rows.shape[1], -1)


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    n, height, width = plane.shape
    return plane.reshape(n, height // 8, 8, width // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(blocks: torch.Tensor) -> torch.Tensor:
    n, rows, cols = blocks.shape[:3]
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, rows * 8, cols * 8)


def _code_plane(plane: torch.Tensor, table: np.ndarray, dct: torch.Tensor) -> torch.Tensor:
    """Quantise and reconstruct one component (integer N×h×w, sides multiples of 8) → integer samples."""
    blocks = _blocks(plane.to(torch.float32) - 128.0)
    coefficients = dct @ blocks @ dct.T
    quant = torch.as_tensor(table, dtype=torch.float32, device=plane.device)
    ratio = coefficients / quant
    levels = torch.sign(ratio) * torch.floor(ratio.abs() + 0.5)  # round half away from zero, as libjpeg
    restored = dct.T @ (levels * quant) @ dct
    return torch.floor(_unblocks(restored) + 128.0 + 0.5).clamp(0, 255).to(torch.int32)


def jpeg_compress(images: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of RGB images (N×3×H×W in [0, 1]) at IJG ``quality``; returns float images in [0, 1].

    Inputs are first quantised to 8 bits (round half up), as Pillow stores them.
    """
    n, _, height, width = images.shape
    pad_h, pad_w = (-height) % 16, (-width) % 16
    if pad_h or pad_w:
        images = pad(images, 0, pad_h, 0, pad_w, "nearest")
    rgb = torch.floor(images.to(torch.float64) * 255.0 + 0.5).clamp(0, 255).to(torch.int32)
    ycc = _rgb_to_ycc(rgb)
    luma_table, chroma_table = quality_tables(quality)
    dct = _dct_matrix().to(images.device)
    luma = _code_plane(ycc[:, 0], luma_table, dct)
    chroma = [_code_plane(_downsample_h2v2(ycc[:, index]), chroma_table, dct) for index in (1, 2)]
    cb, cr = (_upsample_h2v2_fancy(plane) for plane in chroma)
    out = _ycc_to_rgb(luma, cb, cr)[..., :height, :width]
    return out.to(images.dtype) / 255.0


__all__ = ["CHROMINANCE_TABLE", "LUMINANCE_TABLE", "jpeg_compress", "quality_tables"]
