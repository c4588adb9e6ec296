"""MPRT, efficient MPRT and the random-logit test against Quantus 0.6.0 (same seeds, same randomised layers, same
class draws); smooth MPRT against its formula written out; the randomisation leaves the model and the global
random state untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from scipy import stats as scipy_stats
from torch import nn

import robustviz
from robustviz import rng
from robustviz.metrics.base import MetricContext
from robustviz.metrics.sanity import discrete_entropy, other_classes, randomised_layers

quantus = pytest.importorskip("quantus")
QUANTUS = dict(disable_warnings=True, display_progressbar=False)


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)).eval()
    images = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    classes = model(images).argmax(1).detach()
    method = robustviz.create("method", "saliency", abs=False)
    maps = method.attribute(model, images, classes, seeds=torch.zeros(4, dtype=torch.int64))
    return model, images, classes, method, maps


def quantus_saliency(model, inputs, targets, **kwargs):
    inputs = torch.as_tensor(inputs, dtype=torch.float32).requires_grad_(True)
    maps = Saliency(model).attribute(inputs, target=torch.as_tensor(targets), abs=False)
    return maps.sum(dim=1, keepdim=True).detach().numpy()


def _context(setup, **extra):
    model, images, classes, method, maps = setup
    return MetricContext(model=model, method=method, images=images, attributions=maps, target=classes,
                         seeds=torch.arange(4), method_seeds=torch.zeros(4, dtype=torch.int64), **extra)


def test_mprt_layer_similarities_match_quantus(setup):
    model, images, classes, method, maps = setup
    metric = robustviz.create("metric", "mprt")
    ours = metric.layer_similarities(_context(setup))
    reference = quantus.MPRT(similarity_func=quantus.similarity_func.correlation_spearman, seed=42,
                             return_average_correlation=False, return_last_correlation=False, **QUANTUS)
    reference(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps.numpy(),
              explain_func=quantus_saliency, device="cpu", batch_size=4)
    expected = {name: values for name, values in reference.evaluation_scores.items() if name != "original"}
    assert list(ours) == list(expected) == ["6", "2", "0"]  # top-down: Linear, then the convolutions
    for name in expected:
        np.testing.assert_allclose(ours[name].numpy(), np.asarray(expected[name]), rtol=1e-5, atol=1e-6)
    score = metric(_context(setup))
    torch.testing.assert_close(score.double(), torch.stack(list(ours.values())).mean(0), rtol=1e-6, atol=1e-6)
    last = robustviz.create("metric", "mprt", layers="last")(_context(setup))
    np.testing.assert_allclose(last.numpy(), np.asarray(expected["0"]), rtol=1e-5, atol=1e-6)


def test_efficient_mprt_matches_quantus(setup):
    model, images, classes, method, maps = setup
    ours = robustviz.create("metric", "efficient_mprt")(_context(setup))
    reference = quantus.EfficientMPRT(complexity_func_kwargs={"n_bins": 100}, seed=42, **QUANTUS)
    expected = reference(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps.numpy(),
                         explain_func=quantus_saliency, device="cpu", batch_size=4)
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected, dtype=np.float64), rtol=1e-5)
    counts, _ = np.histogram(maps[0].numpy().ravel(), bins=100)
    assert float(discrete_entropy(maps[:1])[0]) == pytest.approx(scipy_stats.entropy(counts))


def test_random_logit_matches_quantus_with_the_same_class_draws(setup, monkeypatch):
    model, images, classes, method, maps = setup
    context = _context(setup, logits=model(images).detach())
    ours = robustviz.create("metric", "random_logit", similarity="spearman")(context)
    others = other_classes(rng.substream(torch.arange(4), "random_logit"), classes, 5)
    assert (others != classes).all()
    # Quantus draws an index into the other classes with np.random.randint: hand it ours
    positions = others - (others > classes).long()
    monkeypatch.setattr(np.random, "randint", lambda *args, **kwargs: positions.numpy())
    reference = quantus.RandomLogit(num_classes=5, similarity_func=quantus.similarity_func.correlation_spearman,
                                    abs=False, normalise=False, return_aggregate=False, **QUANTUS)
    expected = reference(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps.numpy(),
                         explain_func=quantus_saliency, device="cpu", batch_size=4)
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected, dtype=np.float64), rtol=1e-5, atol=1e-6)


def test_other_classes_are_uniform_over_the_rest():
    seeds = torch.arange(6000)
    draws = other_classes(seeds, torch.full((6000,), 2), 4)
    counts = np.bincount(draws.numpy(), minlength=4)
    assert counts[2] == 0 and abs(counts[[0, 1, 3]] - 2000).max() < 200


def test_smooth_mprt_matches_the_formula(setup):
    model, images, classes, method, maps = setup
    n_noise, sigma = 3, 0.1
    ours = robustviz.create("metric", "smooth_mprt", n_noise=n_noise, layers="last")(_context(setup))
    noise = sigma * rng.normal(rng.substream(torch.arange(4), "smooth_mprt"), (n_noise, 3, 12, 12))

    def smoothed(net):
        total = 0
        for draw in range(n_noise):
            total = total + quantus_saliency(net, (images + noise[:, draw]).numpy(), classes.numpy())
        return np.abs(total / n_noise).reshape(4, -1)

    *_, (_, randomised) = randomised_layers(model, 42)
    before, after = smoothed(model), smoothed(randomised)
    for index in range(4):
        expected = scipy_stats.spearmanr(before[index], after[index]).statistic
        assert float(ours[index]) == pytest.approx(expected, abs=1e-5)


def test_randomisation_leaves_the_model_and_random_state_alone(setup):
    model, *_ = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    first = list(randomised_layers(model, 7))[-1][1].state_dict()["0.weight"].clone()
    second = list(randomised_layers(model, 7))[-1][1].state_dict()["0.weight"].clone()
    assert torch.equal(torch.random.get_rng_state(), state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    torch.testing.assert_close(first, second)
    assert not torch.equal(first, before["0.weight"])


def test_sanity_metrics_in_the_cube():
    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=4,
        perturbations=["gaussian_noise"], severities=[2], batch_size=4, seed=0, device="cpu", n_examples=0,
        methods=["saliency"], metrics=[{"name": "mprt", "layers": "last"}, "random_logit"]))
    ds = robustviz.evaluate(spec, progress=False)
    assert ds["mprt"].attrs["category"] == "randomisation" and ds["mprt"].attrs["direction"] == "lower"
    values = ds["mprt"].values
    assert np.isfinite(values).all() and (np.abs(values) <= 1).all()
    assert np.isfinite(ds["random_logit"].values).all()
