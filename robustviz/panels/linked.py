"""The linked explorer: seven interactive views of a cube that share one selection, as an anywidget.

The selection (``variable``, ``model``, ``method``, ``perturbation``, ``severity``, ``sample``, plus the scatter's
``explanation`` metric, the ``scope`` of curves and scatter, the gallery's map ``scale`` and the scatter's box
selection ``filter_models``) lives in traitlets synced with the browser. A click in any view sets them; the kernel
then recomputes only the payloads (:mod:`robustviz.panels.payloads`) whose inputs changed — the per-sample view
first, so a heatmap click answers fastest — and the front end redraws those views. The front end is one
dependency-free ES module (``static/views.js``) that anywidget loads from the Python package: no JupyterLab build
step, no CDN, no network; the same module draws the static report (:mod:`robustviz.panels.report`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets
import xarray as xr

from .payloads import PAYLOAD_FIELDS, CubeData

STATIC = Path(__file__).with_name("static")
SELECTION = ("variable", "model", "method", "perturbation", "severity", "sample", "explanation", "scope")
#: Payloads in the order they are recomputed (the per-sample view first: it is what a click waits for).
ORDER = ("cell", "heatmap", "gallery", "curves", "scatter", "fisher", "spectral")


class LinkedExplorer(anywidget.AnyWidget):
    """Heatmap, per-sample view, severity curves, three-criteria scatter, sample gallery, spectral and Fisher
    panels of ``ds`` (ideally lazy: ``xr.open_zarr``), linked through one selection.

    Set the selection from code as from the page (``explorer.perturbation = "fog"``); read back what the page chose
    the same way. ``last_update_seconds`` is the kernel time of the last selection change (benchmarks read it).
    """

    _esm = STATIC / "views.js"

    variable = traitlets.Unicode().tag(sync=True)
    model = traitlets.Any().tag(sync=True)
    method = traitlets.Any(None, allow_none=True).tag(sync=True)
    perturbation = traitlets.Any().tag(sync=True)
    severity = traitlets.Int().tag(sync=True)
    sample = traitlets.Any().tag(sync=True)
    explanation = traitlets.Any(None, allow_none=True).tag(sync=True)
    scope = traitlets.Unicode("all").tag(sync=True)
    scale = traitlets.Unicode("per-method").tag(sync=True)
    filter_models = traitlets.List().tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    meta = traitlets.Dict().tag(sync=True)
    heatmap = traitlets.Dict().tag(sync=True)
    cell = traitlets.Dict().tag(sync=True)
    curves = traitlets.Dict().tag(sync=True)
    scatter = traitlets.Dict().tag(sync=True)
    gallery = traitlets.Dict().tag(sync=True)
    spectral = traitlets.Dict().tag(sync=True)
    fisher = traitlets.Dict().tag(sync=True)

    def __init__(self, ds: xr.Dataset, *, max_points: int = 1000, **selection: Any):
        self.data = CubeData(ds, max_points=max_points)
        self._keys: dict[str, str] = {}
        self._lock = threading.RLock()
        self.last_update_seconds = float("nan")
        state = {**self.data.default_state(), **selection}
        super().__init__(meta=self.data.meta(), **{k: v for k, v in state.items() if k in SELECTION})
        self._update()
        self.observe(self._on_selection, names=list(SELECTION))

    @property
    def selection(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SELECTION}

    def _on_selection(self, change: dict) -> None:
        self._update()

    def _update(self, force: bool = False) -> None:
        """Recompute the payloads whose keys changed (all with ``force``)."""
        import time

        start = time.perf_counter()
        with self._lock:
            state = self.selection
            for kind in ORDER:
                key = self.data.key(kind, state)
                if force or self._keys.get(kind) != key:
                    self._keys[kind] = key
                    setattr(self, kind, self.data.payload(kind, state))
        self.last_update_seconds = time.perf_counter() - start

    def set_dataset(self, ds: xr.Dataset, status: str | None = None) -> None:
        """Show a re-read cube (e.g. a store an evaluation is filling): drop the cached aggregates, resend all."""
        with self._lock:
            self.data = CubeData(ds, max_points=self.data.max_points)
            self.meta = self.data.meta()
            if status is not None:
                self.status = status
            self._update(force=True)

    def select_cell(self, perturbation: Any, severity: int) -> None:
        """What a click on the heatmap does: one update for both fields."""
        with self.hold_trait_notifications():
            self.perturbation, self.severity = perturbation, int(severity)


__all__ = ["LinkedExplorer", "PAYLOAD_FIELDS"]
