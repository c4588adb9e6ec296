"""Bad input gives one clear error naming the fix, and leaves no half-written region."""

import json

import numpy as np
import pytest
import torch

import robustviz as rv
from robustviz.evaluate.store import StoreError

from .helpers import crash_spec


def test_nan_and_out_of_range_images_are_rejected():
    with pytest.raises(rv.InputError, match="NaN"):
        rv.ImageSet(torch.full((2, 3, 8, 8), float("nan")), torch.tensor([0, 1]), ["a", "b"])
    with pytest.raises(rv.InputError, match=r"\[0, 1\]"):
        rv.ImageSet(torch.rand(2, 3, 8, 8) * 2, torch.tensor([0, 1]), ["a", "b"])
    with pytest.raises(rv.InputError, match="4 dimensions"):
        rv.ImageSet(torch.rand(3, 8, 8), torch.tensor([0, 1, 0]), ["a", "b"])
    with pytest.raises(rv.InputError, match=r"labels must lie in \[0, 2\)"):
        rv.ImageSet(torch.rand(2, 3, 8, 8), torch.tensor([0, 2]), ["a", "b"])


def test_perturbation_rejects_bad_images():
    noise = rv.create("perturbation", "test_noise")
    with pytest.raises(rv.InputError, match="NaN"):
        noise(torch.full((1, 3, 4, 4), float("nan")), 1, seeds=torch.zeros(1, dtype=torch.int64))
    with pytest.raises(rv.InputError, match="severity 7 is not defined"):
        noise(torch.rand(1, 3, 4, 4), 7, seeds=torch.zeros(1, dtype=torch.int64))
    with pytest.raises(rv.InputError, match="one seed per sample"):
        noise(torch.rand(2, 3, 4, 4), 1, seeds=torch.zeros(1, dtype=torch.int64))


def test_unknown_names_suggest_and_write_nothing(tmp_path):
    store = tmp_path / "cube.zarr"
    with pytest.raises(rv.RegistryError, match="Did you mean 'test_noise'"):
        rv.evaluate(crash_spec(perturbations=["test_nosie"]), store=store, progress=False)
    with pytest.raises(rv.RegistryError, match="unknown model 'test_tiy'.*Did you mean 'test_tiny'"):
        rv.evaluate(crash_spec(models=["test_tiy"]), store=store, progress=False)
    with pytest.raises(rv.SpecError, match="list at least one method"):
        rv.evaluate(crash_spec(methods=[]), store=store, progress=False)
    photos = {"name": "skimage", "image_size": 32}
    with pytest.raises(rv.SpecError, match="needs ground-truth masks.*'skimage'.*use the 'shapes' dataset"):
        rv.evaluate(crash_spec(dataset=photos, n_samples=2, metrics=["energy_in_mask"]), store=store, progress=False)
    with pytest.raises(rv.SpecError, match="use the 'gridpg-shapes' dataset"):
        rv.evaluate(crash_spec(dataset=photos, n_samples=2, metrics=["grid_pg"]), store=store, progress=False)
    assert not store.exists()


def test_wrong_channels_name_the_mismatch(tmp_path):
    grey = rv.ImageSet(torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]), [f"c{i}" for i in range(8)])
    with pytest.raises(rv.InputError, match=r"model 'test_tiny' failed on images of shape \(1, 32, 32\) \(1 channel\)"):
        rv.evaluate(crash_spec(n_samples=4, sample_chunk=None), data=grey, store=tmp_path / "c.zarr",
                    progress=False)
    assert not rv.CubeStore(tmp_path / "c.zarr").done_mask().any()


def test_a_store_of_another_spec_is_refused(tmp_path):
    store = tmp_path / "cube.zarr"
    spec = crash_spec(perturbations=["test_noise"], n_samples=4, sample_chunk=None)
    rv.evaluate(spec, store=store, progress=False)
    with pytest.raises(StoreError, match=r"different spec \(fields that differ: seed, severities\).*new --store"):
        rv.evaluate(spec.replace(seed=4, severities=[1]), store=store, progress=False)
    # batch size and device do not change the values, so they may differ on resume
    rv.evaluate(spec.replace(batch_size=1), store=store, progress=False)


# a deleted array is repaired on resume now (tests/reliability/test_fault_injection.py)
@pytest.mark.parametrize("damage", ["group-metadata", "unfinished-creation"])
def test_a_corrupt_store_is_reported(tmp_path, damage):
    store = tmp_path / "cube.zarr"
    spec = crash_spec(perturbations=["test_noise"], n_samples=4, sample_chunk=None)
    rv.evaluate(spec, store=store, progress=False)
    if damage == "group-metadata":
        (store / "zarr.json").write_text("{not json")
    else:
        meta = json.loads((store / "zarr.json").read_text())
        meta["attributes"].pop("store_format")
        (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="is corrupt.*robustviz verify.*--overwrite"):
        rv.evaluate(spec, store=store, progress=False)


def test_a_failing_region_is_not_half_written(tmp_path, monkeypatch):
    store = tmp_path / "cube.zarr"
    spec = crash_spec(perturbations=["test_failing_noise"], models=["test_tiny"], n_samples=8, sample_chunk=4)
    monkeypatch.setenv("ROBUSTVIZ_TEST_FAIL", "1")  # chunk 0 (ids 0-3) succeeds, chunk 1 fails at severity 2
    with pytest.raises(RuntimeError, match="boom"):
        rv.evaluate(spec, store=store, progress=False)
    cube_store = rv.CubeStore(store)
    np.testing.assert_array_equal(cube_store.done_mask(), [[[True, False]]])
    ds = cube_store.open()
    assert np.isnan(ds["prob_true"].values[0, 0, :, 4:]).all(), "the failed region left values behind"
    assert not np.isnan(ds["prob_true"].values[0, 0, :, :4]).any()
    monkeypatch.setenv("ROBUSTVIZ_TEST_FAIL", "0")
    finished = rv.evaluate(spec, store=store, progress=False)
    assert finished.rv.is_complete()
