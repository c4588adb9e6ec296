"""Fixtures for the panel tests: small synthetic cubes (robustviz.testing.cubes.make_cube)."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from robustviz.testing.cubes import make_cube  # noqa: E402


@pytest.fixture(scope="session")
def cube():
    return make_cube(n_models=3, n_perturbations=3, n_methods=2, n_samples=30, n_examples=2, image_size=12, seed=1)


@pytest.fixture(scope="session")
def zarr_cube(tmp_path_factory, cube):
    """The same cube written to a zarr store; returns its path."""
    path = tmp_path_factory.mktemp("store") / "cube.zarr"
    cube.to_zarr(path, mode="w", consolidated=False)
    return path
