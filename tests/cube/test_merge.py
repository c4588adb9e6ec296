"""Merging, diffing and extending cubes: a merge of two evaluations equals one evaluation of their union (the
engine's determinism is the reference), conflicting cells and different data are refused, provenance is kept,
and an extension evaluates only the new regions."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import xarray as xr

import robustviz
from robustviz.cube.merge import CubeConflictError, diff_cubes, diff_summary, merge_cubes
from robustviz.evaluate import extend as extend_module

BASE = dict(dataset={"name": "shapes", "image_size": 32}, n_samples=6, severities=[1, 3], batch_size=4, seed=1,
            device="cpu", n_examples=2, methods=["saliency"], metrics=["cosine", "brier"])


def run(models, perturbations, **extra):
    spec = robustviz.EvaluationSpec.from_dict(dict(BASE, models=models, perturbations=perturbations, **extra))
    return robustviz.evaluate(spec, progress=False)


@pytest.fixture(scope="module")
def cubes():
    return {"a": run(["smallcnn-standard"], ["gaussian_noise"]),
            "b": run(["smallcnn-standard"], ["contrast"]),
            "both": run(["smallcnn-standard"], ["gaussian_noise", "contrast"])}


def _assert_same(merged: xr.Dataset, reference: xr.Dataset) -> None:
    reference = reference.drop_vars(["done", "model_done"]).drop_dims("chunk")
    merged = merged.sel(perturbation=reference["perturbation"].values)
    assert set(merged.data_vars) == set(reference.data_vars)
    for name in reference.data_vars:
        assert merged[name].dtype == reference[name].dtype, name
        np.testing.assert_array_equal(merged[name].values, reference[name].values, err_msg=name)
    np.testing.assert_array_equal(merged["family"].values, reference["family"].values)


def test_merge_equals_one_evaluation_of_the_union(cubes):
    merged = merge_cubes(cubes["a"], cubes["b"])
    _assert_same(merged, cubes["both"])
    merged.rv.validate()
    assert merged.rv.accuracy().sizes["perturbation"] == 2
    _assert_same(merge_cubes(cubes["a"], cubes["a"]), cubes["a"])


def test_merge_keeps_provenance(cubes):
    merged = robustviz.merge_cubes(cubes["a"], cubes["b"])
    specs = json.loads(merged.attrs["specs"])
    assert [str(s["perturbations"][0]) for s in specs] == ["gaussian_noise", "contrast"]
    info = json.loads(merged.attrs["provenance"])
    assert info["operation"] == "merge_cubes"
    assert info["numpy_version"] == np.__version__ and info["xarray_version"] == xr.__version__
    import torch

    assert info["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=robustviz.__file__.rsplit("/", 2)[0])
    assert info["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert len(json.loads(merged.attrs["parents"])) == 2


def test_conflicting_cells_are_refused(cubes):
    changed = cubes["both"].copy(deep=True)
    changed["cosine"].values[0, 0, 2, 0, 3] += 0.5  # a gaussian_noise cell: cube a has it too
    with pytest.raises(CubeConflictError, match=r"1 cell\(s\) of 'cosine'"):
        merge_cubes(cubes["a"], changed)
    flipped = cubes["both"].copy(deep=True)
    flipped["pred"].values[0, 0, 1, 0] = (flipped["pred"].values[0, 0, 1, 0] + 1) % 3
    with pytest.raises(CubeConflictError, match="'pred'"):
        merge_cubes(cubes["a"], flipped)


def test_different_data_is_refused(cubes):
    other = run(["smallcnn-standard"], ["contrast"], n_samples=5)
    with pytest.raises(CubeConflictError, match="different samples"):
        merge_cubes(cubes["a"], other)
    relabelled = cubes["b"].assign_coords(label=("sample", (cubes["b"]["label"].values + 1) % 3))
    with pytest.raises(CubeConflictError, match="labels"):
        merge_cubes(cubes["a"], relabelled)


def test_diff_counts_exactly_the_changed_cells(cubes):
    changed = cubes["both"].copy(deep=True)
    changed["cosine"].values[0, 0, 1, 0, :2] -= 0.25
    diff = diff_cubes(cubes["a"], changed)
    assert list(diff["perturbation"].values) == ["gaussian_noise"]  # only the shared cells
    summary = diff_summary(diff)
    assert summary.loc["cosine", "changed"] == 2
    assert summary.loc["cosine", "max_abs"] == pytest.approx(0.25, abs=1e-6)
    assert summary.loc["prob_true", "changed"] == 0
    assert summary.loc["correct", "cells"] == 1 * 1 * 3 * 6
    with pytest.raises(robustviz.CubeError, match="share no"):
        diff_cubes(cubes["a"], cubes["b"].sel(severity=[0]).isel(severity=[]))


def test_extend_evaluates_only_new_regions(cubes, monkeypatch, tmp_path):
    evaluated = []
    original_evaluate = extend_module.evaluate

    def spy(spec, **kwargs):
        evaluated.append(([m.name for m in spec.models], [p.name for p in spec.perturbations]))
        return original_evaluate(spec, **kwargs)

    monkeypatch.setattr(extend_module, "evaluate", spy)
    spec = robustviz.EvaluationSpec.from_dict(dict(BASE, models=["smallcnn-standard", "smallcnn-noise"],
                                                   perturbations=["gaussian_noise", "contrast"], batch_size=2))
    extended = robustviz.extend_cube(cubes["a"], spec, progress=False, store=tmp_path / "extended.zarr")
    assert evaluated == [(["smallcnn-noise"], ["gaussian_noise", "contrast"]),
                         (["smallcnn-standard"], ["contrast"])]
    _assert_same(extended.sel(model=["smallcnn-standard"]), cubes["both"])
    reopened = robustviz.open_cube(tmp_path / "extended.zarr")
    assert list(reopened["model"].values) == ["smallcnn-standard", "smallcnn-noise"]
    with pytest.raises(robustviz.InputError, match="already exists"):
        robustviz.extend_cube(cubes["a"], spec, progress=False, store=tmp_path / "extended.zarr")
    other_seed = robustviz.EvaluationSpec.from_dict(dict(BASE, models=["smallcnn-standard"],
                                                         perturbations=["contrast"], seed=2))
    with pytest.raises(robustviz.InputError, match=r"\['seed'\]"):
        robustviz.extend_cube(cubes["a"], other_seed, progress=False)
