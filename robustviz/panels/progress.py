"""Live progress: watch a zarr store that an evaluation is filling, and progress bars for long loops.

The evaluator reports progress through ``tqdm.auto``, which renders as an ipywidgets progress bar in a notebook
(JupyterLab 4, Notebook 7) and as text in a terminal, so nothing robustviz-specific is needed to see a run advance:
:func:`progress_bar` returns such a bar. To look at partial results while a run is still going (in the same notebook
with ``evaluate`` in a thread, or in another process), open the store with :class:`CubeWatcher`: its *refresh* button
(or :meth:`CubeWatcher.refresh`) re-opens the store — a fresh, lazy ``xr.open_zarr`` that sees every region written
since — and hands the new cube to the panels. Regions not yet written read as the store's fill values (NaN for
floats); the ``done`` mask the store keeps says how far the run got.
"""

from __future__ import annotations

import html
import os
import threading
import warnings
from typing import Any, Callable, Iterable

import numpy as np
import xarray as xr

from ._base import computed


def open_cube(store: str | os.PathLike[str]) -> xr.Dataset:
    """The cube in a zarr store, opened lazily (dask-backed; nothing is loaded)."""
    if not os.path.exists(store):
        raise FileNotFoundError(f"no zarr store at {os.fspath(store)!r}; pass the path an evaluation writes to "
                                f"(evaluate(spec, store=...)) or an xarray Dataset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(store, consolidated=False)


def completion(ds: xr.Dataset) -> tuple[int, int]:
    """(regions done, regions in all) from the store's ``done`` mask; for a cube without one, the (model,
    perturbation) blocks whose last clean sample has a finite ``prob_true``."""
    if "done" in ds.data_vars:
        done = computed(ds["done"]).astype(bool)
        return int(done.sum()), int(done.size)
    if "prob_true" in ds.data_vars:
        filled = np.isfinite(computed(ds["prob_true"].isel(severity=-1, sample=-1)))
        return int(filled.sum()), int(filled.size)
    return 0, 0


def progress_bar(total: int, description: str = "evaluating", **kwargs: Any):
    """A ``tqdm.auto`` bar: an ipywidgets progress bar in notebooks, text elsewhere."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, **kwargs)


class CubeWatcher:
    """Re-read a zarr store on demand and pass the new cube to listeners (panels' ``set_dataset``).

    ``widget`` is a refresh button with a "regions done" label. ``listeners`` are callables taking the new
    Dataset; :func:`robustviz.panels.explore` registers its panels.
    """

    def __init__(self, store: str | os.PathLike[str], listeners: Iterable[Callable[[xr.Dataset], Any]] = ()):
        import ipywidgets as widgets

        self.store = os.fspath(store)
        self.listeners: list[Callable[[xr.Dataset], Any]] = list(listeners)
        self.ds = open_cube(self.store)
        self.button = widgets.Button(description="refresh", icon="refresh",
                                     tooltip="re-read the store (an evaluation may be filling it)")
        self.status = widgets.HTML()
        self.button.on_click(lambda _: self.refresh())
        self.widget = widgets.HBox([self.button, self.status])
        self._update_status()

    def summary(self) -> str:
        """"k/n regions done (p%) — store" as plain text."""
        done, total = completion(self.ds)
        share = f" ({100 * done / total:.0f}%)" if total else ""
        return f"{done}/{total} regions done{share} — {self.store}"

    def _update_status(self) -> None:
        self.status.value = html.escape(self.summary())

    def poll(self, seconds: float) -> threading.Thread:
        """Re-read the store every ``seconds`` in a background thread while regions are still missing (the
        listeners see each new region as it lands); stops when every region is done or :meth:`stop` is called."""
        if seconds <= 0:
            raise ValueError(f"poll needs a positive interval in seconds, got {seconds}")
        self._stopped = threading.Event()

        def loop() -> None:
            last = completion(self.ds)
            while not self._stopped.wait(seconds):
                current = completion(open_cube(self.store))
                if current != last:
                    last = current
                    self.refresh()
                if current[1] and current[0] >= current[1]:
                    return
        thread = threading.Thread(target=loop, name="robustviz-cube-watcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop :meth:`poll`."""
        if getattr(self, "_stopped", None) is not None:
            self._stopped.set()

    def refresh(self) -> xr.Dataset:
        """Re-open the store, notify the listeners, and return the new cube."""
        self.ds = open_cube(self.store)
        self._update_status()
        for listener in self.listeners:
            listener(self.ds)
        return self.ds


__all__ = ["CubeWatcher", "completion", "open_cube", "progress_bar"]
