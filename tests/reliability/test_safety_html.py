"""Issue 15 point 8: every string that reaches notebook HTML is escaped.

A cube whose model, perturbation, method and metric names, variable attrs, cube attrs and store path are all
``<img src=x onerror=…>`` is rendered through every ``_repr_html_``, the cube display, the store watcher and every
panel of ``explore`` (each HTML widget in the tree, error messages included); no unescaped ``<img src=x`` may
survive, and each hostile name must show up escaped (so the test cannot pass by rendering nothing).
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from robustviz.cube.stats import compare_methods  # noqa: E402
from robustviz.panels import CriteriaScatter, CubeWatcher, explore, figure_to_png  # noqa: E402
from robustviz.panels.extension import cube_html, dataset_html  # noqa: E402
from robustviz.panels.scatter import criteria_data, image_map_html, point_pixels, render_criteria_scatter  # noqa: E402
from robustviz.testing.cubes import make_cube  # noqa: E402

PAYLOAD = "<img src=x onerror=alert({})>"
ATTACK = "<img src=x"


def hostile(what: str) -> str:
    return PAYLOAD.format(what)


@pytest.fixture(scope="module")
def cube():
    ds = make_cube(n_models=2, n_perturbations=2, n_methods=3, n_samples=12, n_examples=2, image_size=8, seed=3)
    ds = ds.assign_coords(
        model=[hostile(f"'model{i}'") for i in range(ds.sizes["model"])],
        perturbation=[hostile(f"'perturbation{i}'") for i in range(ds.sizes["perturbation"])],
        method=[hostile(f"'method{i}'") for i in range(ds.sizes["method"])])
    ds = ds.rename({"cosine": hostile("'metric'")})
    variable = ds[hostile("'metric'")]
    variable.attrs.update(direction=hostile("'direction'"), category=hostile("'category'"),
                          long_name=hostile("'long_name'"))
    ds.attrs.update(title=hostile("'title'"), spec='{"name": "%s"}' % hostile("'spec'"),
                    device=hostile("'device'"), class_names='["%s", "b"]' % hostile("'class'"))
    return ds


def assert_escaped(text: str, *names: str) -> None:
    assert ATTACK not in text, f"unescaped hostile string in: {text[text.index(ATTACK) - 80:][:200]}"
    for name in names:
        assert html.escape(name) in text or html.escape(name, quote=False) in text, f"{name} not shown"


def widget_html(widget) -> list[str]:
    """Every HTML string a widget tree shows: HTML widgets' values and descriptions that allow HTML."""
    import ipywidgets as widgets

    out = []
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath)):
        out.append(widget.value)
    if getattr(widget, "description_allow_html", False):
        out.append(widget.description)
    for child in getattr(widget, "children", ()):
        out.extend(widget_html(child))
    return out


def test_every_repr_escapes_names_and_attrs(cube):
    result = compare_methods(cube, hostile("'metric'"), n_boot=20)
    assert_escaped(result._repr_html_(), hostile("'metric'"), hostile("'direction'"), hostile("'method0'"))
    for text in (cube_html(cube), dataset_html(cube)):
        assert_escaped(text, hostile("'model0'"), hostile("'metric'"), hostile("'direction'"),
                       hostile("'long_name'"), hostile("'title'"), hostile("'device'"))


def test_every_panel_escapes_every_name(cube, tmp_path):
    store = tmp_path / hostile("'store'")
    cube.to_zarr(store, mode="w", consolidated=False)
    assert_escaped(CubeWatcher(store).status.value, str(store))
    box = explore(store)  # the panels of a store, with its watcher on top
    shown = widget_html(box)
    assert_escaped("".join(shown), str(store))

    table = criteria_data(cube, hostile("'metric'"), hostile("'method1'"))
    figure = render_criteria_scatter(cube, hostile("'metric'"), hostile("'method1'"), table=table)
    assert_escaped(image_map_html(figure_to_png(figure), table, point_pixels(figure, table)), hostile("'model1'"))

    for title, panel in box.panels.items():
        panel.ensure_rendered()
        assert panel.last_error is None, (title, panel.last_error)
        shown.extend(widget_html(panel.widget))
        # an error message quotes the labels it lists: make each panel show one (its model is no longer there)
        panel.ds = cube.isel(model=slice(0, 1)).assign_coords(model=[hostile("'other'")])
        panel.refresh()
        shown.extend(widget_html(panel.widget))
        panel.set_dataset(cube)
    scatter = next(panel for panel in box.panels.values() if isinstance(panel, CriteriaScatter))
    scatter.variable.value = hostile("'metric'")
    scatter.model.value = hostile("'model0'")
    shown.extend(widget_html(scatter.widget))
    assert_escaped("".join(shown), hostile("'model0'"), hostile("'metric'"))
    escaped = (html.escape(hostile("'model0'")), html.escape(hostile("'model0'"), quote=False))
    assert any(form in part for part in shown if "<area" not in part for form in escaped), \
        "no panel message or label showed a hostile name"
    assert any("&lt;img src=x" in part for part in shown if "color:#b00" in part), "no error message was shown"


def test_the_static_report_escapes_every_name(cube, tmp_path):
    report = pytest.importorskip("robustviz.panels.report")
    path = report.timed_report(cube, tmp_path, figures=False)[0]
    assert_escaped(Path(path).read_text())
    text = Path(path).read_text()
    assert "&lt;img src=x" in text or "\\u003cimg src=x" in text, "the report shows no hostile name"
