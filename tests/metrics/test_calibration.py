"""Brier score against scikit-learn, ECE against the binned formula written out, NLL against sklearn's log_loss,
all on a synthetic cube and on an evaluated one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustviz
from robustviz.cube.calibration import calibration, expected_calibration_error
from robustviz.metrics.base import MetricContext

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_brier_matches_sklearn_multiclass():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(40, 5, generator=generator)
    labels = torch.randint(0, 5, (40,), generator=generator)
    ours = robustviz.create("metric", "brier")(MetricContext(logits=logits, labels=labels))
    probabilities = torch.softmax(logits.double(), 1).numpy()
    # sklearn ≥ 1.7: multi-class Brier = mean over samples of Σ_k (p_k − y_k)²
    expected = sklearn_metrics.brier_score_loss(labels.numpy(), probabilities, labels=list(range(5)))
    assert float(ours.double().mean()) == pytest.approx(expected, rel=1e-6)


def slow_ece(confidence, correct, n_bins=15):
    total = 0.0
    n = len(confidence)
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if (low < confidence[i] <= high) or (b == 0 and confidence[i] == 0)]
        if members:
            accuracy = np.mean([correct[i] for i in members])
            mean_confidence = np.mean([confidence[i] for i in members])
            total += len(members) / n * abs(accuracy - mean_confidence)
    return total


def test_ece_matches_the_binned_formula():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.2, 1.0, size=(3, 200))
    confidence[0, :5] = [1 / 15, 2 / 15, 1.0, 0.5, 7 / 15]  # bin edges fall into the lower bin
    correct = rng.uniform(size=(3, 200)) < confidence ** 2
    confidence[2, 150:] = np.nan  # not written: skipped
    ours = expected_calibration_error(confidence, correct)
    for row in range(3):
        keep = ~np.isnan(confidence[row])
        assert ours[row] == pytest.approx(slow_ece(confidence[row][keep], correct[row][keep]), abs=1e-12)
    assert np.isnan(expected_calibration_error(np.full((1, 4), np.nan), np.zeros((1, 4))))[0]


def test_cube_calibration_against_sklearn():
    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=24,
        perturbations=["gaussian_noise"], severities=[3], batch_size=8, seed=0, device="cpu", n_examples=0,
        metrics=["brier"]))
    ds = robustviz.evaluate(spec, progress=False)
    result = ds.rv.calibration()
    model = robustviz.create("model", "smallcnn-standard")
    data = robustviz.create("dataset", "shapes", n_samples=24, image_size=32, seed=0)
    with torch.no_grad():
        probabilities = torch.softmax(model(data.images).double(), 1).numpy()
    labels = data.labels.numpy()
    cell = result.isel(model=0, perturbation=0).sel(severity=0)
    classes = list(range(probabilities.shape[1]))
    assert float(cell["nll"]) == pytest.approx(sklearn_metrics.log_loss(labels, probabilities, labels=classes),
                                               rel=1e-4)
    assert float(cell["brier"]) == pytest.approx(
        sklearn_metrics.brier_score_loss(labels, probabilities, labels=classes), rel=1e-4)
    expected_ece = slow_ece(probabilities.max(1), probabilities.argmax(1) == labels)
    assert float(cell["ece"]) == pytest.approx(expected_ece, abs=1e-6)
    assert int(cell["n"]) == 24
    assert set(result.data_vars) == {"ece", "nll", "brier", "n"}
    np.testing.assert_allclose(ds.rv.nll().values, -np.log(ds["prob_true"].values.astype(np.float64)))
    # NaN (unwritten) samples are skipped, not counted as zeros
    partial = ds.copy(deep=True)
    partial["confidence"][..., -4:] = np.nan
    partial["prob_true"][..., -4:] = np.nan
    assert int(calibration(partial)["n"].isel(model=0, perturbation=0, severity=0)) == 20
