import numpy as np
import pytest
import torch
import xarray as xr

import robustviz as rv
from robustviz.testing import TinyCNN, assert_cube_valid

from .helpers import small_spec


def assert_cubes_equal(a: xr.Dataset, b: xr.Dataset, atol: float = 1e-6) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        left, right = np.asarray(a[name].values), np.asarray(b[name].values)
        if left.dtype.kind == "f":
            np.testing.assert_allclose(left, right, atol=atol, rtol=0, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(left, right, err_msg=name)


@pytest.fixture(scope="module")
def reference_cube():
    return rv.evaluate(small_spec(), progress=False)


def test_cube_layout(reference_cube):
    ds = reference_cube
    assert_cube_valid(ds)
    assert ds.sizes["model"] == 2 and ds.sizes["perturbation"] == 2 and ds.sizes["sample"] == 10
    assert list(ds.severity.values) == [0, 1, 3, 5]
    assert list(ds.method.values) == ["saliency", "grad_cam", "rise"]
    assert ds["cosine"].dims == ("model", "perturbation", "severity", "method", "sample")
    assert ds["fisher_lmax"].dims == ("model", "perturbation", "severity", "sample")
    assert ds["example_image"].shape == (2, 2, 4, 2, 3, 32, 32)
    assert ds.attrs["spec_fingerprint"] == small_spec().fingerprint()
    # the clean maps compared with themselves are identical
    np.testing.assert_allclose(ds["cosine"].sel(severity=0).values, 1.0, atol=1e-5)


def test_values_match_a_direct_computation(reference_cube):
    """The cube's numbers equal running the model and perturbation by hand."""
    ds = reference_cube
    spec = small_spec()
    data = rv.create("dataset", "shapes", n_samples=10, image_size=32, seed=spec.seed)
    model = rv.create("model", "tinyresnet-noise").eval()
    perturbation = rv.create("perturbation", "test_noise")
    from robustviz.rng import derive_seeds

    seeds = derive_seeds(spec.seed, data.sample_ids, "perturbation", "test_noise", 3)
    with torch.no_grad():
        probs = model(perturbation(data.images, 3, seeds=seeds)).softmax(1)
        clean = model(data.images).softmax(1)
    cell = ds.sel(model="tinyresnet-noise", perturbation="test_noise")
    np.testing.assert_allclose(cell["prob_true"].sel(severity=3).values,
                               probs.gather(1, data.labels[:, None])[:, 0].numpy(), atol=1e-6)
    np.testing.assert_array_equal(cell["pred"].sel(severity=3).values, probs.argmax(1).numpy())
    np.testing.assert_array_equal(cell["correct"].sel(severity=0).values, (clean.argmax(1) == data.labels).numpy())
    # consistency is defined only where the prediction did not change
    changed = cell["pred"].sel(severity=3).values != cell["pred"].sel(severity=0).values
    consistency = cell["consistency"].sel(severity=3).values
    assert np.isnan(consistency[:, changed]).all() and not np.isnan(consistency[:, ~changed]).any()


@pytest.mark.parametrize("batch_size, sample_chunk", [(1, None), (7, 4), (64, 3)])
def test_batch_size_and_chunking_invariance(reference_cube, batch_size, sample_chunk):
    cube = rv.evaluate(small_spec(batch_size=batch_size, sample_chunk=sample_chunk), progress=False)
    reference = reference_cube
    if sample_chunk is not None:  # the done mask has one column per chunk
        cube, reference = cube.drop_vars(["done"]), reference.drop_vars(["done"])
        cube, reference = cube.drop_dims("chunk"), reference.drop_dims("chunk")
    assert_cubes_equal(cube, reference)


def test_store_run_equals_in_memory_run(reference_cube, tmp_path):
    stored = rv.evaluate(small_spec(), store=tmp_path / "cube.zarr", progress=False)
    assert_cubes_equal(stored.load(), reference_cube)
    reopened = rv.open_cube(tmp_path / "cube.zarr")
    assert_cube_valid(reopened)
    # netCDF export round-trips the values
    path = rv.to_netcdf(reopened, tmp_path / "cube.nc")
    shared = rv.open_cube(path)
    np.testing.assert_allclose(shared["cosine"].values, reference_cube["cosine"].values, equal_nan=True)
    assert list(shared.model.values) == list(reference_cube.model.values)


def test_user_model_and_tensors():
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    data = rv.ImageSet(images, torch.tensor([0, 1, 2, 3, 0, 1]), ["a", "b", "c", "d"])
    spec = rv.EvaluationSpec(models=["mine"], perturbations=["test_noise"], n_samples=6, dataset="my-tensors")
    ds = rv.evaluate(spec, data=data, models={"mine": TinyCNN(num_classes=4)}, progress=False)
    assert_cube_valid(ds)
    assert ds.rv.class_names == ["a", "b", "c", "d"]


def test_accessor_summaries(reference_cube):
    ds = reference_cube
    accuracy = ds.rv.accuracy()
    assert accuracy.dims == ("model", "perturbation", "severity")
    np.testing.assert_allclose(accuracy.values, ds["correct"].values.mean(-1))
    table = ds.rv.summary()
    model = "smallcnn-standard"
    row = table[(table.model == model) & (table.perturbation == "lowpass") & (table.severity == 5)
                & (table.method == "grad_cam")]
    assert len(row) == 1
    expected = np.nanmean(ds["cosine"].rv.sel(model=model, perturbation="lowpass", severity=5, method="grad_cam").values)
    # ds.sel(method=...) is xarray's fill method: the accessor's sel routes it to the dim
    np.testing.assert_array_equal(ds.rv.sel(method="grad_cam")["cosine"].values,
                                  ds.sel({"method": "grad_cam"})["cosine"].values)
    np.testing.assert_allclose(row["cosine"].item(), expected)
    wide = ds.rv.accuracy_table()
    assert list(wide.columns) == ["clean", "test_noise", "lowpass"]
