"""Max-sensitivity against captum.metrics.sensitivity_max and Quantus's MaxSensitivity given the same draws; local
Lipschitz against its formula written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from captum.metrics import sensitivity_max
from torch import nn

import robustviz
from robustviz import rng
from robustviz.metrics.base import MetricContext
from robustviz.metrics.sensitivity import local_lipschitz, max_sensitivity, method_explainer


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(96, 4)).eval()


@pytest.fixture
def setup():
    model = tiny_classifier()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 12, 12, generator=generator)
    targets = torch.tensor([0, 1, 3])
    seeds = torch.tensor([5, 6, 7])
    method = robustviz.create("method", "saliency", abs=False)
    return model, images, targets, seeds, method


def captum_saliency(model):
    def explain(inputs, target):
        packed = isinstance(inputs, tuple)  # Captum's metrics pass and expect tuples
        maps = Saliency(model).attribute(inputs[0] if packed else inputs, target=target, abs=False)
        maps = maps.sum(dim=1, keepdim=True)
        return (maps,) if packed else maps
    return explain


def test_max_sensitivity_matches_captum_sensitivity_max(setup):
    model, images, targets, seeds, method = setup
    n, radius = 6, 0.02
    deltas = (2 * rng.uniform(rng.substream(seeds, "max_sensitivity"), (n, *images.shape[1:])) - 1) * radius
    context = MetricContext(model=model, method=method, images=images, seeds=seeds, labels=targets)
    ours = robustviz.create("metric", "max_sensitivity", n_samples=n)(context)

    def same_draws(inputs, perturb_radius):  # Captum repeats each input n times (repeat_interleave)
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        return (inputs + deltas.flatten(0, 1),)

    expected = sensitivity_max(captum_saliency(model), images, perturb_func=same_draws, perturb_radius=radius,
                               n_perturb_samples=n, target=targets)
    torch.testing.assert_close(ours, expected.float(), atol=1e-6, rtol=1e-5)
    assert float(ours.min()) > 0


def test_max_sensitivity_matches_quantus(setup):
    quantus = pytest.importorskip("quantus")
    model, images, targets, seeds, method = setup
    n, radius = 5, 0.2
    deltas = (2 * rng.uniform(seeds, (n, *images.shape[1:])) - 1) * radius
    explain = method_explainer(method, model, targets, seeds)
    ours = max_sensitivity(explain, images, deltas)
    counter = iter(range(n))

    def same_draws(arr, indices, lower_bound, **kwargs):  # Quantus perturbs the whole batch once per draw
        step = next(counter)
        return arr + deltas[:, step].reshape(arr.shape).numpy()

    def quantus_explain(model, inputs, targets, **kwargs):
        inputs = torch.as_tensor(inputs, dtype=torch.float32).requires_grad_(True)
        grads = Saliency(model).attribute(inputs, target=torch.as_tensor(targets), abs=False)
        return grads.sum(dim=1, keepdim=True).detach().numpy()

    metric = quantus.MaxSensitivity(nr_samples=n, lower_bound=radius, perturb_func=same_draws, disable_warnings=True,
                                    display_progressbar=False)
    expected = metric(model=model, x_batch=images.numpy(), y_batch=targets.numpy(),
                      a_batch=quantus_explain(model, images.numpy(), targets.numpy()), explain_func=quantus_explain,
                      device="cpu", batch_size=len(images))
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected), rtol=1e-5, atol=1e-6)


def test_local_lipschitz_matches_the_formula(setup):
    model, images, targets, seeds, method = setup
    n = 4
    deltas = 0.1 * rng.normal(rng.substream(seeds, "local_lipschitz"), (n, *images.shape[1:]))
    context = MetricContext(model=model, method=method, images=images, seeds=seeds, labels=targets)
    ours = robustviz.create("metric", "local_lipschitz", n_samples=n, batch_size=5)(context)
    explain = captum_saliency(model)
    for index in range(len(images)):
        x = images[index:index + 1]
        reference = explain(x.clone().requires_grad_(True), targets[index:index + 1]).detach()
        ratios = []
        for j in range(n):
            perturbed = explain((x + deltas[index, j]).requires_grad_(True), targets[index:index + 1]).detach()
            ratios.append(float((perturbed - reference).norm() / deltas[index, j].norm()))
        assert float(ours[index]) == pytest.approx(max(ratios), rel=1e-5)


def test_sensitivity_uses_clean_prediction_and_is_batch_independent(setup):
    model, images, targets, seeds, method = setup
    clean_logits = model(images).detach()
    full = MetricContext(model=model, method=method, images=images, seeds=seeds, labels=targets,
                         clean_logits=clean_logits)
    part = MetricContext(model=model, method=method, images=images[1:], seeds=seeds[1:], labels=targets[1:],
                         clean_logits=clean_logits[1:])
    metric = robustviz.create("metric", "max_sensitivity_quantus", n_samples=3)
    torch.testing.assert_close(metric(full)[1:], metric(part))
    raw = robustviz.create("metric", "max_sensitivity", n_samples=3, normalise=False)(full)
    normalised = robustviz.create("metric", "max_sensitivity", n_samples=3)(full)
    assert not torch.allclose(raw, normalised)


def test_in_the_cube_phi_x_is_the_cubes_own_map():
    """Engine cells pass the method's seeds: max-sensitivity explains x and x + δ with the seeds of the cube's
    attributions (RISE: the same masks) and reuses the cube's map as Φ(x). Checked at the clean cell against the
    function form, with every map recomputed from those seeds and the cell's draws."""
    from robustviz.rng import derive_seeds

    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=6,
        perturbations=["gaussian_noise"], severities=[1], batch_size=4, seed=3, device="cpu", n_examples=0,
        methods=["saliency", {"name": "rise", "n_masks": 16, "batch_masks": 16}],
        # RISE is skipped by default for sensitivity metrics (its cost); this test asks for every method
        metrics=[{"name": "max_sensitivity", "n_samples": 3, "methods": "all"}]))
    ds = robustviz.evaluate(spec, progress=False)
    data = robustviz.create("dataset", "shapes", n_samples=6, image_size=32, seed=3)  # the spec's seed
    model = robustviz.create("model", "smallcnn-standard")
    ids = data.sample_ids
    classes = model(data.images).argmax(dim=1).detach()
    draws = rng.uniform(rng.substream(derive_seeds(3, ids, "metric", "max_sensitivity", "clean", 0),
                                      "max_sensitivity"), (3, 3, 32, 32), "cpu")
    for label, params in (("saliency", {}), ("rise", {"n_masks": 16, "batch_masks": 16})):
        method = robustviz.create("method", label, **params)
        explain = method_explainer(method, model, classes, derive_seeds(3, ids, "method", label))
        expected = max_sensitivity(explain, data.images, (2 * draws - 1) * 0.02)
        got = ds["max_sensitivity"].sel(severity=0).isel(model=0, perturbation=0).rv.sel(method=label).values
        np.testing.assert_allclose(got, expected.float().numpy(), rtol=1e-4, atol=1e-6)
