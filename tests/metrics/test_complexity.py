"""Sparseness, complexity and effective complexity against Quantus 0.6.0 (same maps, per-sample max normalisation),
and the limiting cases of each formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robustviz
from robustviz.metrics.base import MetricContext
from robustviz.metrics.complexity import effective_complexity, entropy_complexity, gini_sparseness


@pytest.fixture
def maps():
    generator = torch.Generator().manual_seed(1)
    maps = torch.randn(5, 1, 9, 11, generator=generator) ** 3  # heavy-tailed, signed
    maps[2, 0, 3:6, 4:8] = 0.0  # exact zeros
    maps[3] *= 1e-3  # scale must not matter
    return maps


def _quantus(metric_class, maps, **kwargs):
    """Quantus normalises by the max over the whole batch by default: normalise each sample on its own axes."""
    metric = metric_class(normalise_func_kwargs={"normalise_axes": [1, 2, 3]}, disable_warnings=True,
                          display_progressbar=False, **kwargs)
    x_batch = np.zeros((maps.shape[0], 3, *maps.shape[2:]), dtype=np.float32)
    return np.asarray(metric(model=None, x_batch=x_batch, y_batch=np.zeros(maps.shape[0], dtype=int),
                             a_batch=maps.numpy().astype(np.float64), device="cpu"), dtype=np.float64)


@pytest.mark.parametrize("name,quantus_name,kwargs,rtol", [
    ("sparseness", "Sparseness", {}, 1e-10),
    ("complexity", "Complexity", {}, 1e-6),  # Quantus adds 1e-12 inside the log
    ("effective_complexity", "EffectiveComplexity", {"eps": 1e-2}, 0),
])
def test_matches_quantus(maps, name, quantus_name, kwargs, rtol):
    quantus = pytest.importorskip("quantus")
    ours = robustviz.create("metric", name, **kwargs)(MetricContext(attributions=maps))
    expected = _quantus(getattr(quantus, quantus_name), maps, **kwargs)
    np.testing.assert_allclose(ours.double().numpy(), expected, rtol=max(rtol, 1e-6), atol=1e-6)


def test_limiting_cases():
    uniform = torch.ones(1, 1, 4, 4)
    single = torch.zeros(1, 1, 4, 4)
    single[0, 0, 1, 2] = -3.0
    assert float(gini_sparseness(uniform)) == pytest.approx(0.0, abs=1e-12)
    # one non-zero pixel of 16: Gini of (ε, …, ε, 1+ε) → (D − 1)/D as ε → 0
    assert float(gini_sparseness(single, epsilon=0.0)) == pytest.approx(15 / 16)
    assert float(entropy_complexity(uniform)) == pytest.approx(math.log(16))
    assert float(entropy_complexity(single)) == 0.0
    assert float(effective_complexity(single)) == 1.0
    assert float(effective_complexity(uniform)) == 16.0


def test_zero_map_is_nan_not_zero():
    zero = torch.zeros(2, 1, 3, 3)
    zero[1, 0, 0, 0] = 1.0
    for function in (gini_sparseness, entropy_complexity, effective_complexity):
        values = function(zero)
        assert math.isnan(float(values[0])) and not math.isnan(float(values[1]))


def test_complexity_metrics_in_the_cube():
    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=4,
        perturbations=["gaussian_noise"], severities=[2], batch_size=4, seed=0, device="cpu", n_examples=0,
        methods=["saliency"], metrics=["sparseness", "complexity"]))
    ds = robustviz.evaluate(spec, progress=False)
    assert ds["sparseness"].attrs["category"] == "complexity"
    assert ds["complexity"].attrs["direction"] == "lower"
    values = ds["complexity"].values
    assert np.isfinite(values).all() and (values > 0).all() and (values <= math.log(32 * 32) + 1e-6).all()
