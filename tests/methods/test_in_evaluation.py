"""Every method and attack added for issue 17 runs in an evaluation through a spec, and the cube does not depend
on the batch size (all their randomness is keyed by the engine's per-sample seeds)."""

from __future__ import annotations

import numpy as np
import pytest

import robustviz as rv
from robustviz.testing import assert_cube_valid

METHODS = ["score_cam", "eigengrad_cam", {"name": "grad_cam_ours", "aug_smooth": True, "eigen_smooth": True},
           "fullgrad", "input_x_gradient", {"name": "deeplift_shap", "n_baselines": 2},
           {"name": "feature_ablation", "cell": 8}, {"name": "lime", "n_samples": 12, "n_segments": 8},
           {"name": "kernel_shap", "n_samples": 12, "n_segments": 8}]
ATTACKS = [{"name": "apgd", "steps": 3}, {"name": "apgd-l2", "steps": 3}, {"name": "apgd-targeted", "steps": 3},
           {"name": "square", "queries": 6}, {"name": "square-targeted", "queries": 6}]


def _spec(batch_size: int, methods, perturbations, n_samples: int):
    return rv.EvaluationSpec.from_dict(dict(
        models=["smallcnn-standard"], dataset={"name": "shapes", "image_size": 32}, n_samples=n_samples,
        perturbations=perturbations, severities=[4], methods=methods, metrics=["cosine"], batch_size=batch_size,
        seed=5, device="cpu", n_examples=1))


def test_new_methods_fill_the_cube():
    pytest.importorskip("sklearn")  # LIME's and KernelSHAP's surrogate models
    cube = rv.evaluate(_spec(2, METHODS, [{"name": "apgd", "steps": 2}], n_samples=2), progress=False)
    assert_cube_valid(cube)
    assert cube.sizes["method"] == len(METHODS)
    assert np.isfinite(cube["cosine"].values).all()
    np.testing.assert_allclose(cube["cosine"].sel(severity=0).values, 1.0, atol=1e-5)
    assert float(np.abs(cube["cosine"].sel(severity=4).values - 1).max()) > 1e-3  # the attack moved the maps


def test_new_attacks_fill_the_cube_independently_of_the_batch_size():
    cube = rv.evaluate(_spec(3, ["saliency"], ATTACKS, n_samples=3), progress=False)
    assert_cube_valid(cube)
    assert list(cube.perturbation.values) == ["apgd", "apgd-l2", "apgd-targeted", "square", "square-targeted"]
    assert np.isfinite(cube["cosine"].values).all()
    assert not np.allclose(cube["prob_true"].sel(severity=4).values, cube["prob_true"].sel(severity=0).values)
    other = rv.evaluate(_spec(1, ["saliency"], ATTACKS, n_samples=3), progress=False)
    for name in ("cosine", "prob_true", "pred"):
        np.testing.assert_allclose(np.asarray(other[name].values, dtype=float),
                                   np.asarray(cube[name].values, dtype=float), atol=1e-5, err_msg=name)
