"""APGD, Square and the targeted variants: budgets, APGD's best-so-far loss and checkpoint schedule, APGD at least
as strong as PGD with the same budget, Square's query budget and success, targeted attacks raise the target
probability, per-sample seeding (batch independence) and the perturbation contract."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

import robustviz
from robustviz.perturbations.adversarial import pgd
from robustviz.perturbations.attacks import apgd, apgd_checkpoints, attack_targets, square_attack, square_fraction
from robustviz.rng import derive_seeds, substream
from robustviz.testing import assert_perturbation_contract
from robustviz.validation import InputError


@pytest.fixture(scope="module")
def zoo():
    """The zoo's trained SmallCNN on 16 shapes at 64 px (its training size: accurate, so attacks have work)."""
    model = robustviz.create("model", "smallcnn-standard").eval()
    data = robustviz.create("dataset", "shapes", n_samples=16, image_size=64)
    return model, data.images, data.labels, derive_seeds(0, range(16), "attack")


@pytest.fixture(scope="module")
def small():
    """The same model on 8 shapes at 32 px (cheap), labelled by its own clean predictions (clean error 0)."""
    model = robustviz.create("model", "smallcnn-standard").eval()
    images = robustviz.create("dataset", "shapes", n_samples=8, image_size=32).images
    with torch.no_grad():
        labels = model(images).argmax(1)
    return model, images, labels, derive_seeds(0, range(8), "attack")


def _error_rate(model, images, labels):
    with torch.no_grad():
        return float((model(images).argmax(1) != labels).float().mean())


def test_checkpoints_follow_the_paper():
    """w_j = ceil(p_j · N) with p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) (exact fractions)."""
    fractions = [Fraction(0), Fraction(22, 100)]
    while fractions[-1] + max(fractions[-1] - fractions[-2] - Fraction(3, 100), Fraction(6, 100)) <= 1:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - Fraction(3, 100), Fraction(6, 100)))
    assert apgd_checkpoints(100) == [math.ceil(p * 100) for p in fractions] == [0, 22, 41, 57, 70, 80, 87, 93, 99]


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_apgd_respects_the_ball_and_its_best_loss_never_decreases(norm, small):
    model, images, labels, seeds = small
    epsilon = 2 / 255 if norm == "Linf" else 0.25
    result = apgd(model, images, labels, epsilon, seeds=seeds, steps=12, norm=norm)
    delta = (result.images - images).flatten(1)
    size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    assert bool((size <= epsilon + 1e-5).all()) and float(size.max()) > 0.5 * epsilon
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.best_loss.shape == (8, 13)
    assert bool((result.best_loss[:, 1:] >= result.best_loss[:, :-1]).all())
    with torch.no_grad():
        logits = model(result.images)
        loss = F.cross_entropy(logits, labels, reduction="none")
    failed = ~result.success  # the highest-loss point is returned where no iterate succeeded
    torch.testing.assert_close(loss[failed], result.best_loss[failed, -1], atol=1e-4, rtol=1e-4)
    assert bool((logits.argmax(1)[result.success] != labels[result.success]).all())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_apgd_is_at_least_as_strong_as_pgd_with_the_same_budget(zoo):
    """Same ε, same number of gradient steps, same seeded start distribution; APGD is tuned for ~100 steps, and with
    very few (10 here) PGD can win, so the comparison uses 20."""
    model, images, labels, seeds = zoo
    epsilon, steps = 2 / 255, 20
    ours = robustviz.create("perturbation", "apgd", steps=steps, epsilons=[epsilon] * 5)(
        images, 1, seeds=seeds, model=model, labels=labels)
    baseline = pgd(model, images, labels, epsilon, steps=steps, step_size=2.5 * epsilon / steps, seeds=seeds)
    clean_error = _error_rate(model, images, labels)
    apgd_error, pgd_error = _error_rate(model, ours, labels), _error_rate(model, baseline, labels)
    assert apgd_error >= pgd_error and apgd_error > clean_error + 0.25
    with torch.no_grad():
        apgd_loss = F.cross_entropy(model(ours), labels)
        pgd_loss = F.cross_entropy(model(baseline), labels)
    assert float(apgd_loss) > float(pgd_loss)


def test_square_respects_budget_queries_and_fools_the_model(small):
    model, images, labels, seeds = small
    calls = []

    class Counting(torch.nn.Module):
        def forward(self, batch):
            calls.append(batch.shape[0])
            return model(batch)

    epsilon, queries = 8 / 255, 100
    result = square_attack(Counting(), images, labels, epsilon, seeds=seeds, queries=queries)
    assert float((result.images - images).abs().max()) <= epsilon + 1e-6
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert int(result.queries.max()) <= queries and sum(calls) == int(result.queries.sum())
    with torch.no_grad():
        logits = model(result.images)
    fooled = logits.argmax(1) != labels
    assert float(fooled.float().mean()) >= 0.25
    assert bool((result.queries[~fooled] == queries).all())  # only fooled samples stop early
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    margin = true - logits.scatter(1, labels.view(-1, 1), float("-inf")).amax(1)
    torch.testing.assert_close(margin, result.margin, atol=1e-4, rtol=1e-4)


def test_square_schedule_halves_p_at_the_papers_iterations():
    assert [square_fraction(0.8, it, 10000) for it in (0, 10, 11, 50, 51, 201, 8001)] == \
        [0.8, 0.8, 0.4, 0.4, 0.2, 0.1, 0.8 / 512]
    assert square_fraction(0.8, 6, 1000) == 0.2  # rescaled: 6 of 1000 queries is 60 of 10 000


@pytest.mark.parametrize("mode", ["random", "least_likely"])
def test_targets_are_never_the_label(mode, small):
    model, images, labels, seeds = small
    targets = attack_targets(model, images, labels, seeds, mode)
    assert bool((targets != labels).all())
    if mode == "least_likely":
        with torch.no_grad():
            logits = model(images)
        for index in range(len(images)):
            order = [int(k) for k in logits[index].argsort() if int(k) != int(labels[index])]
            assert int(targets[index]) == order[0]
    else:
        alone = attack_targets(model, images[3:5], labels[3:5], seeds[3:5], mode)
        assert torch.equal(alone, targets[3:5])
        assert len(set(targets.tolist())) >= 2


@pytest.mark.parametrize("name, params", [("apgd-targeted", {"steps": 10}),
                                          ("apgd-targeted", {"steps": 10, "target": "least_likely"}),
                                          ("square-targeted", {"queries": 60})])
def test_targeted_attacks_raise_the_target_probability(name, params, small):
    model, images, labels, seeds = small
    attack = robustviz.create("perturbation", name, **params)
    out = attack(images, 4, seeds=seeds, model=model, labels=labels)
    targets = attack.targets(model, images, labels, seeds)
    assert bool((targets != labels).all())
    with torch.no_grad():
        before = model(images).log_softmax(1).gather(1, targets.view(-1, 1))
        after = model(out).log_softmax(1).gather(1, targets.view(-1, 1))
    assert float((after - before).mean()) > 1.0  # the target's probability grows e-fold on average
    assert bool((after >= before - 1e-5).all())
    assert float((out - images).abs().max()) <= 8 / 255 + 1e-6


@pytest.mark.parametrize("name, params", [("apgd", {"steps": 4}), ("apgd-l2", {"steps": 4}),
                                          ("apgd-targeted", {"steps": 4}), ("square", {"queries": 12}),
                                          ("square-targeted", {"queries": 12})])
def test_contract_and_batch_independence(name, params, small):
    model, images, labels, _ = small
    attack = robustviz.create("perturbation", name, **params)
    assert attack.family == "adversarial" and attack.needs_model
    attack.severities = (2, 5)  # two budgets keep the test short
    assert_perturbation_contract(attack, images[:4], model=model, labels=labels[:4])


def test_bad_parameters():
    with pytest.raises(InputError, match="target"):
        robustviz.create("perturbation", "apgd", target="everything")
    with pytest.raises(InputError, match="steps"):
        robustviz.create("perturbation", "apgd", steps=0)
    with pytest.raises(InputError, match="queries"):
        robustviz.create("perturbation", "square", queries=0)
    with pytest.raises(InputError, match="norm"):
        apgd(torch.nn.Identity(), torch.zeros(1, 3, 4, 4), torch.zeros(1, dtype=torch.long), 0.1,
             seeds=substream(torch.zeros(1, dtype=torch.int64), "x"), norm="L1")
