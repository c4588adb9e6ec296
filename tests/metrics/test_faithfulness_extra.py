"""Faithfulness correlation, pixel-flipping, IROF and ROAD against Quantus 0.6.0 with the same subsets, segments
and imputations (grey-scale images, so Quantus's features are our pixels); infidelity against
captum.metrics.infidelity given the same perturbations; sensitivity-n against the formula written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.metrics import infidelity as captum_infidelity
from torch import nn

import robustviz
from robustviz import rng
from robustviz.metrics.base import MetricContext
from robustviz.metrics.faithfulness_extra import (faithfulness_correlation, infidelity, irof, linear_imputation,
                                                  random_subsets, road, slic_segments)

quantus = pytest.importorskip("quantus")
QUANTUS = dict(disable_warnings=True, display_progressbar=False)


@pytest.fixture(autouse=True)
def numpy_trapz(monkeypatch):
    """Quantus 0.6.0 calls np.trapz, which numpy 2.4 removed: shim it in the test env only."""
    if not hasattr(np, "trapz"):
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def zero(arr, indices, **kwargs):
    """Baseline replacement by 0 of ``indices`` (rows × k) in the flattened batch ``arr``."""
    arr = arr.copy()
    arr[np.arange(arr.shape[0])[:, None], indices] = 0.0
    return arr


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
                          nn.Linear(36, 3)).eval()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 10, 10, generator=generator)
    maps = torch.randn(3, 1, 10, 10, generator=generator)  # continuous: no ties in the ordering
    classes = model(images).argmax(1).detach()
    return model, images, maps, classes


def _quantus_call(metric, model, images, maps, classes, **kwargs):
    return np.asarray(metric(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps.numpy(),
                             device="cpu", softmax=True, batch_size=len(images), **kwargs), dtype=np.float64)


def test_faithfulness_correlation_matches_quantus(setup, monkeypatch):
    model, images, maps, classes = setup
    runs, size = 12, 7
    subsets = random_subsets(torch.tensor([11, 12, 13]), 100, size, runs)
    ours = faithfulness_correlation(model, images, maps, classes, subsets)
    # Quantus draws np.random.choice(D, size) per run and sample, in that order: hand it our subsets
    order = iter([subsets[sample, run].numpy() for run in range(runs) for sample in range(3)])
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(order))
    metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, perturb_func=zero,
                                             return_aggregate=False, **QUANTUS)
    expected = _quantus_call(metric, model, images, maps, classes)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-5)  # Quantus: float32


def test_sensitivity_n_metric_matches_the_formula(setup):
    model, images, maps, classes = setup
    seeds = torch.tensor([3, 4, 5])
    metric = robustviz.create("metric", "sensitivity_n", n=20, runs=8)
    ours = metric(MetricContext(model=model, images=images, attributions=maps, seeds=seeds, target=classes))
    subsets = random_subsets(rng.substream(seeds, "sensitivity_n"), 100, 20, 8)
    for index in range(3):
        with torch.no_grad():
            full = torch.softmax(model(images[index:index + 1]), 1)[0, classes[index]]
            sums, drops = [], []
            for run in range(8):
                chosen = subsets[index, run]
                x = images[index].clone().reshape(1, -1)
                x[0, chosen] = 0
                drops.append(float(full - torch.softmax(model(x.view(1, 1, 10, 10)), 1)[0, classes[index]]))
                sums.append(float(maps[index].reshape(-1)[chosen].sum()))
        assert float(ours[index]) == pytest.approx(np.corrcoef(sums, drops)[0, 1], rel=1e-4, abs=1e-5)
    assert len(set(subsets[0, 0].tolist())) == 20  # distinct pixels


def test_pixel_flipping_matches_quantus(setup):
    model, images, maps, classes = setup
    ours = robustviz.create("metric", "pixel_flipping", step=4)(
        MetricContext(model=model, images=images, attributions=maps, target=classes))

    metric = quantus.PixelFlipping(features_in_step=4, perturb_func=zero, return_auc_per_sample=True, **QUANTUS)
    expected = _quantus_call(metric, model, images, maps, classes)
    n_points = 100 // 4
    np.testing.assert_allclose(ours.double().numpy() * (n_points - 1), expected, rtol=1e-5)


def test_irof_matches_quantus_with_the_papers_mean_baseline(setup):
    model, images, maps, classes = setup
    segments = slic_segments(images, n_segments=100, compactness=10.0)
    ours = irof(model, images, maps, classes, segments)
    for index in range(3):  # Quantus's "mean" baseline averages the perturbed batch: give it the image's mean
        mean = float(images[index].mean())

        def mean_fill(arr, mask, **kwargs):
            return np.where(mask, mean, arr)

        metric = quantus.IROF(segmentation_method="slic", perturb_func=mean_fill, return_aggregate=False, **QUANTUS)
        expected = _quantus_call(metric, model, images[index:index + 1], maps[index:index + 1],
                                 classes[index:index + 1])
        n_segments = len(torch.unique(segments[index]))
        assert float(ours[index]) * n_segments == pytest.approx(float(expected[0]), rel=1e-4)  # float32


def test_linear_imputation_matches_quantus_noise_free():
    from quantus.functions.perturb_func import noisy_linear_imputation

    generator = np.random.default_rng(0)
    image = generator.uniform(size=(3, 7, 9))
    removed = generator.choice(63, 25, replace=False)
    ours = linear_imputation(image, removed)
    expected = noisy_linear_imputation(image, removed, noise=0.0)
    np.testing.assert_allclose(ours, expected, atol=1e-10)
    untouched = np.setdiff1d(np.arange(63), removed)
    np.testing.assert_array_equal(ours.reshape(3, -1)[:, untouched], image.reshape(3, -1)[:, untouched])


def test_road_matches_quantus_noise_free(setup):
    model, images, maps, classes = setup
    percentages = [10, 30, 50, 70, 90]
    for order, sign in (("morf", 1), ("lerf", -1)):
        ours = road(model, images, maps, classes, percentages, order)

        def impute(arr, indices, **kwargs):
            return noisy_linear_imputation(arr, indices, noise=0.0)

        from quantus.functions.perturb_func import noisy_linear_imputation

        metric = quantus.ROAD(percentages=percentages, perturb_func=impute, return_aggregate=False, **QUANTUS)
        metric.custom_postprocess = lambda **kwargs: None  # keep the per-sample curves, not their means
        # Quantus orders by decreasing attribution: LeRF = MoRF of the negated map
        metric(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=(sign * maps).numpy(),
               device="cpu", batch_size=3)
        expected = np.asarray(metric.evaluation_scores[0], dtype=np.float64)
        np.testing.assert_array_equal(ours.numpy(), expected)


def test_road_metric_noise_is_seeded_and_small(setup):
    model, images, maps, classes = setup
    context = MetricContext(model=model, images=images, attributions=maps, seeds=torch.tensor([1, 2, 3]),
                            target=classes)
    metric = robustviz.create("metric", "road_morf", score="probability", percentages=[20, 60])
    first, second = metric(context), metric(context)
    torch.testing.assert_close(first, second)
    noiseless = robustviz.create("metric", "road_morf", score="probability", percentages=[20, 60], noise=0.0)
    difference = (first - noiseless(context)).abs().max()
    assert 0 < float(difference) < 0.05


def test_infidelity_matches_captum(setup):
    model, images, maps, classes = setup
    draws = 0.1 * rng.normal(torch.tensor([7, 8, 9]), (6, 1, 10, 10))
    for normalise in (True, False):
        ours = infidelity(model, images, maps, classes, draws, normalise=normalise)

        def same_draws(inputs):
            noise = draws.flatten(0, 1)  # Captum repeats each input n times (repeat_interleave)
            return noise, inputs - noise

        expected = captum_infidelity(model, same_draws, images, maps, target=classes, n_perturb_samples=6,
                                     normalize=normalise)
        np.testing.assert_allclose(ours.numpy(), expected.double().numpy(), rtol=1e-4, atol=1e-7)


def test_new_faithfulness_metrics_in_the_cube():
    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=3,
        perturbations=["gaussian_noise"], severities=[2], batch_size=4, seed=0, device="cpu", n_examples=0,
        methods=["saliency"],
        metrics=[{"name": "faithfulness_correlation", "runs": 4}, {"name": "road_morf", "percentages": [50]},
                 {"name": "infidelity", "n_samples": 3}, {"name": "irof", "n_segments": 6},
                 {"name": "pixel_flipping", "step": 256}]))
    ds = robustviz.evaluate(spec, progress=False)
    for name in ("faithfulness_correlation", "road_morf", "infidelity", "irof", "pixel_flipping"):
        assert ds[name].attrs["category"] == "faithfulness"
        assert np.isfinite(ds[name].values).all(), name
    assert ((ds["road_morf"].values >= 0) & (ds["road_morf"].values <= 1)).all()
