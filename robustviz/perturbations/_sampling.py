"""Per-sample seeded random fields for the corruptions: Poisson counts, salt-and-pepper masks, plasma fractals.

All draws come from :mod:`robustviz.rng` (counter-based, one seed per image), so an image's noise is the same in
any batch, at any batch size and after a resume.
"""

from __future__ import annotations

import functools
import math

import torch

from .. import rng


_TWO_PI = 2.0 * math.pi
_UNIT = 1.0 / (1 << 24)


def _uniform_pairs(seeds: torch.Tensor, count: int, device, keys: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent uniform [0, 1) fields N×count (float32, 2⁻²⁴ grid) from ONE 64-bit hash per element: the
    top and the next 24 bits of :func:`robustviz.rng.random_bits` (half the hashing of two ``rng.uniform`` calls)."""
    bits = rng.random_bits(rng.substream(seeds, *keys), (count,), device)
    high = ((bits >> 40) & 0xFFFFFF).to(torch.float32) * _UNIT
    low = ((bits >> 16) & 0xFFFFFF).to(torch.float32) * _UNIT
    return high, low


def uniform_like(seeds: torch.Tensor, reference: torch.Tensor, *keys: object) -> torch.Tensor:
    """Uniform [0, 1) numbers shaped like ``reference`` (N×...), from the sub-stream ``keys`` of each seed."""
    return rng.uniform(rng.substream(seeds, *keys), reference.shape[1:], reference.device)


def uniform_pair_like(seeds: torch.Tensor, reference: torch.Tensor, *keys: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent uniform fields shaped like ``reference`` from one hash per element."""
    shape = reference.shape[1:]
    first, second = _uniform_pairs(seeds, math.prod(shape), reference.device, keys)
    return first.reshape(-1, *shape), second.reshape(-1, *shape)


def normal_like(seeds: torch.Tensor, reference: torch.Tensor, *keys: object) -> torch.Tensor:
    """Standard normal numbers shaped like ``reference`` (N×...), from the sub-stream ``keys``.

    Box–Muller on both outputs: one 64-bit hash gives two uniforms (u₁, u₂) and two normals
    √(−2 ln(1 − u₁))·(cos 2πu₂, sin 2πu₂) — a quarter of the hashing of :func:`robustviz.rng.normal`.
    Element ``i`` of a sample depends only on its seed and ``i`` (cosines fill the first half, sines the second).
    """
    shape = reference.shape[1:]
    total = math.prod(shape)
    half = (total + 1) // 2
    u1, u2 = _uniform_pairs(seeds, half, reference.device, ("normal",) + tuple(keys))
    radius = torch.sqrt(-2.0 * torch.log1p(-u1))
    angle = _TWO_PI * u2
    values = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)[:, :total]
    return values.reshape(-1, *shape)


def poisson(intensity: torch.Tensor, scale: float, seeds: torch.Tensor, *keys: object) -> torch.Tensor:
    """Exact Poisson(λ) counts with λ = scale·intensity (in float64), shaped like ``intensity``, one seed per
    leading index, by CDF inversion.

    u ~ U[0, 1) per element; the count is the smallest k with F(k) > u. When few rates are distinct (8-bit images
    give at most 256 per photon count) the CDFs are tabulated once per rate and every count is a guide-table lookup
    plus a step or two; otherwise the search starts at the mode ⌊λ⌋ with F(⌊λ⌋) = Q(⌊λ⌋ + 1, λ) (the
    regularised incomplete gamma function) and walks up or down with p(k+1) = p(k)·λ/(k+1), keeping only the
    elements still searching. Both give the same counts; each count depends only on its own u and λ. Float32
    images in [0, 1] take :func:`_poisson_unit`, which gives the same counts again.
    """
    rates = intensity
    u32 = uniform_like(seeds, rates, "poisson", *keys).reshape(-1)
    counts = _poisson_unit(intensity, float(scale), u32)
    if counts is not None:
        return counts.reshape(rates.shape).to(rates.dtype)
    rate = (intensity.to(torch.float64) * float(scale)).clamp_min(0.0)
    u = u32.to(torch.float64)
    lam = rate.reshape(-1)
    distinct, inverse = _distinct_rates(lam)
    if distinct is not None:
        counts = _poisson_by_table(distinct, inverse, u)
    else:
        counts = _poisson_by_walk(lam, u)
    return counts.reshape(rates.shape).to(rates.dtype)


def _unit_floats(intensity: torch.Tensor, scale: float) -> torch.Tensor | None:
    """``intensity`` flattened when the table paths apply (float32 in [0, 1], a positive scale), else None."""
    if intensity.dtype != torch.float32 or scale <= 0 or not intensity.numel():
        return None
    flat = intensity.reshape(-1)
    low, high = torch.aminmax(flat)
    return flat if float(low) >= 0.0 and float(high) <= 1.0 else None


def _cdf_tables(rates: torch.Tensor) -> tuple[int, torch.Tensor]:
    """(top, F) with F[r, k] = P(Poisson(rates[r]) ≤ k) for k = 0..top, top = λmax + 12√λmax + 20 (the tail beyond
    is below 1e-25), by cumulative sums of the pmf (float64)."""
    peak = float(rates.max())
    top = int(peak + 12.0 * peak ** 0.5 + 20.0)
    k = torch.arange(top + 1, dtype=torch.float64, device=rates.device)
    lam = rates.reshape(-1, 1)
    return top, torch.exp(torch.special.xlogy(k, lam) - lam - torch.lgamma(k + 1.0)).cumsum(dim=1).clamp(max=1.0)


#: Intensity × uniform cells of the :func:`_poisson_unit` table (powers of two, so a float32 intensity's cell and a
#: 2^-24-grid uniform's cell are exact): 2048 × 1024 int16 counts, 4 MB per photon count.
_CELLS_X, _CELLS_U = 2048, 1024


@functools.lru_cache(maxsize=16)
def _cell_table(scale: float, device: str) -> torch.Tensor:
    """The count shared by every (intensity, u) in each cell, or −1 where the count changes inside the cell.

    Counts rise with λ and with u, so over the cell x ∈ [j/X, (j+1)/X), u ∈ [i/U, (i+1)/U) the smallest is the
    count at (λ = scale·j/X, u = i/U) and the largest the count at (λ = scale·(j+1)/X, u = (i+1)/U − 2^-24);
    where they agree, that is the count of every draw in the cell.
    """
    top, cdf = _cdf_tables(torch.arange(_CELLS_X + 1, dtype=torch.float64, device=device) / _CELLS_X * scale)
    first = torch.arange(_CELLS_U, dtype=torch.float64, device=device) / _CELLS_U
    last = first + (1.0 / _CELLS_U - 2.0 ** -24)
    low = torch.searchsorted(cdf[:-1].contiguous(), first.expand(_CELLS_X, -1).contiguous(), right=True)
    high = torch.searchsorted(cdf[1:].contiguous(), last.expand(_CELLS_X, -1).contiguous(), right=True)
    return torch.where((low == high) & (high <= top), low, -1).to(torch.int16).reshape(-1)


def _poisson_unit(intensity: torch.Tensor, scale: float, u: torch.Tensor) -> torch.Tensor | None:
    """Counts for float32 intensities in [0, 1] (None for other inputs): one lookup in :func:`_cell_table` for
    most draws (~95 % at 60 photons, more at fewer), the exact search of :func:`_poisson_8bit` or the walk for the
    draws whose cell holds a change of count. The same counts as the walk; about a tenth of the cost of the
    exact search on every draw at 224 px, and the lookup is a few elementwise passes that use every thread.
    """
    flat = _unit_floats(intensity, scale)
    if flat is None or scale > 1024:
        return None
    table = _cell_table(scale, str(flat.device))
    key = torch.floor(flat * _CELLS_X).clamp_(max=_CELLS_X - 1).mul_(_CELLS_U).add_(torch.floor(u * _CELLS_U))
    counts = table[key.long()].to(torch.float32)  # cell index < 2^21: exact in float32
    unsettled = torch.nonzero(counts < 0).squeeze(1)
    if unsettled.numel():
        exact = _poisson_8bit(flat[unsettled], scale, u[unsettled])
        if exact is None:
            exact = _poisson_by_walk(flat[unsettled].to(torch.float64) * scale, u[unsettled].to(torch.float64))
        if exact.dtype != torch.float32:
            counts = counts.to(exact.dtype)
        counts[unsettled] = exact
    return counts


#: Bins of the cached 8-bit guide tables: a u's bin settles its count outright unless a CDF step falls inside the
#: bin (a few % of draws at 4096 bins), so most counts are one lookup.
_BINS_8BIT = 4096


@functools.lru_cache(maxsize=16)
def _tables_8bit(scale: float, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the 256 rates λ_k = scale·f32(k/255): (rates, CDF steps with a sentinel, count at each bin's lower edge,
    whether the count may change inside the bin)."""
    levels = (torch.arange(256, dtype=torch.float32, device=device) / 255.0).to(torch.float64)
    rates = levels * scale
    top, cdf = _cdf_tables(rates)
    edges = (torch.arange(_BINS_8BIT + 1, dtype=torch.float64, device=device) / _BINS_8BIT).expand(256, -1)
    guide = torch.searchsorted(cdf, edges.contiguous(), right=True)
    steps = torch.cat([cdf, cdf.new_full((256, 1), 2.0)], dim=1).reshape(-1)
    start = guide[:, :-1].reshape(-1)
    return rates, steps, start, (guide[:, 1:] != guide[:, :-1]).reshape(-1)


def _poisson_8bit(intensity: torch.Tensor, scale: float, u: torch.Tensor) -> torch.Tensor | None:
    """Counts for float32 intensities in [0, 1] from cached per-rate tables (None for other inputs).

    On the 8-bit grid k/255 each count is read from its level's table: the count at u's bin edge, then steps up
    while F(count) ≤ u for the few u whose bin holds a CDF step. Off the grid (e.g. resized photos) the rate lies
    between two levels' rates, and as F(k; λ) falls with λ, the counts at the two levels bracket the exact count:
    where they agree (all but about scale/255 of the draws) that is the count, and the rest test F(k; λ) ≤ u for
    the k between the two (usually one). Same counts as :func:`_poisson_by_table` and :func:`_poisson_by_walk`
    (the CDFs are computed in float64 by different formulas, so a u within ~1e-15 of a CDF value could round the
    other way; u lies on a 2^-24 grid, and the tests find no difference).
    """
    flat = _unit_floats(intensity, scale)
    if flat is None:
        return None
    tables = _tables_8bit(scale, str(flat.device))
    index = torch.round(flat * 255.0).long()
    levels = torch.arange(256, dtype=torch.float32, device=flat.device) / 255.0
    if torch.equal(levels[index], flat):
        return _table_counts(tables, index, u)
    if scale > 64.0:  # brackets rarely agree at high photon counts: the caller's general path is faster
        return None
    rates = tables[0]
    lam = flat.to(torch.float64) * scale
    below = torch.floor(flat * 255.0).long().clamp_(0, 254)
    below -= (rates[below] > lam).long()  # float rounding: make rates[below] ≤ λ ≤ rates[below + 1]
    below += (rates[below + 1] < lam).long()
    below.clamp_(0, 254)
    counts = _table_counts(tables, below, u)
    # the upper level's count exceeds ``counts`` iff its F(counts) ≤ u: one gather, not a second lookup
    steps, width = tables[1], tables[1].numel() // 256
    row = ((below + 1) * width + counts.long().clamp(max=width - 1))
    differ = torch.nonzero((steps[row] <= u) & (rates[below] != lam)).squeeze(1)
    if differ.numel():  # count = lower + #{k ≥ lower : F(k; λ) ≤ u}, F(k; λ) = Q(k + 1, λ); usually one test
        counts = counts.to(torch.float64)
        found, lam_d, u_d = counts[differ], lam[differ], u[differ].to(torch.float64)
        active = torch.arange(differ.numel(), device=flat.device)
        while active.numel():
            active = active[torch.special.gammaincc(found[active] + 1.0, lam_d[active]) <= u_d[active]]
            found[active] += 1
        counts[differ] = found
    return counts


def _table_counts(tables: tuple[torch.Tensor, ...], index: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Counts of the level-``index`` rates for uniforms ``u`` (see :func:`_poisson_8bit`)."""
    rates, steps, start, ambiguous = tables
    width = steps.numel() // 256  # top + 2
    key = index * _BINS_8BIT + (u * _BINS_8BIT).long()  # u on a 2^-24 grid: the bin is exact
    counts = start[key]
    active = torch.nonzero(ambiguous[key]).squeeze(1)
    if active.numel():
        u_active, row = u[active].to(torch.float64), index[active] * width
        found = counts[active]
        searching = torch.arange(active.numel(), device=index.device)
        while searching.numel():
            searching = searching[steps[row[searching] + found[searching]] <= u_active[searching]]
            found[searching] += 1
        counts[active] = found
    beyond = torch.nonzero(counts > width - 2).squeeze(1)
    counts = counts.to(torch.float32 if not beyond.numel() else torch.float64)  # counts ≤ 2^24 are exact
    if beyond.numel():
        counts[beyond] = _poisson_by_walk(rates[index[beyond]], u[beyond].to(torch.float64))
    return counts


def _distinct_rates(lam: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(distinct rates, index of each element) when there are few: rates of 8-bit images (λ = c·k/255) are
    recognised in O(1) per element, others go through ``torch.unique``; (None, None) when most rates differ."""
    peak = float(lam.max()) if lam.numel() else 0.0
    if peak > 0:
        levels = torch.arange(256, dtype=torch.float32, device=lam.device) / 255.0
        candidates = levels.to(torch.float64) * peak  # rates of an 8-bit image whose brightest value is 255
        index = torch.round(lam / peak * 255.0).clamp(0, 255).long()
        if torch.equal(candidates[index], lam):
            return candidates, index
    if lam.numel() >= 4096:
        sample = lam[:: max(1, lam.numel() // 4096)]
        if torch.unique(sample).numel() * 8 > sample.numel():
            return None, None
    distinct, inverse = torch.unique(lam, return_inverse=True)
    return (distinct, inverse) if distinct.numel() * 8 <= lam.numel() else (None, None)


#: Bins of the guide tables (Chen & Asau 1974) that start each table search near its answer; a power of two, so
#: the bin of a 2^-24-grid uniform is exact.
_GUIDE_BINS = 256


def _poisson_by_table(distinct: torch.Tensor, inverse: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Counts = #{k : F_λ(k) ≤ u}, from the tabulated CDFs of the distinct rates.

    Tables reach λ + 12√λ + 20 (tail < 1e-25); the rare u beyond it is finished by the walk. A guide table per
    rate holds the answer for each ``u = j/G``; a query starts at its bin's entry and steps up while F(k) ≤ u —
    rarely more than a step, and each step is one gather for the elements still searching (4–5× faster than one
    binary search over all tables at once, which misses the cache).
    """
    top, cdf = _cdf_tables(distinct)
    count = distinct.numel()
    levels = torch.arange(_GUIDE_BINS, dtype=torch.float64, device=distinct.device) / _GUIDE_BINS
    guide = torch.searchsorted(cdf, levels.expand(count, -1).contiguous(), right=True).reshape(-1)
    # a sentinel 2 > u after each table stops the steps at k = top + 1 (the answer lies beyond the table)
    steps = torch.cat([cdf, cdf.new_full((count, 1), 2.0)], dim=1).reshape(-1)
    row = inverse * (top + 2)
    counts = guide[inverse * _GUIDE_BINS + (u * _GUIDE_BINS).long()]
    active = torch.nonzero(steps[row + counts] <= u).squeeze(1)
    while active.numel():
        counts[active] += 1
        active = active[steps[row[active] + counts[active]] <= u[active]]
    counts = counts.to(torch.float64)
    beyond = torch.nonzero(counts > top).squeeze(1)
    if beyond.numel():
        counts[beyond] = _poisson_by_walk(distinct[inverse[beyond]], u[beyond])
    return counts


def _poisson_by_walk(lam: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Counts by walking from the mode (see :func:`poisson`)."""
    k = torch.floor(lam)
    pmf = torch.exp(torch.special.xlogy(k, lam) - lam - torch.lgamma(k + 1.0))
    cdf = torch.special.gammaincc(k + 1.0, lam)
    active = torch.nonzero(u >= cdf).squeeze(1)
    while active.numel():  # walk up while F(k) <= u
        k_a = k[active] + 1.0
        pmf_a = pmf[active] * lam[active] / k_a
        cdf_a = cdf[active] + pmf_a
        k[active], pmf[active], cdf[active] = k_a, pmf_a, cdf_a
        active = active[(u[active] >= cdf_a) & (pmf_a > 0)]
    active = torch.nonzero((k > 0) & (u < cdf - pmf)).squeeze(1)
    while active.numel():  # walk down while F(k − 1) = F(k) − p(k) > u
        cdf_a = cdf[active] - pmf[active]
        pmf_a = pmf[active] * k[active] / lam[active]
        k_a = k[active] - 1.0
        k[active], pmf[active], cdf[active] = k_a, pmf_a, cdf_a
        active = active[(k_a > 0) & (u[active] < cdf_a - pmf_a)]
    return k


def salt_and_pepper(images: torch.Tensor, amount: float, seeds: torch.Tensor, *keys: object) -> torch.Tensor:
    """scikit-image ``random_noise(mode='s&p', amount)``: each value independently becomes 1 or 0 (equal odds)
    with probability ``amount``."""
    hit_draw, salt_draw = uniform_pair_like(seeds, images, "impulse", *keys)
    hit, salt = hit_draw < amount, salt_draw < 0.5
    out = torch.where(hit & salt, torch.ones_like(images), images)
    return torch.where(hit & ~salt, torch.zeros_like(images), out)


def plasma_fractal(seeds: torch.Tensor, mapsize: int, decay: float, device: torch.device | str) -> torch.Tensor:
    """Diamond-square height maps (ImageNet-C's ``plasma_fractal``), one per seed: N×mapsize×mapsize in [0, 1].

    Each level sets the new points to the mean of their neighbours (wrapping around) plus ``w·U(−w, w)`` with
    w = 100 at the top level divided by ``decay`` per level; the map is then min-max normalised.
    """
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    count = seeds.shape[0]
    height = torch.zeros(count, mapsize, mapsize, dtype=torch.float64, device=device)
    step, wibble, level = mapsize, 100.0, 0

    def wibbled_mean(total: torch.Tensor, part: str) -> torch.Tensor:
        noise = rng.uniform(rng.substream(seeds, "plasma", level, part), total.shape[1:], device, torch.float64)
        return total / 4 + wibble * (noise * 2.0 - 1.0) * wibble

    while step >= 2:
        half = step // 2
        corners = height[:, 0::step, 0::step]
        squares = corners + torch.roll(corners, -1, dims=1)
        squares = squares + torch.roll(squares, -1, dims=2)
        height[:, half::step, half::step] = wibbled_mean(squares, "square")
        centres = height[:, half::step, half::step]
        corners = height[:, 0::step, 0::step]
        left = centres + torch.roll(centres, 1, dims=1) + corners + torch.roll(corners, -1, dims=2)
        height[:, 0::step, half::step] = wibbled_mean(left, "diamond-top")
        top = centres + torch.roll(centres, 1, dims=2) + corners + torch.roll(corners, -1, dims=1)
        height[:, half::step, 0::step] = wibbled_mean(top, "diamond-left")
        step, wibble, level = half, wibble / decay, level + 1
    low = height.amin(dim=(1, 2), keepdim=True)
    height = height - low
    return (height / height.amax(dim=(1, 2), keepdim=True)).to(torch.float32)


def next_power_of_two(value: int) -> int:
    """Smallest power of two ≥ ``value``."""
    return 1 if value <= 1 else 2 ** math.ceil(math.log2(value))


__all__ = ["next_power_of_two", "normal_like", "plasma_fractal", "poisson", "salt_and_pepper", "uniform_like",
           "uniform_pair_like"]
