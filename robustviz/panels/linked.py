"""The linked explorer: seven interactive views of a cube that share one selection, as an anywidget.

The selection (``variable``, ``model``, ``method``, ``perturbation``, ``severity``, ``sample``, plus the scatter's
``explanation`` metric, the ``scope`` of curves and scatter, the ``severity_range`` brushed in the curves, the gallery's map ``scale`` and the scatter's box
selection ``filter_models``) lives in traitlets synced with the browser. A click in any view sets them; the kernel
then recomputes only the payloads (:mod:`robustviz.panels.payloads`) whose inputs changed — the per-sample view
first, so a heatmap click answers fastest — and the front end redraws those views. The front end is one
dependency-free ES module (``static/views.js``) that anywidget loads from the Python package: no JupyterLab build
step, no CDN, no network; the same module draws the static report (:mod:`robustviz.panels.report`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets
import xarray as xr

from .payloads import PAYLOAD_FIELDS, CubeData

STATIC = Path(__file__).with_name("static")
SELECTION = ("variable", "model", "method", "perturbation", "severity", "sample", "explanation", "scope",
             "severity_range")
#: Payloads in the order they are recomputed (the per-sample view first: it is what a click waits for).
ORDER = ("cell", "heatmap", "gallery", "curves", "scatter", "fisher", "spectral")
#: Payloads sent before the selection handler returns; the others follow from a background thread in a kernel.
FIRST = ("cell", "heatmap")


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
    #: the severities (low, high) the scatter pools, brushed in the severity curves; [] for every severity ≥ 1
    severity_range = traitlets.List().tag(sync=True)
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

    def __init__(self, ds: xr.Dataset, *, max_points: int = 1000, background: bool | None = None,
                 settle: float = 0.15, **selection: Any):
        self.data = CubeData(ds, max_points=max_points)
        self._keys: dict[str, str] = {}
        self._lock = threading.RLock()
        self._rest_lock = threading.Lock()
        #: compute all but the per-sample view and heatmap in a background thread (default: inside a kernel,
        #: so a click's reply leaves at once; outside one, e.g. in tests, everything is synchronous)
        self.background = _in_kernel() if background is None else background
        #: seconds the selection must stay still before the background views are recomputed: clicking through
        #: cells updates the per-sample view at once, the gallery and the rest once the clicks stop
        self.settle = settle
        self._changed_at = 0.0
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
        """Recompute the payloads whose keys changed (all with ``force``): the per-sample view and heatmap now,
        the others now or (``background``) in a thread that always works on the latest selection."""
        start = self._changed_at = time.perf_counter()
        self._refresh(FIRST, force)
        self.last_update_seconds = time.perf_counter() - start
        rest = tuple(kind for kind in ORDER if kind not in FIRST)
        if self.background and not force:
            threading.Thread(target=self._refresh_latest, args=(rest,), daemon=True).start()
        else:
            self._refresh(rest, force)

    def _refresh(self, kinds: tuple[str, ...], force: bool = False) -> None:
        """Compute (without holding the lock: a slow payload never delays a click's reply) and send each stale
        payload that is still current when done (a later selection wins)."""
        state = self.selection
        for kind in kinds:
            key = self.data.key(kind, state)
            if force or self._keys.get(kind) != key:
                payload = self.data.payload(kind, state)
                with self._lock:
                    if self.data.key(kind, self.selection) == key:
                        self._keys[kind] = key
                        setattr(self, kind, payload)

    def _refresh_latest(self, kinds: tuple[str, ...]) -> None:
        """One worker at a time; it loops until the payloads match the selection it last saw.

        It starts once the kernel's IOPub thread has sent the per-sample view and the selection has been still for
        ``settle`` seconds: the gallery's images and the other views' redraws then never compete with the next
        click's reply (clicking through cells back to back took 125 ms per click with them, ~40 ms without).
        """
        _flush_iopub()
        while (wait := self._changed_at + self.settle - time.perf_counter()) > 0:
            time.sleep(wait)
        while self._rest_lock.acquire(blocking=False):
            try:
                before = self.selection
                self._refresh(kinds)
            finally:
                self._rest_lock.release()
            if self.selection == before:
                return

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


def _flush_iopub(timeout: float = 0.25) -> None:
    """Wait (at most ``timeout`` s) until the kernel's IOPub thread has handed every queued message to ZeroMQ."""
    try:
        from IPython import get_ipython

        thread = get_ipython().kernel.iopub_socket.io_thread
    except AttributeError:  # not in an ipykernel (or another kernel): nothing to wait for
        return
    sent = threading.Event()
    thread.schedule(sent.set)  # runs after the sends queued before it
    sent.wait(timeout)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


__all__ = ["LinkedExplorer", "PAYLOAD_FIELDS"]
