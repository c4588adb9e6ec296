"""Pointing game, energy in mask, GridPG and AggAtt against hand-built maps and explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robustviz
from robustviz.metrics.base import MetricContext
from robustviz.metrics.localisation import aggatt_bins, grid_pg_score, make_grid_pg


def test_pointing_game_and_energy_by_hand():
    maps = torch.zeros(3, 1, 4, 4)
    masks = torch.zeros(3, 1, 4, 4)
    masks[:, :, :2, :2] = 1
    maps[0, 0, 0, 0], maps[0, 0, 3, 3] = 2.0, 1.0  # peak inside; energy 2/3
    maps[1, 0, 0, 0], maps[1, 0, 3, 3], maps[1, 0, 2, 2] = 1.0, 3.0, -5.0  # peak outside; energy 1/4
    masks[2] = 0  # empty mask
    context = MetricContext(attributions=maps, masks=masks)
    pointing = robustviz.create("metric", "pointing_game")(context)
    energy = robustviz.create("metric", "energy_in_mask")(context)
    assert pointing[:2].tolist() == [1.0, 0.0] and math.isnan(pointing[2])
    assert energy[0] == pytest.approx(2 / 3) and energy[1] == pytest.approx(1 / 4) and math.isnan(energy[2])


def test_grid_pg_construction_and_score():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(10, 3, 8, 8, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    masks = (torch.rand(10, 1, 8, 8, generator=generator) > 0.5).float()
    grid = make_grid_pg(images, labels, masks, n=6, seed=3)
    assert grid.images.shape == (6, 3, 8, 8) and grid.masks.shape == (6, 1, 8, 8)
    for index in range(6):
        assert len(set(grid.cell_labels[index].tolist())) == 4  # four different classes
        assert grid.labels[index] == grid.cell_labels[index, grid.cells[index]]
        for cell in range(4):  # each cell is its source image averaged over 2×2 blocks
            row, col = divmod(cell, 2)
            source = images[grid.sources[index, cell]]
            expected = source.reshape(3, 4, 2, 4, 2).mean(dim=(2, 4))
            torch.testing.assert_close(grid.images[index, :, 4 * row:4 * row + 4, 4 * col:4 * col + 4], expected)
    again = make_grid_pg(images, labels, masks, n=6, seed=3)
    assert torch.equal(again.sources, grid.sources) and torch.equal(again.cells, grid.cells)
    maps = torch.zeros(2, 1, 8, 8)
    maps[0, 0, :4, 4:] = 1.0  # all positive mass in cell 1 (top-right)
    maps[1] = 1.0
    maps[1, 0, 0, 0] = -3.0  # negative values do not count
    scores = grid_pg_score(maps, torch.tensor([1, 3]))
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(16 / 63)
    with pytest.raises(ValueError, match="at least 4 classes"):
        make_grid_pg(images[:3], labels[:3], n=2)


def test_aggatt_bins_against_a_loop():
    generator = np.random.default_rng(0)
    scores = torch.from_numpy(generator.permutation(200).astype(float))
    maps = torch.from_numpy(generator.normal(size=(200, 1, 3, 3)))
    bins = aggatt_bins(scores, maps)
    order = np.argsort(scores.numpy())
    edges = [0, 4, 10, 100, 190, 196, 200]  # percentiles 0, 2, 5, 50, 95, 98, 100 of 200 samples
    assert bins.edges.tolist() == edges and bins.counts.tolist() == [4, 6, 90, 90, 6, 4]
    for index in range(6):
        expected = maps.numpy()[order[edges[index]:edges[index + 1]], 0].mean(axis=0)
        np.testing.assert_allclose(bins.maps[index].numpy(), expected)


def test_gridpg_shapes_dataset_is_made_of_downscaled_shapes():
    from robustviz.data.shapes import make_gridpg_shapes, render

    grids = make_gridpg_shapes(5, image_size=32, seed=2)
    cells, cell_labels = grids.metadata["cells"], grids.metadata["cell_labels"]
    assert grids.images.shape == (5, 3, 32, 32) and grids.masks.shape == (5, 1, 32, 32)
    for index in range(5):
        assert len(set(cell_labels[index].tolist())) == 4
        assert grids.labels[index] == cell_labels[index, cells[index]]
        row, col = divmod(int(cells[index]), 2)
        expected_mask = torch.zeros(32, 32, dtype=torch.bool)
        expected_mask[16 * row:16 * row + 16, 16 * col:16 * col + 16] = True
        assert torch.equal(grids.masks[index, 0], expected_mask)
        # each quadrant is a shape of its class (object mask inside that quadrant only covers part of it)
        for cell in range(4):
            r, c = divmod(cell, 2)
            quadrant = grids.metadata["object_masks"][index, 0, 16 * r:16 * r + 16, 16 * c:16 * c + 16]
            assert 0 < quadrant.float().mean() < 1
    # grid i does not depend on how many grids were asked for, and a different seed gives different grids
    assert torch.equal(make_gridpg_shapes(2, image_size=32, seed=2).images, grids.images[:2])
    assert not torch.equal(make_gridpg_shapes(2, image_size=32, seed=3).images, grids.images[:2])
    # a quadrant equals the rendered shape averaged over 2×2 blocks (explicit loop over blocks)
    ids = torch.tensor([0])
    seeds = robustviz.rng.derive_seeds(2, ids * 4 + cells[0], "gridpg-shapes-cell", "test")
    shape, _ = render(cell_labels[0, cells[0]].view(1), seeds, 32)
    row, col = divmod(int(cells[0]), 2)
    block = grids.images[0, :, 16 * row:16 * row + 16, 16 * col:16 * col + 16]
    for y in range(16):
        for x in range(16):
            torch.testing.assert_close(block[:, y, x], shape[0, :, 2 * y:2 * y + 2, 2 * x:2 * x + 2].mean(dim=(1, 2)))


def test_grid_pg_metric_in_the_cube_matches_the_function_form():
    from robustviz.evaluate import evaluate
    from robustviz.metrics.localisation import grid_pg_score

    spec = robustviz.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "gridpg-shapes", "image_size": 32}, n_samples=6,
        perturbations=["gaussian_noise"], severities=[2], methods=["saliency", "grad_cam"],
        metrics=["grid_pg"], batch_size=4, seed=0, device="cpu", n_examples=0, extra={"target": "label"}))
    ds = evaluate(spec, progress=False)
    data = robustviz.create("dataset", "gridpg-shapes", n_samples=6, image_size=32)
    model = robustviz.create("model", "smallcnn-standard")
    for name in ("saliency", "grad_cam"):
        method = robustviz.create("method", name)
        maps = method.attribute(model, data.images, data.labels, seeds=data.sample_ids)
        expected = grid_pg_score(maps, data.metadata["cells"]).float().numpy()
        got = ds["grid_pg"].sel(severity=0).isel(model=0, perturbation=0).rv.sel(method=name).values
        np.testing.assert_allclose(got, expected, atol=1e-5)
    values = ds["grid_pg"].values
    finite = values[np.isfinite(values)]  # NaN where a map has no positive attribution (e.g. Grad-CAM all zero)
    assert finite.size > values.size // 2 and np.all((finite >= 0) & (finite <= 1))
    assert ds["grid_pg"].attrs.get("direction", "higher") == "higher"


def test_grid_pg_refuses_object_masks():
    data = robustviz.create("dataset", "shapes", n_samples=2, image_size=32)
    context = MetricContext(attributions=torch.rand(2, 1, 32, 32), masks=data.masks)
    with pytest.raises(ValueError, match="exactly one full quadrant"):
        robustviz.create("metric", "grid_pg")(context)
