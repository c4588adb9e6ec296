"""Issue 15 point 5: every cell is bit-identical whatever the spec's ``batch_size``.

Every registered perturbation, explanation method and metric (the registry's own lists, so a component added later is
covered too) is evaluated with batch sizes 1, 5 and 64 and the cubes must be equal bit for bit. Attacks (FGSM, PGD,
anything with ``needs_model``) used to run on ``batch_size``-sized batches, so their gradients, and with them
``prob_true`` under ``pgd-l2``, depended on the batch shape.

Kept fast: 16 px images, 9 samples (one full block of 8 and one padded), one or two severities, a 2-layer CNN, and light settings for the costly components
(``LIGHT``); a component not listed there runs with its defaults. Three cubes per batch size: every perturbation with
one method and metric, every method with one perturbation, every metric with two methods (on a dataset with
ground-truth masks and grids, which the localisation metrics need).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import robustviz as rv
from robustviz import registry
from robustviz.data import SHAPE_CLASSES
from robustviz.testing import TinyCNN

BATCH_SIZES = (1, 5, 64)

#: Light settings for components whose defaults would take seconds per region at this scale.
LIGHT = {
    "perturbation": {"pgd": {"steps": 3}, "pgd-l2": {"steps": 3}, "apgd": {"steps": 3}, "apgd-l2": {"steps": 3},
                     "apgd-targeted": {"steps": 3}, "square": {"queries": 6}, "square-targeted": {"queries": 6}},
    "method": {"rise": {"n_masks": 8, "batch_masks": 8}, "integrated_gradients": {"n_steps": 3},
               "gradient_shap": {"n_samples": 3, "n_baselines": 2}, "smoothgrad": {"nt_samples": 3},
               "occlusion": {"window": 8, "stride": 8}, "ablation_cam": {"batch_channels": 4},
               "deeplift_shap": {"n_baselines": 2}, "feature_ablation": {"cell": 8},
               "lime": {"n_samples": 12, "n_segments": 8}, "kernel_shap": {"n_samples": 12, "n_segments": 8}},
    "metric": {"deletion_auc": {"step": 64}, "insertion_auc": {"step": 64}, "local_lipschitz": {"n_samples": 3},
               "max_sensitivity": {"n_samples": 2}, "max_sensitivity_quantus": {"n_samples": 2},
               "iaside": {"n_bands": 4, "n_samples": 8}, "fisher_lmax": {"max_iter": 5},
               "fisher_trace": {"mode": "exact"}},
}


def _model() -> TinyCNN:
    """TinyCNN with ``cam_layer`` as a plain attribute: registered twice as a submodule, LRP would refuse it."""
    model = TinyCNN(num_classes=len(SHAPE_CLASSES), width=6, seed=1)
    model.class_names = list(SHAPE_CLASSES)
    del model._modules["cam_layer"]
    object.__setattr__(model, "cam_layer", model.features[2])
    return model


def _precomputed_root(tmp_path, n_samples: int, size: int):
    """A CIFAR-10-C style file (``<root>/fog.npy``, 5 severities × n images) for the ``precomputed`` source."""
    generator = np.random.default_rng(0)
    np.save(tmp_path / "fog.npy", generator.integers(0, 256, (5 * n_samples, size, size, 3), dtype=np.uint8))
    np.save(tmp_path / "labels.npy", np.zeros(5 * n_samples, dtype=np.uint8))
    return {"root": str(tmp_path), "corruption": "fog", "layout": "cifar-10-c"}


def every(kind: str, required: dict | None = None) -> list:
    """Every registered name of ``kind`` (family prefixes such as ``torchvision:`` need a name and are left out),
    with its light settings."""
    params = {**LIGHT[kind], **(required or {})}
    return [{"name": name, **params.get(name, {})} if params.get(name) else name
            for name in registry.list_names(kind) if not name.endswith(":")]


def _cube(batch_size: int, **fields) -> xr.Dataset:
    spec = dict(models=["tiny"], dataset={"name": "shapes", "image_size": 16}, n_samples=9, severities=[2, 5],
                seed=11, device="cpu", n_examples=2, batch_size=batch_size)
    spec.update(fields)
    return rv.evaluate(rv.EvaluationSpec.from_dict(spec), models={"tiny": _model()}, progress=False)


def assert_identical(cubes: dict[int, xr.Dataset]) -> None:
    reference_size, reference = next(iter(cubes.items()))
    for batch_size, cube in cubes.items():
        assert set(cube.data_vars) == set(reference.data_vars)
        for name in reference.data_vars:
            np.testing.assert_array_equal(cube[name].values, reference[name].values,
                                          err_msg=f"{name}: batch size {batch_size} vs {reference_size}")


def _check(**fields) -> None:
    assert_identical({batch_size: _cube(batch_size, **fields) for batch_size in BATCH_SIZES})


@pytest.mark.slow  # ~25 s on an idle 2-core machine: 36 perturbations × 2 severities × 3 batch sizes
def test_every_perturbation_is_batch_size_invariant(tmp_path):
    perturbations = every("perturbation", {"precomputed": _precomputed_root(tmp_path, 9, 16)})
    assert {"fgsm", "pgd", "pgd-l2", "fgm-l2"} <= {p if isinstance(p, str) else p["name"] for p in perturbations}
    # severities 2 and 4: where pgd-l2 on batch-sized batches gave prob_true 1.5e-8 apart (1 vs 5 vs 64)
    _check(perturbations=perturbations, methods=["saliency"], metrics=["cosine"], severities=[2, 4], n_examples=0)


def test_every_method_is_batch_size_invariant():
    methods = every("method")
    assert len(methods) >= 10
    _check(perturbations=["noise.gaussian"], methods=methods, metrics=["cosine"], severities=[3])


@pytest.mark.parametrize("dataset", ["shapes", "gridpg-shapes"])
def test_every_metric_is_batch_size_invariant(dataset):
    names = registry.list_names("metric")
    needs_grid = {name for name in names if name == "grid_pg" or "grid" in getattr(
        registry.create("metric", name, **LIGHT["metric"].get(name, {})), "needs", ())}
    metrics = [m for m in every("metric") if ((m if isinstance(m, str) else m["name"]) in needs_grid)
               == (dataset == "gridpg-shapes")]
    assert metrics
    _check(dataset={"name": dataset, "image_size": 16}, perturbations=["noise.gaussian"],
           methods=["saliency", "grad_cam"], metrics=metrics, severities=[3])
