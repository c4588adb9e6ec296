"""AggAtt over every sample: the cube's per-sample pooled maps equal the maps recomputed and pooled by hand, in
memory and in a zarr store with several sample chunks, and AggAtt bins of the pooled maps equal the pooled bins of
the full-resolution maps (pooling is linear)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustviz
from robustviz.figures.explanations import aggatt_from_cube, aggatt_maps
from robustviz.metrics.aggatt import pooled_maps

SPEC = dict(models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=10,
            perturbations=["gaussian_noise"], severities=[2], batch_size=4, seed=0, device="cpu", n_examples=2,
            sample_chunk=4, methods=["saliency", "grad_cam"],
            metrics=["energy_in_mask", {"name": "attribution_pooled", "grid": 8}])


@pytest.fixture(scope="module")
def cube_and_maps(tmp_path_factory):
    spec = robustviz.EvaluationSpec.from_dict(SPEC)
    ds = robustviz.evaluate(spec, progress=False)
    stored = robustviz.evaluate(spec, store=tmp_path_factory.mktemp("aggatt") / "cube.zarr", progress=False)
    data = robustviz.create("dataset", "shapes", n_samples=10, image_size=32, seed=0)
    model = robustviz.create("model", "smallcnn-standard")
    target = model(data.images).argmax(1).detach()
    maps = {}
    for name in ("saliency", "grad_cam"):
        method = robustviz.create("method", name)
        seeds = robustviz.rng.derive_seeds(0, data.sample_ids, "method", name)
        maps[name] = torch.cat([method.attribute(model, data.images[i:i + 1], target[i:i + 1], seeds=seeds[i:i + 1])
                                for i in range(10)])
    return ds, stored, maps


def test_pooled_maps_are_the_cell_means(cube_and_maps):
    ds, stored, maps = cube_and_maps
    assert ds["attribution_pooled"].dims == ("model", "perturbation", "severity", "method", "sample", "pool_y",
                                             "pool_x")
    for name, full in maps.items():
        by_hand = full[:, 0].reshape(10, 8, 4, 8, 4).double().mean(dim=(2, 4)).numpy()  # 4×4-pixel cells
        got = ds["attribution_pooled"].isel(model=0, perturbation=0).sel(severity=0).rv.sel(method=name).values
        np.testing.assert_allclose(got, by_hand, rtol=2e-4, atol=1e-6 * np.abs(by_hand).max())
        np.testing.assert_array_equal(stored["attribution_pooled"].values, ds["attribution_pooled"].values)
    assert "attribution_pooled" not in ds.rv.scores
    assert "attribution_pooled" not in ds.rv.summary().columns
    from robustviz.panels._base import sample_variables

    assert "attribution_pooled" not in sample_variables(ds) and "energy_in_mask" in sample_variables(ds)


def test_aggatt_bins_every_sample(cube_and_maps):
    ds, _, maps = cube_and_maps
    binned, counts, names = aggatt_from_cube(ds, "energy_in_mask", percentiles=(0, 20, 50, 100))
    scores = ds["energy_in_mask"].isel(model=0, perturbation=0).sel(severity=0)
    for row, name in enumerate(names):
        values = scores.rv.sel(method=name).values
        expected_counts = int(np.isfinite(values).sum())
        assert counts.sum() == expected_counts > 2  # every sample with a score, not only the 2 examples
        full_bins, _ = aggatt_maps(values, maps[name].numpy(), (0, 20, 50, 100))
        pooled_bins = pooled_maps(torch.from_numpy(full_bins[:, None]), 8).numpy()
        np.testing.assert_allclose(binned[row], pooled_bins, rtol=2e-4, atol=1e-6 * np.nanmax(np.abs(pooled_bins)))
    examples, example_counts, _ = aggatt_from_cube(ds, "energy_in_mask", source="examples")
    assert example_counts.sum() <= 2 and examples.shape[-1] == 32


def test_grid_must_fit_the_map():
    with pytest.raises(robustviz.InputError, match="grid"):
        pooled_maps(torch.zeros(1, 1, 4, 4), 5)
