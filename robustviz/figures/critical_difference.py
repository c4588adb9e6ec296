"""Critical-difference diagram (Demšar 2006): treatments on an average-rank axis (1 = best, on the left), the
Nemenyi CD as a scale bar, and a thick bar joining every group of treatments whose ranks differ by less than CD."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..cube.stats import CriticalDifference, critical_difference
from .style import figure, style


def cd_diagram(result: CriticalDifference | Any, variable: str | None = None, *, width: str | float = "single",
               title: str | None = None, **kwargs: Any) -> Figure:
    """Draw a CD diagram from a :class:`~robustviz.cube.stats.CriticalDifference`, or compute one first from a
    cube and ``variable`` (``kwargs`` go to :func:`~robustviz.cube.stats.critical_difference`, e.g.
    ``treatment_dim="method"`` or ``alpha=0.1``)."""
    if not isinstance(result, CriticalDifference):
        result = critical_difference(result, variable, **kwargs)
    ranks = np.asarray(result.average_ranks, dtype=np.float64)
    k = len(ranks)
    order = np.argsort(ranks, kind="stable")
    left, right = order[: (k + 1) // 2], order[(k + 1) // 2:][::-1]
    rows = max(len(left), len(right))
    with style():
        fig = figure(width, aspect=0.25 + 0.09 * rows)
        ax = fig.add_subplot()
        ax.set_xlim(0.5 - 0.35 * k, k + 0.5 + 0.35 * k)
        ax.set_ylim(-(rows + 1.5 + len(result.cliques) * 0.3), 1.6)
        ax.axis("off")
        ax.grid(False)
        ax.plot([1, k], [0, 0], color="black", lw=0.8)
        for tick in range(1, k + 1):
            ax.plot([tick, tick], [0, 0.12], color="black", lw=0.8)
            ax.text(tick, 0.22, str(tick), ha="center", va="bottom", fontsize=6)
        ax.plot([1, 1 + result.cd], [1.1, 1.1], color="black", lw=1.0)
        for end in (1, 1 + result.cd):
            ax.plot([end, end], [1.0, 1.2], color="black", lw=1.0)
        ax.text(1 + result.cd / 2, 1.25, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=6)
        for side, members in (("left", left), ("right", right)):
            for row, index in enumerate(members):
                depth = -(row + 1) * 0.6 - len(result.cliques) * 0.3
                edge = 0.5 - 0.1 * k if side == "left" else k + 0.5 + 0.1 * k
                ax.plot([ranks[index], ranks[index], edge], [0, depth, depth], color="black", lw=0.7)
                label = f"{result.names[index]} ({ranks[index]:.2f})"
                ax.text(edge + (-0.05 if side == "left" else 0.05), depth, label, fontsize=6, va="center",
                        ha="right" if side == "left" else "left")
        names = list(result.names)
        for level, clique in enumerate(result.cliques):
            positions = [ranks[names.index(name)] for name in clique]
            height = -0.25 - level * 0.3
            ax.plot([min(positions) - 0.05, max(positions) + 0.05], [height, height], color="black", lw=2.2,
                    solid_capstyle="round")
        ax.set_title(title or f"Nemenyi CD (α = {result.alpha:g}, N = {result.n_blocks})", fontsize=7)
    return fig


__all__ = ["cd_diagram"]
