"""I-ASIDE: Shapley axioms, SID/SRS reference values, and the batched coalition values against a plain loop."""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pytest
import torch
from torch import nn

import robustviz
from robustviz.metrics.spectral import (all_coalitions, coalition_ids, coalition_values, shapley_values, sid, srs)
from robustviz.validation import InputError

from ._models import ScaledCNN

M = 8


@pytest.fixture(scope="module")
def model() -> ScaledCNN:
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Conv2d(8, 8, 3, padding=1),
                             nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    return ScaledCNN(features, head, 4, 8.0).eval()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(3, 3, 32, 32, generator=generator), torch.tensor([0, 2, 3])


# -- Shapley values ------------------------------------------------------------------------------------------------

def shapley_by_permutations(table: np.ndarray, n_players: int) -> np.ndarray:
    """The textbook definition: mean marginal contribution over all n! orderings."""
    psi = np.zeros(n_players)
    for order in itertools.permutations(range(n_players)):
        mask = 0
        for player in order:
            psi[player] += table[mask | (1 << player)] - table[mask]
            mask |= 1 << player
    return psi / factorial(n_players)


def test_exact_shapley_equals_the_permutation_definition():
    table = np.random.default_rng(0).normal(size=2 ** 5)
    np.testing.assert_allclose(shapley_values(table, 5), shapley_by_permutations(table, 5), rtol=1e-12)


def test_efficiency_symmetry_null_player_and_linearity():
    rng = np.random.default_rng(1)
    n_players = 6
    coalitions = all_coalitions(n_players)
    base = rng.normal(size=2 ** n_players)
    # Efficiency.
    psi = shapley_values(base, n_players)
    assert psi.sum() == pytest.approx(base[-1] - base[0], abs=1e-12)
    # Symmetry: a game invariant under swapping players 1 and 3 gives them equal values.
    swapped = coalitions.copy()
    swapped[:, [1, 3]] = swapped[:, [3, 1]]
    symmetric = base + base[coalition_ids(swapped)]
    psi = shapley_values(symmetric, n_players)
    assert psi[1] == pytest.approx(psi[3], abs=1e-12)
    # Null player: a game that ignores player 2 gives it 0.
    without = coalitions.copy()
    without[:, 2] = False
    null_game = base[coalition_ids(without)]
    psi = shapley_values(null_game, n_players)
    assert psi[2] == pytest.approx(0.0, abs=1e-12)
    assert abs(psi).max() > 1e-3
    # Linearity.
    other = rng.normal(size=2 ** n_players)
    np.testing.assert_allclose(shapley_values(2 * base - 3 * other, n_players),
                               2 * shapley_values(base, n_players) - 3 * shapley_values(other, n_players), atol=1e-12)


def test_value_function_form_and_permutation_sampling():
    table = np.random.default_rng(2).normal(size=2 ** 6)
    calls = []

    def value_fn(coalitions: np.ndarray) -> np.ndarray:
        calls.append(len(coalitions))
        return table[coalition_ids(coalitions)]

    exact = shapley_values(table, 6)
    np.testing.assert_allclose(shapley_values(value_fn, 6), exact, atol=1e-12)
    estimate = shapley_values(value_fn, 6, method="permutation", n_permutations=3000, seed=4)
    assert estimate.sum() == pytest.approx(table[-1] - table[0], abs=1e-9)  # efficiency holds per ordering
    np.testing.assert_allclose(estimate, exact, atol=0.08 * np.abs(exact).max())
    assert calls[-1] <= 2 ** 6  # each distinct coalition evaluated once
    np.testing.assert_array_equal(estimate, shapley_values(value_fn, 6, method="permutation", n_permutations=3000,
                                                           seed=4))


def test_shapley_input_errors():
    with pytest.raises(InputError, match="2\\^3 = 8 entries"):
        shapley_values(np.zeros(7), 3)
    with pytest.raises(InputError, match="method"):
        shapley_values(np.zeros(8), 3, method="kernel")


# -- SID and SRS ---------------------------------------------------------------------------------------------------

def test_srs_reference_values():
    assert srs(np.full(M, 1.0 / M)) == pytest.approx(0.0, abs=1e-12)
    assert srs(np.eye(M)[0]) == pytest.approx(0.5217, abs=5e-5)  # I-ASIDE's check value, β = 0.75, M = 8
    # Explicit formula for another distribution and β.
    distribution = np.array([0.4, 0.3, 0.2, 0.1])
    weights = 0.5 ** np.arange(4)
    unit = weights / np.sqrt((weights ** 2).sum())
    reference = weights.sum() / np.sqrt((weights ** 2).sum()) / 4
    assert srs(distribution, 0.5) == pytest.approx(abs(distribution @ unit - reference) / abs(1 - reference))
    np.testing.assert_allclose(srs(np.stack([np.eye(M)[0], np.full(M, 1 / M)])), [srs(np.eye(M)[0]), 0.0])
    with pytest.raises(InputError, match="beta"):
        srs(np.eye(M)[0], beta=1.5)


def test_sid_shifts_and_normalises():
    np.testing.assert_allclose(sid(np.array([1.0, 3.0, 2.0, 1.0])), [0.0, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(sid(np.array([-2.0, -1.0])), [0.0, 1.0])
    np.testing.assert_allclose(sid(np.full(4, 0.7)), np.full(4, 0.25))


# -- Coalition values on a model -----------------------------------------------------------------------------------

def reference_band_masks(dim: int, n_bands: int) -> np.ndarray:
    """The I-ASIDE reference code's square slicing (see tests/perturbations/test_spectral.py)."""
    masks = np.zeros((n_bands, dim, dim), bool)
    for band in range(n_bands):
        for side, value in ((int(dim * (band + 1) / n_bands), True), (int(dim * band / n_bands), False)):
            start = (dim - side) // 2
            masks[band, start:start + side, start:start + side] = value
    return masks


def loop_coalition_values(model, images, labels, n_bands) -> np.ndarray:
    """One coalition at a time: explicit numpy FFT filter, one forward pass, mean log p(true class)."""
    masks = reference_band_masks(images.shape[-1], n_bands)
    spectrum = np.fft.fftshift(np.fft.fft2(images.double().numpy(), axes=(-2, -1)), axes=(-2, -1))
    values = np.empty(2 ** n_bands)
    for mask_id in range(2 ** n_bands):
        keep = np.array([(mask_id >> band) & 1 for band in range(n_bands)], bool)
        if not keep.any():
            filtered = np.zeros(images.shape)
        else:
            pixels = np.abs(np.fft.ifft2(np.fft.ifftshift(np.where(masks[keep].any(0), spectrum, 0), axes=(-2, -1)),
                                         axes=(-2, -1)))
            low = pixels.min(axis=(1, 2, 3), keepdims=True)
            filtered = (pixels - low) / (pixels.max(axis=(1, 2, 3), keepdims=True) - low)
        with torch.no_grad():
            log_prob = torch.log_softmax(model(torch.from_numpy(filtered).float()).double(), dim=-1)
        values[mask_id] = log_prob[torch.arange(len(labels)), labels].mean().item()
    return values


def test_batched_coalition_values_equal_a_per_coalition_loop(model, data):
    images, labels = data
    batched = coalition_values(model, images, labels, M, batch_size=256)
    looped = loop_coalition_values(model, images, labels, M)
    np.testing.assert_allclose(batched, looped, atol=2e-4)
    np.testing.assert_allclose(shapley_values(batched, M), shapley_values(looped, M), atol=2e-4)
    assert np.ptp(batched) > 0.05  # the bands matter to this model, so the comparison has teeth
    # Chunking does not change the values.
    np.testing.assert_allclose(coalition_values(model, images, labels, M, batch_size=5), batched, atol=1e-9)


def test_iaside_metric_outputs(model, data):
    images, labels = data
    metric = robustviz.create("metric", "iaside", n_samples=2)
    assert metric.scope == "model" and metric.direction == "higher"
    np.testing.assert_array_equal(metric.coords["band"], np.arange(M))
    out = metric.compute(model, images, labels, seed=0)
    assert set(out) == {"shapley", "sid", "srs", "v_full", "v_empty"}
    assert {name: dims for name, (dims, _) in out.items()} == dict(metric.variables)
    assert set(metric.variable_attrs) == set(out) and metric.variable_attrs["srs"]["direction"] == "higher"
    assert out["shapley"][0] == ("band",) and out["shapley"][1].shape == (M,)
    assert out["srs"][0] == () and out["v_full"][0] == ()
    psi = out["shapley"][1]
    assert psi.sum() == pytest.approx(float(out["v_full"][1] - out["v_empty"][1]), abs=1e-9)
    np.testing.assert_allclose(out["sid"][1], sid(psi))
    assert float(out["srs"][1]) == pytest.approx(srs(sid(psi)))
    # n_samples caps the samples; v(∅) is the zero image's mean log-probability of the true classes.
    with torch.no_grad():
        log_prob = torch.log_softmax(model(torch.zeros(2, 3, 32, 32)).double(), dim=-1)
    assert float(out["v_empty"][1]) == pytest.approx(log_prob[[0, 1], labels[:2]].mean().item(), abs=1e-9)
    np.testing.assert_allclose(psi, shapley_values(coalition_values(model, images[:2], labels[:2], M), M))


def test_iaside_noise_and_image_fills_are_reproducible(model, data):
    images, labels = data
    metric = robustviz.create("metric", "iaside", n_bands=4, fill="noise")
    first = metric.compute(model, images, labels, seed=3)["shapley"][1]
    np.testing.assert_array_equal(first, metric.compute(model, images, labels, seed=3)["shapley"][1])
    assert not np.allclose(first, metric.compute(model, images, labels, seed=4)["shapley"][1])
    borrowed = robustviz.create("metric", "iaside", n_bands=4, fill="image").compute(model, images, labels, seed=0)
    direct = coalition_values(model, images, labels, 4, "image", fill_images=images.roll(1, dims=0))
    np.testing.assert_allclose(borrowed["shapley"][1], shapley_values(direct, 4))


def test_iaside_permutation_method_satisfies_efficiency(model, data):
    images, labels = data
    metric = robustviz.create("metric", "iaside", n_bands=4, method="permutation", n_permutations=30)
    out = metric.compute(model, images, labels, seed=0)
    assert out["shapley"][1].sum() == pytest.approx(float(out["v_full"][1] - out["v_empty"][1]), abs=1e-9)


def test_iaside_parameter_errors():
    with pytest.raises(InputError, match="fill"):
        robustviz.create("metric", "iaside", fill="blur")
    with pytest.raises(InputError, match="permutation"):
        robustviz.create("metric", "iaside", n_bands=20)
    with pytest.raises(InputError, match="beta"):
        robustviz.create("metric", "iaside", beta=0.0)
