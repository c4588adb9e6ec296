"""The linked explorer's payloads against direct numpy/xarray/scipy computations, its update rules, the static report
(escaping, overwrite safety, CLI) and a watched store."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import numpy as np
import pytest
import scipy.stats
import xarray as xr
import zarr
from PIL import Image

from robustviz.cli import main as cli_main
from robustviz.panels import CubeData, LinkedExplorer, ReportError, explore, write_report
from robustviz.panels._base import PanelError
from robustviz.panels.payloads import dumps_for_script, payload_key

HOSTILE = "<img src=x onerror=alert(1)>"


def test_heatmap_is_the_nan_ignoring_mean_with_a_normal_ci(cube):
    data = CubeData(cube)
    model, method = cube.model.values[1], cube.method.values[1]
    payload = data.heatmap("consistency", model, method)
    values = cube["consistency"].sel({"model": model, "method": method}).transpose("perturbation", "severity", "sample")
    expected = np.nanmean(values.values, axis=-1)
    np.testing.assert_allclose(np.array(payload["mean"], dtype=float), expected, rtol=1e-5)
    i, j = 1, 3
    cell = values.values[i, j][np.isfinite(values.values[i, j])]
    assert payload["n"][i][j] == cell.size < cube.sizes["sample"]  # consistency is NaN where the prediction flipped
    low, high = scipy.stats.norm.interval(0.95, loc=cell.mean(), scale=cell.std(ddof=1) / np.sqrt(cell.size))
    assert payload["low"][i][j] == pytest.approx(low, rel=1e-4) and payload["high"][i][j] == pytest.approx(high,
                                                                                                        rel=1e-4)


def test_missing_cells_are_null_never_zero(cube):
    partial = cube.copy(deep=True)
    partial["prob_true"][0, 1] = np.nan  # a region not written yet
    payload = CubeData(partial).heatmap("prob_true", str(cube.model.values[0]))
    assert all(value is None for value in payload["mean"][1]) and payload["n"][1] == [0] * cube.sizes["severity"]
    assert all(value is not None for value in payload["mean"][0])
    assert "NaN" not in json.dumps(payload, allow_nan=False)


def test_cell_curves_scatter_and_fisher_match_direct_computations(cube):
    data = CubeData(cube)
    model, perturbation = cube.model.values[2], cube.perturbation.values[1]
    cell = data.cell("prob_true", model, None, perturbation, 4)
    direct = cube["prob_true"].sel(model=model, perturbation=perturbation)
    np.testing.assert_allclose(cell["perturbed"], direct.sel(severity=4).values, rtol=1e-4)
    np.testing.assert_allclose(cell["clean"], direct.sel(severity=0).values, rtol=1e-4)

    curves = data.curves("cosine", cube.method.values[0], perturbation)
    line = next(line for line in curves["lines"] if line["model"] == model)
    expected = cube["cosine"].sel({"model": model, "method": cube.method.values[0],
                                   "perturbation": perturbation}).mean("sample")
    np.testing.assert_allclose(line["mean"], expected.values, rtol=1e-5)

    scatter = data.scatter("cosine", None)
    point = next(p for p in scatter["points"] if p["model"] == model and p["method"] == cube.method.values[1])
    corrupted = {"severity": cube.severity.values[1:]}
    assert point["accuracy"] == pytest.approx(float(cube["correct"].sel(model=model, **corrupted).mean()), rel=1e-5)
    assert point["explanation"] == pytest.approx(float(cube["cosine"].sel(
        {"model": model, "method": cube.method.values[1], **corrupted}).mean()), rel=1e-5)
    assert scatter["faithfulness"] == "deletion_auc"
    brushed = data.scatter("cosine", None, [3, 2])  # the curves' brush: severities 2–3, either order
    point = next(p for p in brushed["points"] if p["model"] == model and p["method"] == cube.method.values[1])
    assert brushed["severities"] == [2, 3] and brushed["severity_range"] == [2, 3]
    assert point["accuracy"] == pytest.approx(float(cube["correct"].sel(model=model, severity=[2, 3]).mean()), rel=1e-5)
    assert point["explanation"] == pytest.approx(float(cube["cosine"].sel(
        {"model": model, "method": cube.method.values[1], "severity": [2, 3]}).mean()), rel=1e-5)
    with pytest.raises(PanelError, match="no severity"):
        data.scatter("cosine", None, [7, 9])

    fisher = data.fisher(2)
    sample_values = cube["fisher_lmax"].sel(model=model, perturbation=perturbation, severity=2).values
    np.testing.assert_allclose(np.array(fisher["values"], dtype=float)[:, 2, 1],
                               np.percentile(sample_values, [10, 25, 50, 75, 90]), rtol=1e-4)


def test_gallery_maps_decode_to_the_stored_map(cube):
    data = CubeData(cube)
    model, perturbation, example = cube.model.values[0], cube.perturbation.values[2], int(cube.example.values[1])
    payload = data.gallery(model, perturbation, example)
    assert payload["available"] and len(payload["images"]) == cube.sizes["severity"]
    entry = payload["maps"][1]["severities"][3]
    grey = np.asarray(Image.open(io.BytesIO(base64.b64decode(entry["png"].split(",", 1)[1]))), dtype=float)
    stored = cube["example_attribution"].sel({"model": model, "perturbation": perturbation, "example": example,
                                              "method": cube.method.values[1], "severity": 3}).values.astype(float)
    np.testing.assert_allclose((grey / 127.5 - 1) * entry["scale"], stored, atol=entry["scale"] / 100)
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload["images"][2].split(",", 1)[1]))))
    np.testing.assert_array_equal(image, cube["example_image"].sel(model=model, perturbation=perturbation,
                                                                   example=example, severity=2)
                                  .transpose("y", "x", "channel").values)
    assert payload["pred"] == cube["pred"].sel(model=model, perturbation=perturbation, sample=example).values.tolist()
    assert "no stored images" in data.gallery(model, perturbation, cube.sizes["sample"] - 1)["reason"]


def test_a_selection_change_recomputes_only_the_payloads_that_depend_on_it(cube):
    explorer = LinkedExplorer(cube)
    calls = []
    original = explorer.data.payload
    explorer.data.payload = lambda kind, state: (calls.append(kind), original(kind, state))[1]
    explorer.select_cell(cube.perturbation.values[2], 1)
    assert sorted(calls) == ["cell", "fisher", "gallery"]  # not the heatmap, curves, scatter, spectral
    assert explorer.cell["perturbation"] == cube.perturbation.values[2] and explorer.cell["severity"] == 1
    calls.clear()
    explorer.sample = int(cube.example.values[1])
    assert calls == ["gallery"]
    calls.clear()
    explorer.scope = "selected"
    assert sorted(calls) == ["curves", "scatter"]
    assert explorer.curves["perturbation"] == cube.perturbation.values[2]


def test_payload_keys_match_the_front_end_rule(cube):
    state = {"variable": "correct", "model": "a", "method": "m", "perturbation": "fog", "severity": 3,
             "scope": "all", "sample": 0, "explanation": "cosine"}
    assert payload_key("heatmap", state, has_method=False) == '["correct","a",null]'
    assert payload_key("cell", state, has_method=True) == '["correct","a","m","fog",3]'
    assert payload_key("curves", {**state, "scope": "selected"}, has_method=False) == '["correct",null,"fog"]'
    assert re.search(r"export const PAYLOAD_FIELDS", (
        __import__("robustviz.panels.linked", fromlist=["STATIC"]).STATIC / "views.js").read_text())


def test_the_explorer_reads_a_zarr_store_lazily(zarr_cube):
    lazy = xr.open_zarr(zarr_cube, consolidated=False)
    explorer = LinkedExplorer(lazy)
    explorer.select_cell(lazy.perturbation.values[1], 2)
    assert "error" not in explorer.cell and "error" not in explorer.gallery
    for name in ("cosine", "example_attribution", "example_image"):
        assert lazy[name].chunks is not None and not lazy[name].variable._in_memory


def test_polling_a_store_shows_regions_as_they_land(tmp_path, cube):
    path = tmp_path / "filling.zarr"
    partial = cube.copy(deep=True)
    for name in ("prob_true", "correct"):
        partial[name] = partial[name].astype(float)
        partial[name][1] = np.nan  # model 1 not evaluated yet
    partial.to_zarr(path, mode="w", consolidated=False)
    box = explore(path, poll=0.05)
    explorer = box.explorer
    explorer.model = str(cube.model.values[1])
    assert all(v is None for row in explorer.heatmap["mean"] for v in row)
    group = zarr.open_group(path, mode="r+")
    group["prob_true"][1] = cube["prob_true"].values[1]
    group["correct"][1] = cube["correct"].values[1].astype(float)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and explorer.heatmap["mean"][0][0] is None:
        time.sleep(0.05)
    box.watcher.stop()
    assert explorer.heatmap["mean"][0][0] == pytest.approx(float(cube["correct"][1, 0, 0].mean()))
    assert "regions done" in explorer.status


def _hostile(cube):
    hostile = cube.assign_coords(model=[HOSTILE, *cube.model.values[1:]]).rename({"cosine": HOSTILE})
    hostile.attrs["title"] = HOSTILE
    return hostile


def test_report_escapes_every_string_and_embeds_everything(tmp_path, cube):
    path = write_report(_hostile(cube), tmp_path / "out", figures=True)
    assert path.name == "report.html"
    text = path.read_text()
    assert HOSTILE not in text  # escaped in HTML text and in the embedded JSON
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text)  # nothing loaded from elsewhere
    bundle = json.loads(re.search(r'id="rv-bundle">(.*?)</script>', text, re.S).group(1))
    assert bundle["state"]["meta"]["models"][0] == HOSTILE and HOSTILE in bundle["state"]["meta"]["variables"]
    heatmaps = bundle["payloads"]["heatmap"]
    assert json.dumps(["correct", HOSTILE, None], separators=(",", ":"), ensure_ascii=False) in heatmaps
    assert len(bundle["cells"]) == sum(cube.sizes["model"] * (cube.sizes["method"] if "method" in cube[v].dims else 1)
                                       for v in CubeData(cube).variables)
    assert all(uri.startswith("data:image/png;base64,") for uri in bundle["pool"])
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<figure>" in text and "Provenance" in text


def test_script_json_cannot_close_the_script():
    text = dumps_for_script({"name": "</script><script>alert(1)</script>", "x": "a&b"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>", "x": "a&b"}


def test_report_never_replaces_a_foreign_file(tmp_path, cube):
    foreign = tmp_path / "notes.html"
    foreign.write_text("<p>mine</p>")
    with pytest.raises(ReportError, match="not written by robustviz"):
        write_report(cube, foreign, figures=False)
    assert foreign.read_text() == "<p>mine</p>" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.html"]
    ours = write_report(cube, tmp_path / "ours.html", figures=False)
    write_report(cube, ours, figures=False)  # a report robustviz wrote may be rewritten


def test_report_cli(tmp_path, zarr_cube, capsys):
    assert cli_main(["report", str(zarr_cube), "--out", str(tmp_path / "site"), "--no-figures"]) == 0
    assert (tmp_path / "site" / "report.html").stat().st_size > 10_000
    assert "MB, built in" in capsys.readouterr().out
    (tmp_path / "foreign.html").write_text("x")
    assert cli_main(["report", str(zarr_cube), "--out", str(tmp_path / "foreign.html")]) == 2
    assert "not written by robustviz" in capsys.readouterr().err


def test_report_cli_rejects_a_dataset_that_is_not_a_cube(tmp_path, capsys):
    xr.Dataset({"x": ("model", np.arange(3.0))}).to_zarr(tmp_path / "other.zarr", mode="w", consolidated=False)
    assert cli_main(["report", str(tmp_path / "other.zarr"), "--out", str(tmp_path / "site")]) == 2
    assert "not a robustviz cube" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()
