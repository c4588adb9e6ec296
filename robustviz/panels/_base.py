"""What every panel shares: reading small slices of a (lazy) cube, PNG rendering, and the Panel widget base class.

Panels draw with matplotlib's object-oriented API on a :class:`matplotlib.figure.Figure` (never ``pyplot``), so they
neither need nor change the notebook's matplotlib backend, and show the figure as a PNG in an ``ipywidgets.Image``
(Agg rendering: works in JupyterLab 4 and Notebook 7 without ipympl). Cubes opened with ``xr.open_zarr`` stay lazy:
panels select and reduce with xarray and compute only the small result they draw.
"""

from __future__ import annotations

import html
import io
import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Per-sample variables that are not metrics a user would plot on a heatmap.
NON_METRIC_VARIABLES = frozenset({"pred", "done", "model_done", "example_image", "example_attribution"})


class PanelError(ValueError):
    """A panel was asked for something the cube does not hold; the message says what and what to do."""


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with an Agg canvas attached (so text extents and PNG output work anywhere)."""
    figure = Figure(figsize=(width, height))  # no constrained layout: it costs a third of the redraw time
    FigureCanvasAgg(figure)
    return figure


def figure_to_png(figure: Figure, dpi: int = 90) -> bytes:
    """Render ``figure`` with Agg to PNG bytes (one draw; fast zlib level — PNGs here are small)."""
    from PIL import Image

    figure.set_dpi(dpi)
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    buffer = io.BytesIO()
    Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
        buffer, format="png", compress_level=1)
    return buffer.getvalue()


def computed(array: xr.DataArray) -> np.ndarray:
    """The values of a (possibly dask-backed) DataArray as numpy, computing only this array."""
    return np.asarray(array.compute().values if array.chunks is not None else array.values)


def require_variable(ds: xr.Dataset, variable: str, what: str = "this panel") -> xr.DataArray:
    if variable not in ds.data_vars:
        raise PanelError(f"{what} needs the cube variable {variable!r}, which this cube lacks; it has "
                         f"{', '.join(sorted(map(str, ds.data_vars)))}")
    return ds[variable]


def check_choice(ds: xr.Dataset, dim: str, value: Any) -> Any:
    """``value`` if it is a label of ``dim``, else a :class:`PanelError` listing the labels."""
    labels = list(ds[dim].values)
    if value not in labels:
        raise PanelError(f"{dim} {value!r} is not in this cube; choose one of {labels}")
    return value


def sample_variables(ds: xr.Dataset) -> list[str]:
    """Per-sample metric variables (dims include perturbation, severity and sample, and no per-sample array dims
    such as ``attribution_pooled``'s), in cube order."""
    core = {"model", "perturbation", "severity", "method", "sample"}
    return [str(name) for name, var in ds.data_vars.items()
            if name not in NON_METRIC_VARIABLES and {"perturbation", "severity", "sample"} <= set(var.dims) <= core]


def method_variables(ds: xr.Dataset) -> list[str]:
    """Per-sample variables with a ``method`` dim (explanation metrics)."""
    return [name for name in sample_variables(ds) if "method" in ds[name].dims]


def select_cell(array: xr.DataArray, *, model: Any = None, method: Any = None, **others: Any) -> xr.DataArray:
    """Select the labels given (``method`` only if the array has that dim)."""
    selection = {dim: value for dim, value in {"model": model, "method": method, **others}.items()
                 if value is not None and dim in array.dims}
    return array.sel(selection)


def as_float(array: xr.DataArray) -> xr.DataArray:
    return array.astype(np.float64) if array.dtype == bool else array


def label_of(ds: xr.Dataset, variable: str) -> str:
    """Axis label of a variable: its name and which direction is better (long names do not fit on an axis)."""
    text = str(variable)
    direction = ds[variable].attrs.get("direction")
    if direction in ("higher", "lower"):
        text += f" ({direction} is better)"
    return text


def class_names(ds: xr.Dataset) -> list[str] | None:
    raw = ds.attrs.get("class_names")
    if raw is None:
        return None
    try:
        names = json.loads(raw) if isinstance(raw, str) else list(raw)
    except ValueError:
        return None
    return [str(name) for name in names]


def options(ds: xr.Dataset, dim: str) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in ds[dim].values]


class Panel:
    """Base of every panel: controls on top, a PNG image below; any control change redraws the image.

    Subclasses build their controls in :meth:`_build_controls` (a list of widgets whose ``value`` changes trigger a
    redraw), return the keyword state of their pure render function from :meth:`state`, and name it in
    :attr:`render_function`. :attr:`last_render_seconds` holds the time the last redraw took (benchmarks read it).
    """

    render_function: Callable[..., Figure]
    figure_size: tuple[float, float] = (7.0, 4.0)

    def __init__(self, ds: xr.Dataset):
        import ipywidgets as widgets

        self.ds = ds
        self.last_render_seconds = float("nan")
        self.last_error: str | None = None
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.message = widgets.HTML()
        self.controls = self._build_controls()
        for control in self.controls:
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox(self.controls, layout=widgets.Layout(flex_flow="row wrap")),
                                    self.message, *self._extra_widgets()])
        self._rendered = False
        self._batching = False
        self._sync_controls()

    # -- subclass hooks -----------------------------------------------------------------------------------------
    def _build_controls(self) -> list:
        raise NotImplementedError

    def _sync_controls(self) -> None:
        """Enable/disable controls that do not apply to the current choice (called before each redraw)."""

    def _extra_widgets(self) -> Sequence:
        return [self.image]

    def state(self) -> dict[str, Any]:
        """Keyword arguments of the render function for the controls' current values."""
        raise NotImplementedError

    def _show(self, figure: Figure) -> None:
        self.image.value = figure_to_png(figure)

    # -- drawing ------------------------------------------------------------------------------------------------
    def render(self) -> Figure:
        """The figure for the current state (pure: reads the cube, changes no widget)."""
        return type(self).render_function(self.ds, **self.state())

    def refresh(self, *_: Any) -> None:
        """Redraw; a problem is shown above the image (the previous image stays) instead of raising in a callback."""
        start = time.perf_counter()
        self._sync_controls()
        try:
            self._show(self.render())
            self.message.value = ""
            self.last_error = None
        except (PanelError, KeyError, ValueError) as error:
            self.last_error = str(error)
            self.message.value = f"<span style='color:#b00'>{_escape(str(error))}</span>"
        self.last_render_seconds = time.perf_counter() - start
        self._rendered = True

    def ensure_rendered(self) -> None:
        if not self._rendered:
            self.refresh()

    def set_dataset(self, ds: xr.Dataset, redraw: bool = True) -> None:
        """Point the panel at a re-read cube (e.g. a store an evaluation is filling); redraw now, or (``redraw=
        False``) when next shown."""
        self.ds = ds
        self._forget_cached()
        if redraw:
            self.refresh()
        else:
            self._rendered = False

    def _forget_cached(self) -> None:
        """Drop anything computed from the previous cube (subclasses that cache override this)."""

    def _on_change(self, change: dict) -> None:
        if not self._batching:
            self.refresh()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Change several controls with one redraw at the end."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.ensure_rendered()
        return self.widget._repr_mimebundle_(**kwargs)


def _escape(text: str) -> str:
    return html.escape(text)


def dropdown(description: str, values: Sequence[Any], value: Any = None, **kwargs: Any):
    import ipywidgets as widgets

    values = list(values)
    return widgets.Dropdown(description=description, options=values,
                            value=value if value is not None else (values[0] if values else None),
                            layout=widgets.Layout(width="auto"), style={"description_width": "initial"}, **kwargs)


__all__ = ["Panel", "PanelError", "as_float", "check_choice", "class_names", "computed", "dropdown", "figure_to_png",
           "label_of", "method_variables", "new_figure", "options", "require_variable", "sample_variables",
           "select_cell"]
