"""``perturbation_grid``: what each perturbation does to a few images, severity by severity.

One row per (image, perturbation) pair, one column per severity (0 = clean). Unlike the other figure functions
this one applies perturbations — pure image functions, never a model — so adversarial perturbations (which need
a model) are refused with a pointer to the cube-based figures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..perturbations.base import Perturbation
from ..registry import create
from ..rng import derive_seeds
from ..validation import InputError, check_images
from .style import figure, style


def _resolve(perturbation: str | Perturbation) -> Perturbation:
    item = create("perturbation", perturbation) if isinstance(perturbation, str) else perturbation
    if not isinstance(item, Perturbation):
        raise InputError(f"perturbations must be registered names or Perturbation objects, got {perturbation!r}")
    if item.needs_model or getattr(item, "needs_sample_ids", False):
        raise InputError(f"{item.name} needs a model or stored samples; show it from a results cube instead "
                         f"(robustviz.figures.explanations)")
    return item


def perturbation_grid(images: torch.Tensor, perturbations: Sequence[str | Perturbation] | str | Perturbation,
                      severities: Sequence[int] = (0, 1, 2, 3, 4, 5), seed: int = 0,
                      width: str | float = "double") -> Figure:
    """Grid of perturbed images: rows (image × perturbation), columns = ``severities``.

    ``images`` are N×C×H×W in [0, 1] (C = 1 or 3); sample ``i`` is seeded with
    ``derive_seeds(seed, [i], name, severity)`` exactly as the engine seeds sample id ``i``.
    """
    check_images(images)
    if isinstance(perturbations, (str, Perturbation)):
        perturbations = [perturbations]
    items = [_resolve(p) for p in perturbations]
    severities = [int(s) for s in severities]
    if not items or not severities:
        raise InputError("perturbation_grid needs at least one perturbation and one severity")
    rows = [(index, item) for index in range(images.shape[0]) for item in items]
    sample_ids = torch.arange(images.shape[0])
    panels = {}
    for item in items:
        for severity in severities:
            seeds = derive_seeds(seed, sample_ids, item.name, severity)
            panels[item.name, severity] = item(images, severity, seeds=seeds).detach().cpu()
    columns = len(severities)
    fig = figure(width, aspect=len(rows) / columns)
    with style():
        axes = fig.subplots(len(rows), columns, squeeze=False)
        for row, (index, item) in enumerate(rows):
            for column, severity in enumerate(severities):
                axis = axes[row, column]
                picture = panels[item.name, severity][index].permute(1, 2, 0).numpy()
                if picture.shape[-1] == 1:
                    axis.imshow(np.clip(picture[..., 0], 0, 1), cmap="gray", vmin=0, vmax=1)
                else:
                    axis.imshow(np.clip(picture, 0, 1))
                axis.set_xticks([])
                axis.set_yticks([])
                axis.grid(False)
                if row == 0:
                    axis.set_title("clean" if severity == 0 else f"severity {severity}")
                if column == 0:
                    axis.set_ylabel(f"{item.name}\nimage {index}" if images.shape[0] > 1 else item.name)
        fig.get_layout_engine().set(wspace=0.01, hspace=0.01, w_pad=0.01, h_pad=0.01)  # tight image grid
    return fig


__all__ = ["perturbation_grid"]
