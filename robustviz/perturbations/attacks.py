"""Stronger adversarial attacks behind the perturbation contract: APGD (L∞, L2), Square (L∞) and targeted variants.

Budgets per severity are those of :mod:`robustviz.perturbations.adversarial` (L∞ ε = 1 … 16 /255; L2 ε =
(0.125 … 2)·√(D/3072)). Every random draw (start points, squares, target classes) comes from :mod:`robustviz.rng`
keyed by the per-sample seeds, and every per-sample decision (step-size halving, accepting a square) depends only on
that sample's own losses, so a sample's adversarial image does not depend on its batch.

- **APGD** (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
  parameter-free attacks"), cross-entropy loss, AutoAttack's schedule: ``steps`` iterations (default 100, the
  paper's), step size η = 2ε, momentum α = 0.75 after the first step, checkpoints ``w_j`` at fractions ``p₀ = 0``,
  ``p₁ = 0.22``, ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)`` of the budget; at a checkpoint η halves (and the
  iterate restarts from the best point) when fewer than ρ = 0.75 of the steps since the last checkpoint increased
  the loss, or when η was not halved last time and the best loss did not improve. Random start: a uniform point of
  the ε-box scaled to touch its surface (L∞), or a normal direction of length ε (L2). Output: the last iterate that
  succeeded (misclassified, or classified as the target) if any, else the point of highest loss.
- **Square** (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via random
  search"), L∞, score-based (logits only, no gradients): start from vertical stripes ±ε, then each query changes one
  random s×s square (all channels) to x ± ε and keeps it if the margin loss decreases; s follows the paper's
  schedule of p (``p_init`` = 0.8, halved at 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 queries,
  rescaled to ``queries``). Margin: ``z_y − max_{j≠y} z_j`` (targeted: ``max_{j≠t} z_j − z_t``); a sample stops
  when it is ≤ 0. At most ``queries`` forward passes per sample (default 1000; RobustBench runs 5000); the
  least-likely target costs one more forward pass on the clean image.
- **Targeted** (``target="random"``: a seeded uniform class other than the label; ``"least_likely"``: the class of
  lowest clean logit other than the label): APGD maximises −CE(target), Square minimises the targeted margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F

from .. import rng
from ..registry import register
from ..validation import InputError
from .adversarial import L2_SCALES, _Attack

TARGET_MODES = (None, "random", "least_likely")


def attack_targets(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, seeds: torch.Tensor,
                   mode: str) -> torch.Tensor:
    """Target classes (never the label): ``"random"`` (seeded per sample) or ``"least_likely"`` (clean logits)."""
    with torch.no_grad():
        logits = model(images)
    classes = logits.shape[1]
    if classes < 2:
        raise InputError("a targeted attack needs a model with at least 2 classes")
    if mode == "random":
        offset = rng.randint(rng.substream(seeds, "attack-target"), classes - 1, device=images.device)
        return (labels + 1 + offset) % classes
    if mode == "least_likely":
        return logits.scatter(1, labels.view(-1, 1), float("inf")).argmin(dim=1)
    raise InputError(f"target must be one of {TARGET_MODES}, got {mode!r}")


def _objective(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Per-sample loss APGD maximises: CE(label), or −CE(target) when targeted."""
    if targets is None:
        return F.cross_entropy(logits, labels, reduction="none")
    return -F.cross_entropy(logits, targets, reduction="none")


def _succeeded(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    prediction = logits.argmax(dim=1)
    return prediction != labels if targets is None else prediction == targets


def _loss_and_gradient(model, images, labels, targets):
    with torch.enable_grad():
        inputs = images.detach().requires_grad_(True)
        logits = model(inputs)
        loss = _objective(logits, labels, targets)
        (gradient,) = torch.autograd.grad(loss.sum(), inputs)
    return loss.detach(), gradient, logits.detach()


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def _project_l2(candidate: torch.Tensor, clean: torch.Tensor, epsilon: float) -> torch.Tensor:
    """AutoAttack's L2 step: scale δ to length ≤ ε, then clip to [0, 1]."""
    delta = candidate - clean
    norms = delta.flatten(1).norm(dim=1)
    scale = torch.minimum(torch.full_like(norms, epsilon), norms) / (norms + 1e-12)
    return (clean + delta * _per_sample(scale, delta)).clamp(0.0, 1.0)


@dataclass
class APGDResult:
    """``images``: the attack's output; ``best_loss``: best-so-far loss per step (``N × (steps+1)``, column 0 the
    start); ``success``: whether some iterate succeeded."""

    images: torch.Tensor
    best_loss: torch.Tensor
    success: torch.Tensor


def _window_schedule(steps: int) -> tuple[int, int, int]:
    """AutoAttack's integer form of the checkpoints: first window, shrink per check, smallest window."""
    return max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)


def apgd_checkpoints(steps: int) -> list[int]:
    """The step counts ``w_j`` after which APGD checks its step size (``0`` first), as the loop computes them."""
    window, shrink, window_min = _window_schedule(steps)
    checkpoints = [0]
    while checkpoints[-1] + window <= steps:
        checkpoints.append(checkpoints[-1] + window)
        window = max(window - shrink, window_min)
    return checkpoints


def apgd(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float, *, seeds: torch.Tensor,
         steps: int = 100, norm: str = "Linf", rho: float = 0.75, targets: torch.Tensor | None = None) -> APGDResult:
    """Auto-PGD with the cross-entropy loss (see the module docstring)."""
    if norm not in ("Linf", "L2"):
        raise InputError(f"norm must be 'Linf' or 'L2', got {norm!r}")
    clean = images.detach()
    shape = clean.shape[1:]
    if norm == "Linf":
        start = 2.0 * rng.uniform(rng.substream(seeds, "apgd-start"), shape, clean.device) - 1.0
        start = start / _per_sample(start.flatten(1).abs().amax(dim=1).clamp_min(1e-12), start)
    else:
        start = rng.normal(rng.substream(seeds, "apgd-start"), shape, clean.device)
        start = start / _per_sample(start.flatten(1).norm(dim=1).clamp_min(1e-12), start)
    current = (clean + epsilon * start).clamp(0.0, 1.0)

    loss, gradient, logits = _loss_and_gradient(model, current, labels, targets)
    success = _succeeded(logits, labels, targets)
    best, best_gradient, best_loss = current.clone(), gradient.clone(), loss.clone()
    best_success = current.clone()
    history, best_history = [loss], [best_loss.clone()]
    step_size = _per_sample(torch.full((clean.shape[0],), 2.0 * epsilon, device=clean.device), clean)
    previous = current.clone()
    window, shrink, window_min = _window_schedule(steps)
    since_check = 0
    reduced_last = torch.ones_like(best_loss, dtype=torch.bool)
    best_at_last_check = best_loss.clone()

    if norm == "Linf":
        def project(candidate):
            return torch.minimum(torch.maximum(candidate, clean - epsilon), clean + epsilon).clamp(0.0, 1.0)
    else:
        def project(candidate):
            return _project_l2(candidate, clean, epsilon)

    for iteration in range(steps):
        momentum_term, previous = current - previous, current
        momentum = 0.75 if iteration > 0 else 1.0
        if norm == "Linf":
            moved = project(current + step_size * gradient.sign())
        else:
            norms = _per_sample(gradient.flatten(1).norm(dim=1), gradient)
            moved = project(current + step_size * gradient / (norms + 1e-12))
        current = project(current + momentum * (moved - current) + (1.0 - momentum) * momentum_term)

        loss, gradient, logits = _loss_and_gradient(model, current, labels, targets)
        succeeded = _succeeded(logits, labels, targets)
        best_success[succeeded] = current[succeeded]
        success |= succeeded
        improved = loss > best_loss
        best[improved], best_gradient[improved], best_loss[improved] = current[improved], gradient[improved], loss[
            improved]
        history.append(loss)
        best_history.append(best_loss.clone())

        since_check += 1
        if since_check == window:
            recent = torch.stack(history[-window - 1:])
            increases = (recent[1:] > recent[:-1]).sum(dim=0)
            oscillating = increases <= window * rho
            stalled = ~reduced_last & (best_at_last_check >= best_loss)
            halve = oscillating | stalled
            reduced_last, best_at_last_check = halve, best_loss.clone()
            if bool(halve.any()):
                step_size[halve] /= 2.0
                current[halve], gradient[halve] = best[halve], best_gradient[halve]
            window, since_check = max(window - shrink, window_min), 0

    output = torch.where(_per_sample(success, clean), best_success, best)
    return APGDResult(output, torch.stack(best_history, dim=1), success)


def _margin(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Square's margin loss (≤ 0 means success; see the module docstring)."""
    reference = labels if targets is None else targets
    true = logits.gather(1, reference.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, reference.view(-1, 1), float("-inf")).amax(dim=1)
    return true - others if targets is None else others - true


def square_fraction(p_init: float, iteration: int, queries: int) -> float:
    """The paper's schedule of the fraction p of pixels a square covers, rescaled from 10 000 queries."""
    scaled = int(iteration / queries * 10000)
    halvings = sum(scaled > threshold for threshold in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
    return p_init / 2**halvings


@dataclass
class SquareResult:
    """``images``: the best point per sample; ``queries``: forward passes spent per sample; ``margin``: its margin."""

    images: torch.Tensor
    queries: torch.Tensor
    margin: torch.Tensor


def square_attack(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float, *,
                  seeds: torch.Tensor, queries: int = 1000, p_init: float = 0.8,
                  targets: torch.Tensor | None = None) -> SquareResult:
    """The L∞ Square attack (see the module docstring); no gradients are computed."""
    clean = images.detach()
    count, channels, height, width = clean.shape
    stripes = rng.uniform(rng.substream(seeds, "square-init"), (channels, 1, width), clean.device) < 0.5
    best = (clean + epsilon * torch.where(stripes, -1.0, 1.0)).clamp(0.0, 1.0)
    with torch.no_grad():
        margin = _margin(model(best), labels, targets)
    spent = torch.ones(count, dtype=torch.int64, device=clean.device)
    draws = rng.uniform(rng.substream(seeds, "square-steps"), (max(queries - 1, 1), 2 + channels), clean.device)
    rows, cols = torch.arange(height, device=clean.device), torch.arange(width, device=clean.device)
    for iteration in range(queries - 1):
        active = (margin > 0).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        fraction = square_fraction(p_init, iteration, queries)
        side = min(max(int(round(math.sqrt(fraction * height * width))), 1), min(height, width) - 1)
        draw = draws[active, iteration]
        top = (draw[:, 0] * (height - side)).long()
        left = (draw[:, 1] * (width - side)).long()
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
        square = (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)  # A × 1 × H × W
        signs = torch.where(draw[:, 2:] < 0.5, -1.0, 1.0).view(-1, channels, 1, 1)
        candidate = torch.where(square, clean[active] + epsilon * signs, best[active]).clamp(0.0, 1.0)
        with torch.no_grad():
            new_margin = _margin(model(candidate), labels[active], None if targets is None else targets[active])
        spent[active] += 1
        improved = new_margin < margin[active]
        best[active[improved]] = candidate[improved]
        margin[active[improved]] = new_margin[improved]
    return SquareResult(best, spent, margin)


class _StrongAttack(_Attack):
    norm: ClassVar[str] = "Linf"
    default_target: ClassVar[str | None] = None

    def __init__(self, epsilons: Sequence[float] | None = None, target: str | None = "default"):
        super().__init__(epsilons)
        target = self.default_target if target == "default" else target
        if target not in TARGET_MODES:
            raise InputError(f"{self.name}: target must be None, 'random' or 'least_likely', got {target!r}")
        self.target = target

    def epsilon(self, severity: int, images: torch.Tensor) -> float:
        if self.norm == "L2" and not self.epsilons:
            return L2_SCALES[severity - 1] * math.sqrt(images[0].numel() / 3072.0)
        return super().epsilon(severity, images)

    def targets(self, model, images, labels, seeds) -> torch.Tensor | None:
        if self.target is None:
            return None
        return attack_targets(model, images, labels, rng.substream(seeds, "target"), self.target)


@register("perturbation", "apgd")
class APGD(_StrongAttack):
    """APGD-CE in the L∞ ball, ε = 1 … 16 /255, 100 steps; ``target`` = None (untargeted), "random" or
    "least_likely"."""

    name = "apgd"

    def __init__(self, epsilons: Sequence[float] | None = None, steps: int = 100, rho: float = 0.75,
                 target: str | None = "default"):
        super().__init__(epsilons, target)
        if int(steps) < 1 or not 0 < rho < 1:
            raise InputError(f"{self.name}: steps must be ≥ 1 and 0 < rho < 1, got {steps}, {rho}")
        self.steps, self.rho = int(steps), float(rho)

    def apply(self, images, severity, *, seeds, model=None, labels=None):
        targets = self.targets(model, images, labels, seeds)
        return apgd(model, images, labels, self.epsilon(severity, images), seeds=seeds, steps=self.steps,
                    norm=self.norm, rho=self.rho, targets=targets).images


@register("perturbation", "apgd-l2")
class APGDL2(APGD):
    """APGD-CE in the L2 ball, ε = (0.125 … 2)·√(D/3072) (the ``pgd-l2`` budgets), 100 steps."""

    name = "apgd-l2"
    norm = "L2"


@register("perturbation", "apgd-targeted")
class APGDTargeted(APGD):
    """Targeted APGD-CE (L∞) towards a seeded random class other than the label (``target="least_likely"``: the
    least likely class on the clean image)."""

    name = "apgd-targeted"
    default_target = "random"


@register("perturbation", "square")
class Square(_StrongAttack):
    """Square attack (L∞, score-based), ε = 1 … 16 /255, at most ``queries`` (1000) forward passes per sample."""

    name = "square"

    def __init__(self, epsilons: Sequence[float] | None = None, queries: int = 1000, p_init: float = 0.8,
                 target: str | None = "default"):
        super().__init__(epsilons, target)
        if int(queries) < 1 or not 0 < p_init <= 1:
            raise InputError(f"{self.name}: queries must be ≥ 1 and 0 < p_init ≤ 1, got {queries}, {p_init}")
        self.queries, self.p_init = int(queries), float(p_init)

    def apply(self, images, severity, *, seeds, model=None, labels=None):
        targets = self.targets(model, images, labels, seeds)
        return square_attack(model, images, labels, self.epsilon(severity, images), seeds=seeds,
                             queries=self.queries, p_init=self.p_init, targets=targets).images


@register("perturbation", "square-targeted")
class SquareTargeted(Square):
    """Targeted Square attack towards a seeded random class other than the label (or ``"least_likely"``)."""

    name = "square-targeted"
    default_target = "random"


__all__ = ["APGD", "APGDL2", "APGDResult", "APGDTargeted", "Square", "SquareResult", "SquareTargeted",
           "apgd", "apgd_checkpoints", "attack_targets", "square_attack", "square_fraction"]
