"""write_all: every supported figure and table is written, the unsupported ones are listed as skipped."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from robustviz.figures.export import plan, write_all
from robustviz.testing import make_cube


@pytest.fixture(scope="module")
def cube():
    return make_cube(n_models=2, n_perturbations=2, n_methods=2, n_samples=12, n_examples=1, image_size=8, seed=1)


def test_write_all_writes_every_supported_figure_and_table(cube, tmp_path):
    paths = write_all(cube, tmp_path, formats=("svg", "pdf"))
    names = {path.name for path in paths}
    for stem in ("accuracy_severity_curves", "cosine_heatmap", "consistency_severity_curves", "sid_spectra",
                 "srs_vs_accuracy", "mce_bars", "cam_criteria", "gallery_gaussian_noise", "gallery_defocus_blur",
                 "example_grid", "fisher_lmax_severity_curves"):
        assert {f"{stem}.svg", f"{stem}.pdf"} <= names, stem
    assert {"table_accuracy.tex", "table_mce.tex", "table_methods.tex", "table_cam_criteria.tex",
            "table_spectral.tex", "index.md"} <= names
    for path in paths:
        assert path.exists() and path.stat().st_size > 0
        if path.suffix == ".pdf":
            assert path.read_bytes().startswith(b"%PDF")
        if path.suffix == ".svg":
            assert ElementTree.parse(path).getroot().tag.endswith("svg")
        if path.suffix == ".tex":
            text = path.read_text()
            assert all(text.count(rule) == 1 for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    index = (tmp_path / "index.md").read_text()
    assert "`aggatt`" in index and "skipped" in index and "energy_in_mask" in index
    supported = [item for item in plan(cube) if item.stem != "aggatt"]
    assert len(paths) == 1 + sum(1 if item.stem.startswith("table") else 2 for item in supported)


def test_write_all_skips_what_the_cube_lacks(cube, tmp_path):
    narrow = cube.drop_vars(["cosine", "consistency", "responsiveness", "deletion_auc", "sid", "srs", "shapley",
                             "example_attribution", "fisher_lmax"])
    names = {path.name for path in write_all(narrow, tmp_path, formats=("png",))}
    assert {"accuracy_severity_curves.png", "example_grid.png", "table_accuracy.tex", "mce_bars.png"} <= names
    assert not any(name.startswith(("sid", "srs", "gallery", "cam_criteria", "table_spectral")) for name in names)
    index = (tmp_path / "index.md").read_text()
    for stem in ("sid_spectra", "srs_vs_accuracy", "cam_criteria", "table_spectral", "table_methods"):
        assert f"`{stem}`" in index.split("## Skipped")[1], stem


def test_write_all_skips_mce_without_imagenet_c_corruptions(cube, tmp_path):
    renamed = cube.assign_coords(perturbation=["my_noise", "my_blur"])
    names = {path.name for path in write_all(renamed, tmp_path, formats=("png",))}
    assert "mce_bars.png" not in names and "table_mce.tex" not in names
    assert "none of the cube's perturbations" in (tmp_path / "index.md").read_text()


def test_write_all_rejects_bad_input(cube, tmp_path):
    with pytest.raises(ValueError, match="unsupported figure format"):
        write_all(cube, tmp_path, formats=("docx",))
    with pytest.raises(TypeError, match="xarray.Dataset"):
        write_all({"correct": 1}, tmp_path)


def test_cli_figures_on_a_zarr_cube(cube, tmp_path, capsys):
    from robustviz.cli import main
    from robustviz.cube import to_zarr

    store = to_zarr(cube, tmp_path / "cube.zarr")
    assert main(["figures", str(store), "--out", str(tmp_path / "figures"), "--format", "svg"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "figures" / "table_accuracy.tex") in printed
    assert (tmp_path / "figures" / "cosine_heatmap.svg").exists()
