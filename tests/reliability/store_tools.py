"""Small stores for the store-integrity tests: a spec with every kind of variable, chunk paths, cube comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from robustviz.cube.integrity import Manifest
from robustviz.spec import EvaluationSpec
from tests.evaluate import helpers  # noqa: F401  (registers test_tiny, test_noise, test_failing_noise)


def store_spec(**changes) -> EvaluationSpec:
    """1 model × 2 perturbations × 2 sample chunks (4 regions) with per-sample, per-method, example and
    model-level variables, on 32 px shapes: about a second to compute."""
    data = dict(models=["test_tiny"], dataset={"name": "shapes", "image_size": 32}, n_samples=4, sample_chunk=2,
                perturbations=["test_noise", "lowpass"], severities=[1, 2], methods=["saliency"],
                metrics=["cosine", {"name": "iaside", "n_bands": 2}], batch_size=4, seed=5, device="cpu",
                n_examples=1)
    data.update(changes)
    return EvaluationSpec.from_dict(data)


def chunk_file(store: Path, name: str, model: int, perturbation: int | None = None, chunk: int = 0) -> Path:
    """The chunk file of variable ``name`` that holds region (model, perturbation, chunk)."""
    dims = Manifest.read(store).dims(name)
    index = {"model": model, "perturbation": perturbation, "sample": chunk, "chunk": chunk}
    return store.joinpath(name, "c", *[str(index.get(dim) or 0) for dim in dims])


def assert_identical(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same variables, coordinates and values bit for bit (NaN where NaN)."""
    assert set(a.data_vars) == set(b.data_vars) and set(a.coords) == set(b.coords)
    for name in list(a.data_vars) + list(a.coords):
        left, right = np.asarray(a[name].values), np.asarray(b[name].values)
        if left.dtype.kind in "OUT" or right.dtype.kind in "OUT":  # labels: zarr and numpy string dtypes differ
            left, right = np.array([str(v) for v in left.ravel()]), np.array([str(v) for v in right.ravel()])
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right, err_msg=name)
