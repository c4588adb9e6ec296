"""One figure style for every robustviz figure: colour-blind-safe palette, sizes for one- and two-column papers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import matplotlib

matplotlib.use("Agg", force=False)  # figures are files or PNGs in widgets; no GUI backend needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Okabe–Ito palette (colour-blind safe).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
#: Figure widths in inches: one column and two columns of a typical two-column paper (e.g. CVPR/NeurIPS sizes).
WIDTHS = {"single": 3.3, "double": 6.9}

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.3, "lines.markersize": 3.5,
    "savefig.bbox": "tight", "savefig.dpi": 200, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}


@contextmanager
def style() -> Iterator[None]:
    """Apply the robustviz style inside a ``with`` block (global rcParams stay untouched)."""
    with plt.rc_context(RC):
        yield


def figure(width: str | float = "single", aspect: float = 0.72, **kwargs):
    """A new Figure of a paper width (``"single"``/``"double"`` or inches) with the robustviz style."""
    inches = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    with style():  # a bare Figure (not pyplot-managed): nothing leaks when panels redraw many times
        kwargs.setdefault("layout", "constrained")  # labels never clipped, however the figure is saved
        return Figure(figsize=(inches, inches * aspect), **kwargs)


def annotate_cells(ax, values, *, fontsize: float) -> None:
    """Write each finite value of a heatmap's ``values`` (rows × columns) into its cell, dark text on the bright
    half of the range and light text on the dark half."""
    import numpy as np

    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="black" if value > middle else "white")


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


__all__ = ["LINESTYLES", "MARKERS", "PALETTE", "RC", "WIDTHS", "annotate_cells", "color", "figure", "style"]
