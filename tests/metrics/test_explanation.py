"""Similarity metrics: identity, symmetry/range properties, and agreement with scipy/skimage/hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.metrics import structural_similarity as skimage_ssim

import robustviz
from robustviz.metrics.base import MetricContext
from robustviz.metrics.explanation import (average_ranks, cosine_similarity, rank_biased_overlap, rbo_similarity,
                                           spearman_correlation, structural_similarity, topk_intersection)

SIMILARITIES = ["cosine", "spearman", "ssim", "topk_intersection", "rbo"]
RANGES = {"cosine": (-1, 1), "spearman": (-1, 1), "ssim": (-1, 1), "topk_intersection": (0, 1), "rbo": (0, 1)}


def maps(seed: int, count: int = 4, size: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(count, 1, size, size)))


def score(name, a, b):
    return robustviz.create("metric", name)(MetricContext(clean_attributions=a, attributions=b)).double()


@pytest.mark.parametrize("name", SIMILARITIES)
def test_identical_maps_score_one(name):
    a = maps(0)
    constant = torch.full((1, 1, 16, 16), 0.3, dtype=torch.float64)
    for pair in (a, constant, torch.zeros_like(constant)):
        torch.testing.assert_close(score(name, pair, pair.clone()), torch.ones(len(pair), dtype=torch.float64),
                                   atol=1e-6, rtol=0)


map_pairs = arrays(np.float64, (2, 2, 1, 8, 8), elements=st.floats(-5, 5, allow_nan=False, width=32))


@pytest.mark.parametrize("name", SIMILARITIES)
@settings(max_examples=25, deadline=None)
@given(pair=map_pairs)
def test_symmetry_and_range(name, pair):
    a, b = torch.from_numpy(pair[0]), torch.from_numpy(pair[1])
    params = {"rbo": {"grid": 4}, "ssim": {"win_size": 7}}.get(name, {})
    metric = robustviz.create("metric", name, **params)
    ab = metric(MetricContext(clean_attributions=a, attributions=b)).double()
    ba = metric(MetricContext(clean_attributions=b, attributions=a)).double()
    torch.testing.assert_close(ab, ba, atol=1e-5, rtol=1e-5)
    low, high = RANGES[name]
    assert bool(((ab >= low - 1e-6) & (ab <= high + 1e-6)).all()), ab


def test_cosine_against_numpy():
    a, b = maps(1), maps(2)
    expected = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in
                zip(a.reshape(4, -1).numpy(), b.reshape(4, -1).numpy())]
    np.testing.assert_allclose(cosine_similarity(a, b).numpy(), expected, rtol=1e-12)
    assert float(cosine_similarity(a, -a)[0]) == pytest.approx(-1.0)
    assert float(cosine_similarity(a[:1], torch.zeros_like(a[:1]))[0]) == 0.0


def test_spearman_against_scipy_with_ties():
    a = torch.from_numpy(np.random.default_rng(3).integers(0, 5, size=(3, 1, 8, 8)).astype(float))
    b = torch.from_numpy(np.random.default_rng(4).integers(0, 4, size=(3, 1, 8, 8)).astype(float))
    ours = spearman_correlation(a, b).numpy()
    expected = [scipy.stats.spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a.numpy(), b.numpy())]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    np.testing.assert_array_equal(average_ranks(a.reshape(3, -1)).numpy(),
                                  np.stack([scipy.stats.rankdata(x.ravel()) for x in a.numpy()]))


def test_ssim_against_skimage_on_normalised_maps():
    a, b = maps(5, count=3, size=20), maps(6, count=3, size=20)
    ours = structural_similarity(a, b).numpy()

    def normalise(x):
        return (x - x.min()) / (x.max() - x.min())

    expected = [skimage_ssim(normalise(x[0]), normalise(y[0]), data_range=1.0) for x, y in zip(a.numpy(), b.numpy())]
    np.testing.assert_allclose(ours, expected, rtol=1e-8, atol=1e-10)


def test_topk_intersection_by_hand():
    a = torch.arange(16.0).reshape(1, 1, 4, 4)  # top-4: pixels 15, 14, 13, 12
    b = a.clone().flatten()
    b[[15, 14]] = -1.0  # b's top-4: 13, 12, 11, 10 → 2 shared
    assert float(topk_intersection(a, b.reshape(1, 1, 4, 4), k=4)[0]) == 0.5
    assert float(topk_intersection(a, b.reshape(1, 1, 4, 4), fraction=0.25)[0]) == 0.5


def test_rbo_hand_computed_example():
    # A = [a, b, c], B = [b, a, c], p = 0.9: X = (0, 2, 3);
    # RBO_ext = (3/3)·0.9³ + (0.1/0.9)·(0/1·0.9 + 2/2·0.81 + 3/3·0.729) = 0.729 + 0.171 = 0.9
    value = rank_biased_overlap(torch.tensor([[0, 1, 2]]), torch.tensor([[1, 0, 2]]), p=0.9)
    assert float(value[0]) == pytest.approx(0.9, abs=1e-12)
    # A = [a, b, c, d], B = [d, c, b, a], p = 0.5: X = (0, 0, 2, 4);
    # 0.5⁴ + 1·(2/3·0.125 + 4/4·0.0625) = 0.0625 + 0.083333 + 0.0625
    value = rank_biased_overlap(torch.tensor([[0, 1, 2, 3]]), torch.tensor([[3, 2, 1, 0]]), p=0.5)
    assert float(value[0]) == pytest.approx(0.0625 + 2 / 3 * 0.125 + 0.0625, abs=1e-12)


def test_rbo_over_superpixels():
    base = torch.zeros(1, 1, 4, 4)
    base[..., :2, :2], base[..., :2, 2:], base[..., 2:, :2], base[..., 2:, 2:] = 4.0, 3.0, 2.0, 1.0
    swapped = base.clone()
    swapped[..., :2, :2], swapped[..., :2, 2:] = 3.0, 4.0  # cells ranked [1, 0, 2, 3] instead of [0, 1, 2, 3]
    expected = float(rank_biased_overlap(torch.tensor([[0, 1, 2, 3]]), torch.tensor([[1, 0, 2, 3]]), p=0.9)[0])
    assert float(rbo_similarity(base, swapped, grid=2)[0]) == pytest.approx(expected)
    assert expected < 1


def test_consistency_and_responsiveness_split_on_the_prediction():
    clean, perturbed = maps(7, count=3), maps(8, count=3)
    clean_logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    logits = torch.tensor([[3.0, 0.0], [0.0, 2.0], [0.0, 5.0]])  # sample 1 flips
    context = MetricContext(clean_attributions=clean, attributions=perturbed, logits=logits,
                            clean_logits=clean_logits)
    cosine = cosine_similarity(clean, perturbed).float()
    consistency = robustviz.create("metric", "consistency")(context)
    responsiveness = robustviz.create("metric", "responsiveness")(context)
    torch.testing.assert_close(consistency[[0, 2]], cosine[[0, 2]])
    assert torch.isnan(consistency[1]) and torch.isnan(responsiveness[[0, 2]]).all()
    torch.testing.assert_close(responsiveness[1], 1 - cosine[1])
    spearman = robustviz.create("metric", "consistency", similarity="spearman")(context)
    torch.testing.assert_close(spearman[0], spearman_correlation(clean, perturbed)[0].float())


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        cosine_similarity(maps(0), maps(1, size=8))
