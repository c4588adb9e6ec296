"""Calibration under shift: per-sample proper scoring rules of the softmax output.

- ``brier``: the multi-class Brier score of one sample, ``Σ_k (p_k − 1[k = y])²`` (Brier 1950; 0 is perfect, 2 the
  worst), with ``p`` the softmax of the (perturbed) logits and ``y`` the label.

The per-sample negative log-likelihood ``−log p_y`` is already in every cube as ``prob_true`` and ECE needs the
``confidence`` and ``correct`` variables every cube has, so neither is stored again: ``ds.rv.calibration()`` derives
ECE (15 equal-width bins), mean NLL and mean Brier per cell, and ``ds.rv.nll()`` the per-sample NLL
(:mod:`robustviz.cube.calibration`).
"""

from __future__ import annotations

import torch

from ..registry import register
from ..validation import InputError
from .base import Metric, MetricContext


def brier_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``Σ_k (softmax(logits)_k − onehot(labels)_k)²`` per sample, in float64."""
    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels).to(logits.device).long()
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise InputError(f"logits must be N×K and labels N, got {tuple(logits.shape)} and {tuple(labels.shape)}")
    probabilities = torch.softmax(logits.double(), dim=1)
    onehot = torch.nn.functional.one_hot(labels, logits.shape[1]).double()
    return ((probabilities - onehot) ** 2).sum(dim=1)


@register("metric", "brier")
class Brier(Metric):
    """Multi-class Brier score of the softmax output against the label; lower is better calibrated."""

    name = "brier"
    direction = "lower"
    category = "calibration"
    needs = frozenset({"logits", "labels"})

    def compute(self, context: MetricContext) -> torch.Tensor:
        return brier_scores(context.logits, context.labels)


__all__ = ["Brier", "brier_scores"]
