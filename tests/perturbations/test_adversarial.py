"""Adversarial perturbations: FGSM against its formula, PGD (L∞, no random start) bit-for-bit against
captum.robust.PGD, PGD-L2 against an explicit loop, budgets, seeded random starts and the model contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import robustviz
from robustviz.perturbations.adversarial import L2_SCALES, LINF_EPSILONS, pgd
from robustviz.rng import derive_seeds
from robustviz.validation import InputError


class TinyNet(nn.Module):
    """A small CNN with the model contract's attributes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.head = nn.Linear(8, 4)
        self.cam_layer = self.features[-1]
        self.class_names, self.num_classes = ["a", "b", "c", "d"], 4
        self.eval()

    def forward(self, x):
        return self.head(F.relu(self.features(x)).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def setup():
    model = TinyNet()
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    return model, images, labels


def _loss(model, images, labels):
    with torch.no_grad():
        return F.cross_entropy(model(images), labels, reduction="none")


def test_fgsm_matches_its_formula(setup):
    model, images, labels = setup
    fgsm = robustviz.create("perturbation", "fgsm")
    out = fgsm(images, 3, seeds=derive_seeds(0, range(6)), model=model, labels=labels)
    x = images.clone().requires_grad_(True)
    gradient, = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    moved = images + LINF_EPSILONS[2] * gradient.sign()
    expected = torch.where(gradient.abs() > 1e-6, moved, images).clamp(0, 1)  # Captum leaves |g| ≤ 1e-6 alone
    assert float((gradient.abs() > 1e-6).float().mean()) > 0.5
    assert torch.allclose(out, expected, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())


def test_pgd_without_random_start_equals_captum(setup):
    captum_robust = pytest.importorskip("captum.robust")
    model, images, labels = setup
    ours = robustviz.create("perturbation", "pgd", random_start=False)
    out = ours(images, 4, seeds=derive_seeds(0, range(6)), model=model, labels=labels)
    epsilon = LINF_EPSILONS[3]
    attack = captum_robust.PGD(model, lambda o, y: F.cross_entropy(o, y, reduction="none"), lower_bound=0.0,
                               upper_bound=1.0)
    expected = attack.perturb(images, radius=epsilon, step_size=2.5 * epsilon / 10, step_num=10, target=labels,
                              random_start=False, norm="Linf")
    assert torch.equal(out, expected)
    assert (out - images).abs().max() <= epsilon + 1e-6
    assert bool((_loss(model, out, labels) >= _loss(model, images, labels) - 1e-6).all())


def test_pgd_l2_matches_an_explicit_loop_and_respects_the_ball(setup):
    model, images, labels = setup
    epsilon = L2_SCALES[2] * math.sqrt(3 * 16 * 16 / 3072)
    out = robustviz.create("perturbation", "pgd-l2", random_start=False)(
        images, 3, seeds=derive_seeds(0, range(6)), model=model, labels=labels)
    x = images.clone()
    alpha = 2.5 * epsilon / 10
    for _ in range(10):
        x.requires_grad_(True)
        gradient, = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
        x = x.detach()
        for i in range(len(x)):  # sample by sample, textbook projection
            step = x[i] + alpha * gradient[i] / gradient[i].norm()
            delta = step - images[i]
            if delta.norm() > epsilon:
                delta = delta * (epsilon / delta.norm())
            x[i] = (images[i] + delta).clamp(0, 1)
    assert torch.allclose(out, x, atol=1e-5)
    norms = (out - images).flatten(1).norm(dim=1)
    assert bool((norms <= epsilon + 1e-5).all())


def test_fgm_l2_is_one_normalised_gradient_step_of_length_epsilon(setup):
    model, images, labels = setup
    out = robustviz.create("perturbation", "fgm-l2")(images, 4, seeds=derive_seeds(0, range(6)), model=model,
                                                        labels=labels)
    epsilon = L2_SCALES[3] * math.sqrt(3 * 16 * 16 / 3072)
    x = images.clone().requires_grad_(True)
    gradient, = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    expected = torch.stack([(images[i] + epsilon * gradient[i] / gradient[i].norm()).clamp(0, 1) for i in range(6)])
    assert torch.allclose(out, expected, atol=1e-6)
    norms = (out - images).flatten(1).norm(dim=1)  # the whole budget, less what clipping to [0, 1] removes
    assert bool((norms <= epsilon + 1e-5).all()) and bool((norms > 0.9 * epsilon).all())


@pytest.mark.parametrize("name", ["pgd", "pgd-l2"])
def test_random_start_is_seeded_per_sample(name, setup):
    model, images, labels = setup
    attack = robustviz.create("perturbation", name, steps=3)
    seeds = derive_seeds(5, range(6), name, 2)
    whole = attack(images, 2, seeds=seeds, model=model, labels=labels)
    parts = torch.cat([attack(images[:1], 2, seeds=seeds[:1], model=model, labels=labels[:1]),
                       attack(images[1:], 2, seeds=seeds[1:], model=model, labels=labels[1:])])
    assert torch.allclose(whole, parts, atol=1e-6)
    other = attack(images, 2, seeds=derive_seeds(6, range(6), name, 2), model=model, labels=labels)
    assert not torch.allclose(whole, other)
    start_only = pgd(model, images, labels, 0.1, steps=0, step_size=0.0, norm="Linf" if name == "pgd" else "L2",
                     seeds=seeds)
    assert not torch.equal(start_only, images)


def test_severity_budgets_grow_and_model_is_required(setup):
    model, images, labels = setup
    attack = robustviz.create("perturbation", "pgd", steps=2)
    changes = [float((attack(images, s, seeds=derive_seeds(0, range(6)), model=model, labels=labels) - images)
                     .abs().max()) for s in range(1, 6)]
    assert all(a < b for a, b in zip(changes, changes[1:]))
    assert attack.needs_model and attack.family == "adversarial"
    with pytest.raises(InputError, match="model"):
        attack(images, 1, seeds=derive_seeds(0, range(6)))
    with pytest.raises(InputError, match="five"):
        robustviz.create("perturbation", "fgsm", epsilons=(0.1,))
