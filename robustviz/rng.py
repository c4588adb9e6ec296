"""Counter-based, per-sample random numbers that do not depend on batching or device.

Every random draw in robustviz (noise, RISE masks, sensitivity perturbations, ...) is a pure function of one int64
seed per sample and the element's index, computed with a SplitMix64 hash in int64 torch arithmetic. So a sample's
noise is identical whether it is drawn alone, in a batch of 64, after a resume, on another worker or on CUDA
(bit-identical integers; floats identical on CPU, within an ulp on CUDA for the transcendental transforms).

Seeds come from :func:`derive_seeds` (run seed, sample ids, and any string/int keys such as the perturbation
name and severity). Like ``registry`` and ``spec``, this module imports nothing of robustviz.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """Reinterpret an unsigned 64-bit constant as int64 (torch has no uint64 arithmetic)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shr(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic on negative numbers)."""
    return (values >> bits) & ((1 << (64 - bits)) - 1)


def _mix(values: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser; int64 multiplication wraps modulo 2^64 on CPU and CUDA alike.

    Works in place on one copy (these arrays hold one hash per random number drawn, so memory traffic matters)."""
    return _mix_(values.clone())


def _mix_(values: torch.Tensor) -> torch.Tensor:
    """:func:`_mix` without the copy, for a freshly allocated tensor the caller owns."""
    for shift, multiplier in ((30, _MIX1), (27, _MIX2), (31, None)):
        shifted = values >> shift
        shifted &= (1 << (64 - shift)) - 1
        values ^= shifted
        if multiplier is not None:
            values *= multiplier
    return values


def key_hash(*keys: object) -> int:
    """A stable int64 for a tuple of keys (strings, ints, floats) — unlike ``hash()``, identical across processes."""
    digest = hashlib.blake2b(repr(tuple(keys)).encode(), digest_size=8).digest()
    return _signed(int.from_bytes(digest, "little"))


def derive_seeds(run_seed: int, sample_ids: Sequence[int] | torch.Tensor, *keys: object) -> torch.Tensor:
    """One int64 seed per sample from (run seed, sample id, keys...), e.g. keys = (perturbation, severity).

    Returns a CPU int64 tensor of shape ``(len(sample_ids),)``.
    """
    ids = torch.as_tensor(sample_ids, dtype=torch.int64).reshape(-1)
    base = key_hash(int(run_seed), *keys)
    return _mix(_mix(ids * _GOLDEN + base) + _GOLDEN)


def substream(seeds: torch.Tensor, *keys: object) -> torch.Tensor:
    """Independent per-sample seeds for a named sub-draw (e.g. ``substream(seeds, "mask")``)."""
    return _mix(torch.as_tensor(seeds, dtype=torch.int64) + key_hash(*keys))


def random_bits(seeds: torch.Tensor, shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """int64 hashes of shape ``(N, *shape)``: element ``i`` of sample ``n`` depends only on ``seeds[n]`` and ``i``."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64).to(device).reshape(-1, 1)
    count = math.prod(shape)
    counter = torch.arange(1, count + 1, dtype=torch.int64, device=seeds.device).unsqueeze(0)
    state = _mix(seeds) + counter * _GOLDEN
    return _mix_(state).reshape(seeds.shape[0], *shape)


def uniform(seeds: torch.Tensor, shape: Sequence[int], device: torch.device | str | None = None,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform numbers in [0, 1) on a 2^-24 grid (exact in float32), shape ``(N, *shape)``."""
    bits = random_bits(seeds, shape, device)
    return (_shr(bits, 40).to(dtype)) * (1.0 / (1 << 24))


def normal(seeds: torch.Tensor, shape: Sequence[int], device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal numbers, shape ``(N, *shape)``: Box–Muller on one 64-bit hash per pair of outputs
    (24 bits for the radius, 24 for the angle), using both the cosine and the sine branch."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64)
    count = math.prod(shape)
    pairs = (count + 1) // 2
    bits = random_bits(substream(seeds, "normal"), (pairs,), device)
    scale = 1.0 / (1 << 24)
    u1 = _shr(bits, 40).to(torch.float32) * scale
    u2 = ((bits >> 16) & 0xFFFFFF).to(torch.float32) * scale
    radius = torch.sqrt(-2.0 * torch.log1p(-u1))  # 1 - u1 lies in (0, 1]: no log(0)
    angle = (2.0 * math.pi) * u2
    values = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)[:, :count]
    return values.reshape(seeds.shape[0], *shape).to(dtype)


def randint(seeds: torch.Tensor, high: int, shape: Sequence[int] = (),
            device: torch.device | str | None = None) -> torch.Tensor:
    """Integers in [0, high) per sample, shape ``(N, *shape)`` (modulo bias below 2^-40 for high < 2^24)."""
    bits = random_bits(seeds, tuple(shape) or (1,), device)
    values = _shr(bits, 1) % int(high)
    return values if shape else values[:, 0]


def generator(seed: int | torch.Tensor, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` seeded from one sample seed, for draws without a counter-based form (e.g. Poisson).

    Use one per sample; results then do not depend on batching, but CPU and CUDA streams differ.
    """
    gen = torch.Generator(device=device or "cpu")
    gen.manual_seed(int(seed) & ((1 << 63) - 1))
    return gen


__all__ = ["derive_seeds", "generator", "key_hash", "normal", "randint", "random_bits", "substream", "uniform"]
