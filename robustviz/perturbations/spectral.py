"""Spectral bands (I-ASIDE) and the band-removal perturbations built on them.

An image's centred 2-D Fourier spectrum (per channel) is split into ``M`` nested square rings ("bands"): band 0
holds the lowest frequencies, band ``M − 1`` the highest. :func:`keep_bands` keeps a set of bands (a *coalition*)
and fills the others with zeros, seeded Gaussian noise or another image's spectrum, then maps back to pixel space
(inverse FFT, modulus, per-image min–max to [0, 1]) — the construction of I-ASIDE (Zhang et al., arXiv:2408.01139).
The I-ASIDE metric (:mod:`robustviz.metrics.spectral`) evaluates the model on such images for all ``2^M`` coalitions;
the ``lowpass`` and ``highpass`` perturbations remove the highest or lowest bands.

How a frequency is assigned to a band. Along an axis of length ``n`` the shifted spectrum has indices
``j = 0 … n−1`` and geometric centre ``c = (n − 1)/2``; the integer ``a = |2j − (n − 1)| = 2|j − c|`` is the
distance from that centre in half-index units. The normalised Chebyshev radius of frequency ``(u, v)`` in an
``H × W`` image is ``ρ = max(a_u / H, a_v / W)`` ∈ [0, 1) and its band is ``⌊M·ρ⌋``. For a square image this reads
"band i covers ``dim·i/M ≤ r < dim·(i+1)/M``" with ``dim = H = W`` and ``r = 2·(Chebyshev distance from c)``; for a
non-square image each axis is measured against its own length (``dim`` is ``H`` along y and ``W`` along x), so a band
covers the same fraction of every axis' frequency range. For odd sizes ``c`` is the DC index; for even sizes ``c``
lies half an index before DC (``n/2``), which is exactly the square the reference code slices
(``[(dim − r)//2, (dim − r)//2 + r)`` with ``r = int(dim·f)``) whenever ``dim·(i+1)/M`` floors to an even number —
e.g. every band for ``dim`` = 32 or 224 with ``M`` = 8. Every frequency lies in exactly one band; a size too small to
give every band at least one frequency (roughly ``min(H, W) < 2M``) is rejected.

Only :mod:`torch`, :mod:`robustviz.rng` and :mod:`robustviz.validation` are used, so the metric layer can import it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..registry import register
from ..rng import normal, substream
from ..validation import InputError, check_images
from .base import Perturbation

FILLS = ("zero", "noise", "image")
#: Standard deviation of the real and of the imaginary part of the noise spectrum (I-ASIDE's "gaussian" maskout).
NOISE_STD = 0.5


def band_index(height: int, width: int, n_bands: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Band of every frequency of the centred (``fftshift``-ed) spectrum, an ``H×W`` int64 tensor in ``0..M−1``."""
    if n_bands < 1:
        raise InputError(f"n_bands must be a positive integer, got {n_bands}")
    dist_y = (2 * torch.arange(height, device=device) - (height - 1)).abs()  # 2·|j − c| along y
    dist_x = (2 * torch.arange(width, device=device) - (width - 1)).abs()
    band_y = (dist_y * n_bands) // height  # ⌊M·a/n⌋ in exact integer arithmetic
    band_x = (dist_x * n_bands) // width
    return torch.maximum(band_y[:, None], band_x[None, :])


def band_masks(height: int, width: int, n_bands: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``M×H×W`` boolean masks of the square-ring bands of a centred spectrum (band 0 = lowest frequencies).

    The masks partition the spectrum; an image too small to give every band a frequency raises :class:`InputError`.
    """
    index = band_index(height, width, n_bands, device)
    masks = index[None] == torch.arange(n_bands, device=index.device)[:, None, None]
    empty = [band for band in range(n_bands) if not bool(masks[band].any())]
    if empty:
        raise InputError(f"a {height}×{width} spectrum cannot be split into {n_bands} bands (bands {empty} would be "
                         f"empty); use at most {max(1, min(height, width) // 2)} bands or larger images")
    return masks


def centred_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Per-channel 2-D FFT of ``N×C×H×W`` images with the zero frequency moved to the centre."""
    return torch.fft.fftshift(torch.fft.fft2(images, dim=(-2, -1)), dim=(-2, -1))


def noise_spectrum(seeds: torch.Tensor, shape: Sequence[int], device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Complex Gaussian spectrum (real and imaginary parts N(0, 0.5²)) of shape ``(N, *shape)`` from per-sample
    seeds, so a sample's fill does not depend on its batch."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    real = normal(substream(seeds, "spectral-fill-real"), shape, device, dtype) * NOISE_STD
    imag = normal(substream(seeds, "spectral-fill-imag"), shape, device, dtype) * NOISE_STD
    return torch.complex(real, imag)


def _coalition_matrix(keep: object, n_bands: int | None) -> tuple[torch.Tensor, bool]:
    """Coalitions as a ``K×M`` bool tensor, and whether a single ``(M,)`` coalition was given."""
    keep = torch.as_tensor(np.asarray(keep) if not isinstance(keep, torch.Tensor) else keep)
    if keep.dtype != torch.bool:
        if keep.is_floating_point() or not bool(((keep == 0) | (keep == 1)).all()):
            raise InputError(f"keep must be a boolean mask over bands (shape (M,) or (K, M)), got dtype {keep.dtype}")
        keep = keep.bool()
    single = keep.ndim == 1
    if keep.ndim not in (1, 2) or keep.shape[-1] == 0:
        raise InputError(f"keep must have shape (M,) for one coalition or (K, M) for K coalitions, got "
                         f"{tuple(keep.shape)}")
    if n_bands is not None and keep.shape[-1] != n_bands:
        raise InputError(f"keep has {keep.shape[-1]} bands but n_bands={n_bands}")
    return keep.reshape(-1, keep.shape[-1]).cpu(), single


def fill_spectrum(images: torch.Tensor, fill: str, *, seeds: torch.Tensor | None = None,
                  fill_images: torch.Tensor | None = None) -> torch.Tensor | None:
    """The centred spectrum that replaces removed bands (``None`` for zeros)."""
    if fill not in FILLS:
        raise InputError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "zero":
        return None
    if fill == "noise":
        if seeds is None:
            raise InputError("fill='noise' needs seeds= (one int64 per image, robustviz.rng.derive_seeds)")
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if seeds.shape[0] != images.shape[0]:
            raise InputError(f"got {seeds.shape[0]} seeds for {images.shape[0]} images; pass one seed per image")
        return noise_spectrum(seeds, images.shape[1:], images.device, images.dtype)
    if fill_images is None:
        raise InputError("fill='image' needs fill_images= (images whose spectrum fills the removed bands, same shape)")
    check_images(fill_images, name="fill_images")
    if fill_images.shape != images.shape:
        raise InputError(f"fill_images must have the shape of images {tuple(images.shape)}, got "
                         f"{tuple(fill_images.shape)}")
    return centred_spectrum(fill_images.to(images.device, images.dtype))


def _to_pixels(spectra: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """Inverse FFT, modulus and per-image min–max of ``K×N×C×H×W`` centred spectra; empty coalitions → zeros."""
    pixels = torch.fft.ifft2(torch.fft.ifftshift(spectra, dim=(-2, -1)), dim=(-2, -1)).abs()
    flat = pixels.flatten(2)
    low = flat.amin(-1)[..., None, None, None]
    span = (flat.amax(-1) - flat.amin(-1))[..., None, None, None]
    tiny = torch.finfo(pixels.dtype).eps * 16
    # A constant result (e.g. only the DC term survives) has no contrast to stretch: it becomes the zero image.
    out = torch.where(span > tiny, (pixels - low) / span.clamp_min(tiny), torch.zeros_like(pixels))
    out[empty.to(out.device)] = 0.0
    return out.clamp_(0.0, 1.0)


def keep_bands(images: torch.Tensor, keep: object, *, fill: str = "zero", seeds: torch.Tensor | None = None,
               fill_images: torch.Tensor | None = None, spectrum: torch.Tensor | None = None,
               fill_values: torch.Tensor | None = None) -> torch.Tensor:
    """Images that keep only the bands in ``keep`` (I-ASIDE's spectral coalition filter).

    ``keep`` is a bool mask of shape ``(M,)`` (one coalition → ``N×C×H×W``) or ``(K, M)`` (``K`` coalitions →
    ``K×N×C×H×W``). Removed bands are filled with zeros (``fill="zero"``), a complex Gaussian spectrum with
    σ = 0.5 per part drawn from ``seeds`` (``"noise"``), or the spectrum of ``fill_images`` (``"image"``). The
    result is ``|IFFT|`` min–max scaled to [0, 1] per image; the empty coalition gives the zero image whatever the
    fill (as in I-ASIDE). ``spectrum``/``fill_values`` let callers that filter the same images many times pass the
    precomputed :func:`centred_spectrum` and :func:`fill_spectrum`.
    """
    check_images(images)
    coalitions, single = _coalition_matrix(keep, None)
    masks = band_masks(images.shape[-2], images.shape[-1], coalitions.shape[-1], images.device)
    if spectrum is None:
        spectrum = centred_spectrum(images)
    if fill_values is None:
        fill_values = fill_spectrum(images, fill, seeds=seeds, fill_images=fill_images)
    kept = (coalitions.to(masks.device).float() @ masks.flatten(1).float()).reshape(-1, *masks.shape[1:]) > 0.5
    kept = kept[:, None, None]  # K×1×1×H×W against N×C×H×W spectra
    replacement = torch.zeros((), dtype=spectrum.dtype, device=spectrum.device) if fill_values is None else fill_values
    filtered = torch.where(kept, spectrum[None], replacement)
    out = _to_pixels(filtered, ~coalitions.any(-1))
    return out[0] if single else out


def _bands_removed(n_bands: int, fractions: Sequence[float]) -> dict[int, int]:
    """Severity → number of bands removed, from fractions of ``M`` (at least 1, at most ``M − 1``)."""
    return {severity: int(min(max(round(fraction * n_bands), 1), n_bands - 1))
            for severity, fraction in enumerate(fractions, start=1)}


class _BandRemoval(Perturbation):
    """Shared machinery of :class:`LowPass` and :class:`HighPass`."""

    family = "spectral"
    #: Fraction of the ``M`` bands removed at severities 1..5 (subclasses set it).
    removed_fractions: tuple[float, ...] = ()

    def __init__(self, n_bands: int = 8, fill: str = "zero"):
        if not isinstance(n_bands, int) or n_bands < 2:
            raise InputError(f"{self.name}: n_bands must be an int ≥ 2, got {n_bands!r}")
        if fill not in ("zero", "noise"):
            raise InputError(f"{self.name}: fill must be 'zero' or 'noise' (a per-sample perturbation cannot borrow "
                             f"another image's spectrum), got {fill!r}")
        self.n_bands = n_bands
        self.fill = fill
        self.removed = _bands_removed(n_bands, self.removed_fractions)

    def kept_bands(self, severity: int) -> torch.Tensor:
        """The ``(M,)`` bool coalition kept at ``severity`` ≥ 1."""
        raise NotImplementedError

    def apply(self, images: torch.Tensor, severity: int, *, seeds: torch.Tensor, model=None,
              labels=None) -> torch.Tensor:
        return keep_bands(images, self.kept_bands(severity), fill=self.fill, seeds=seeds)


@register("perturbation", "lowpass")
class LowPass(_BandRemoval):
    """Remove the highest spectral bands. With M = 8 severities 1..5 remove the top 2, 3, 4, 5, 6 bands (keep
    bands 0..5, 0..4, 0..3, 0..2, 0..1); for other M the removed count is round(f·M) with
    f = 0.25, 0.375, 0.5, 0.625, 0.75, clipped to 1..M−1."""

    name = "lowpass"
    removed_fractions = (0.25, 0.375, 0.5, 0.625, 0.75)

    def kept_bands(self, severity: int) -> torch.Tensor:
        return torch.arange(self.n_bands) < self.n_bands - self.removed[severity]


@register("perturbation", "highpass")
class HighPass(_BandRemoval):
    """Remove the lowest spectral bands (band 0 holds the mean colour). With M = 8 severities 1..5 remove bands
    0, 0..1, 0..2, 0..3, 0..4; for other M the removed count is round(f·M) with f = 0.125, 0.25, 0.375, 0.5, 0.625,
    clipped to 1..M−1."""

    name = "highpass"
    removed_fractions = (0.125, 0.25, 0.375, 0.5, 0.625)

    def kept_bands(self, severity: int) -> torch.Tensor:
        return torch.arange(self.n_bands) >= self.removed[severity]


__all__ = ["FILLS", "HighPass", "LowPass", "NOISE_STD", "band_index", "band_masks", "centred_spectrum",
           "fill_spectrum", "keep_bands", "noise_spectrum"]
