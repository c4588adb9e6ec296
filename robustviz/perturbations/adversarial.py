"""Adversarial perturbations with the attack budget ε as severity: FGSM and PGD (L∞), FGM and PGD in L2.

Untargeted attacks on the cross-entropy of the true label (``labels`` passed by the engine), in pixel space
[0, 1] (the model normalises internally), model in eval mode; model parameters receive no gradients.

- ``fgsm`` (Goodfellow et al., 2015): x' = clip(x + ε·sign ∇ₓL), through ``captum.robust.FGSM`` (which leaves
  coordinates with |∇ₓL| ≤ 1e-6 unchanged).
- ``pgd`` (Madry et al., 2018), L∞: start x₀ = x + U(−ε, ε) (seeded per sample; ``random_start=False`` starts
  at x), then ``steps`` times x ← Π(x + α·sign ∇ₓL) with α = 2.5·ε/steps, Π = clip to the ε-box around x and to
  [0, 1]. With ``random_start=False`` this is exactly ``captum.robust.PGD(..., norm="Linf")`` (tested), including
  Captum's rule of not moving coordinates whose gradient magnitude is below 1e-6.
- ``fgm-l2`` (the fast gradient method in L2, Miyato et al. 2016): x' = clip(x + ε·∇ₓL/‖∇ₓL‖₂) — one PGD-L2
  step of length ε from x.
- ``pgd-l2``: steps along the L2-normalised gradient, x ← Π(x + α·g/‖g‖₂), Π = rescale δ to ‖δ‖₂ ≤ ε then clip
  to [0, 1]; random start uniform in the ε-ball (direction from a seeded normal, radius ε·u^{1/D}).

Budgets per severity 1 … 5: L∞ ε = 1, 2, 4, 8, 16 (/255); L2 ε = s·√(D/3072) with s = 0.125, 0.25, 0.5, 1, 2 and
D = C·H·W — the CIFAR-10 budgets (RobustBench's L2 ε = 0.5 is severity 3) rescaled so that the per-pixel RMS
perturbation is the same at every image size (ε = 3.5 at severity 3 for 224 px, close to ImageNet's customary 3).
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F

from .. import rng
from ..registry import register
from ..validation import InputError
from .base import Perturbation

LINF_EPSILONS = tuple(v / 255.0 for v in (1, 2, 4, 8, 16))
L2_SCALES = (0.125, 0.25, 0.5, 1.0, 2.0)
_ZERO_GRADIENT = 1e-6  # captum.robust.FGSM.zero_thresh


def _loss_gradient(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """∇ₓ Σᵢ CE(model(xᵢ), yᵢ) without touching the parameters' ``.grad``."""
    with torch.enable_grad():
        inputs = images.detach().requires_grad_(True)
        loss = F.cross_entropy(model(inputs), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, inputs)
    return gradient


class _Attack(Perturbation):
    family: ClassVar[str] = "adversarial"
    needs_model: ClassVar[bool] = True

    def __init__(self, epsilons: Sequence[float] | None = None):
        if epsilons is not None:
            epsilons = tuple(float(e) for e in epsilons)
            if len(epsilons) != 5 or any(e <= 0 for e in epsilons):
                raise InputError(f"{self.name}: epsilons must be five positive budgets (severities 1..5), "
                                 f"got {epsilons}")
        self.epsilons = epsilons

    def epsilon(self, severity: int, images: torch.Tensor) -> float:
        """The budget ε at ``severity`` for images shaped like ``images``."""
        return self.epsilons[severity - 1] if self.epsilons else LINF_EPSILONS[severity - 1]


@register("perturbation", "fgsm")
class FGSM(_Attack):
    """Fast gradient sign method, ε = 1 … 16 /255 (L∞), via ``captum.robust.FGSM``."""

    name = "fgsm"

    def apply(self, images, severity, *, seeds, model=None, labels=None):
        from captum.robust import FGSM as CaptumFGSM

        attack = CaptumFGSM(model, loss_func=lambda out, y: F.cross_entropy(out, y, reduction="none"),
                            lower_bound=0.0, upper_bound=1.0)
        with torch.enable_grad():
            return attack.perturb(images.detach().requires_grad_(True), self.epsilon(severity, images), labels).detach()


class _PGD(_Attack):
    norm: ClassVar[str] = "Linf"

    def __init__(self, epsilons: Sequence[float] | None = None, steps: int = 10, step_ratio: float = 2.5,
                 random_start: bool = True):
        super().__init__(epsilons)
        if int(steps) < 1 or step_ratio <= 0:
            raise InputError(f"{self.name}: steps must be ≥ 1 and step_ratio > 0, got {steps}, {step_ratio}")
        self.steps, self.step_ratio, self.random_start = int(steps), float(step_ratio), bool(random_start)

    def apply(self, images, severity, *, seeds, model=None, labels=None):
        epsilon = self.epsilon(severity, images)
        return pgd(model, images, labels, epsilon, steps=self.steps, step_size=self.step_ratio * epsilon / self.steps,
                   norm=self.norm, seeds=seeds if self.random_start else None)


@register("perturbation", "pgd")
class PGD(_PGD):
    """Projected gradient descent in the L∞ ball, ε = 1 … 16 /255, 10 steps of 2.5·ε/10, seeded random start."""

    name = "pgd"


@register("perturbation", "pgd-l2")
class PGDL2(_PGD):
    """Projected gradient descent in the L2 ball, ε = (0.125 … 2)·√(D/3072), 10 steps, seeded random start."""

    name = "pgd-l2"
    norm = "L2"

    def epsilon(self, severity: int, images: torch.Tensor) -> float:
        if self.epsilons:
            return self.epsilons[severity - 1]
        return L2_SCALES[severity - 1] * math.sqrt(images[0].numel() / 3072.0)


@register("perturbation", "fgm-l2")
class FGML2(PGDL2):
    """Fast gradient method in L2: one step of length ε along ∇ₓL/‖∇ₓL‖₂, the L2 budgets of ``pgd-l2``."""

    name = "fgm-l2"

    def __init__(self, epsilons: Sequence[float] | None = None):
        super().__init__(epsilons, steps=1, step_ratio=1.0, random_start=False)


def pgd(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float, *, steps: int,
        step_size: float, norm: str = "Linf", seeds: torch.Tensor | None = None) -> torch.Tensor:
    """Untargeted PGD on the cross-entropy (see the module docstring); ``seeds=None`` means no random start."""
    clean = images.detach()
    count = clean.shape[0]
    if norm not in ("Linf", "L2"):
        raise InputError(f"norm must be 'Linf' or 'L2', got {norm!r}")

    def project(candidate: torch.Tensor) -> torch.Tensor:
        delta = candidate - clean
        if norm == "Linf":
            delta = delta.clamp(-epsilon, epsilon)
        else:
            delta = torch.renorm(delta, 2, 0, epsilon)
        return (clean + delta).clamp(0.0, 1.0)

    adversarial = clean
    if seeds is not None:
        if norm == "Linf":
            start = rng.uniform(rng.substream(seeds, "pgd-start"), clean.shape[1:], clean.device) * 2.0 - 1.0
            adversarial = (clean + epsilon * start).clamp(0.0, 1.0)
        else:
            direction = rng.normal(rng.substream(seeds, "pgd-direction"), clean.shape[1:], clean.device)
            direction = F.normalize(direction.reshape(count, -1), dim=1).reshape(clean.shape)
            radius = rng.uniform(rng.substream(seeds, "pgd-radius"), (1,), clean.device).reshape(-1)
            radius = epsilon * radius ** (1.0 / clean[0].numel())
            adversarial = (clean + radius.reshape(-1, 1, 1, 1) * direction).clamp(0.0, 1.0)
    for _ in range(steps):
        gradient = _loss_gradient(model, adversarial, labels)
        if norm == "Linf":
            moved = adversarial + step_size * torch.sign(gradient)
            moved = torch.where(gradient.abs() > _ZERO_GRADIENT, moved, adversarial).clamp(0.0, 1.0)
        else:
            norms = gradient.reshape(count, -1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1, 1)
            moved = adversarial + step_size * gradient / norms
        adversarial = project(moved).detach()
    return adversarial


__all__ = ["FGSM", "L2_SCALES", "LINF_EPSILONS", "PGD", "PGDL2", "pgd"]
