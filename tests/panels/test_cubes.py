"""make_cube: schema-valid, plausible, deterministic; SRS against the I-ASIDE reference values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustviz.cube.schema import validate
from robustviz.testing.cubes import make_cube, spectral_robustness_score


def test_default_cube_is_schema_valid_and_lazy_when_chunked():
    validate(make_cube())
    lazy = make_cube(chunks={"sample": 5})
    assert lazy["cosine"].chunks is not None
    validate(lazy)


def test_accuracy_never_rises_with_severity(cube):
    accuracy = cube["correct"].mean("sample").values  # model, perturbation, severity
    assert np.all(np.diff(accuracy, axis=-1) <= 1e-12)
    assert np.all(accuracy[..., -1] < accuracy[..., 0])


def test_clean_slice_is_the_same_for_every_perturbation(cube):
    for name in ("correct", "pred", "confidence", "cosine", "fisher_lmax", "example_image", "example_attribution"):
        clean = cube[name].sel(severity=0).values
        assert np.array_equal(clean, np.repeat(clean[:, :1], clean.shape[1], axis=1), equal_nan=True), name


def test_probabilities_are_consistent(cube):
    correct, prob, conf = (cube[n].values for n in ("correct", "prob_true", "confidence"))
    assert np.all(conf >= prob)
    assert np.all(prob[correct] == conf[correct])
    assert np.all(prob[~correct] + conf[~correct] <= 1 + 1e-6)
    assert np.array_equal(correct, cube["pred"].values == cube["label"].values)


def test_consistency_and_responsiveness_are_defined_on_complementary_samples(cube):
    changed = (cube["pred"] != cube["pred"].sel(severity=0)).values  # model, perturbation, severity, sample
    consistency = cube["consistency"].transpose("method", ...).values
    responsiveness = cube["responsiveness"].transpose("method", ...).values
    assert np.array_equal(np.isnan(consistency), np.broadcast_to(changed, consistency.shape))
    assert np.array_equal(np.isnan(responsiveness), np.broadcast_to(~changed, responsiveness.shape))


def test_srs_reference_values():
    # DESIGN.md / I-ASIDE: uniform SID -> 0; all mass on the lowest band of 8 -> 0.5217
    assert spectral_robustness_score(np.full(8, 1 / 8)) == pytest.approx(0.0, abs=1e-12)
    assert spectral_robustness_score(np.eye(8)[0]) == pytest.approx(0.5217, abs=5e-5)


def test_sid_and_srs_follow_their_definitions(cube):
    shapley = cube["shapley"].values.astype(np.float64)
    sid = (shapley - shapley.min(1, keepdims=True))
    sid /= sid.sum(1, keepdims=True)
    np.testing.assert_allclose(cube["sid"].values, sid, atol=1e-6)
    beta = 0.75 ** np.arange(sid.shape[1])
    reference = (beta.sum() / np.sqrt((beta ** 2).sum())) / sid.shape[1]
    srs = np.abs(sid @ (beta / np.sqrt((beta ** 2).sum())) - reference) / abs(1 - reference)
    np.testing.assert_allclose(cube["srs"].values, srs, rtol=1e-5)


def test_examples_and_attrs(cube):
    assert cube["example_image"].dtype == np.uint8
    assert cube["example_attribution"].dtype == np.float16
    assert list(cube["example"].values) == list(cube["sample"].values[:2])
    names = json.loads(cube.attrs["class_names"])
    assert len(names) == 10 and cube["label"].values.max() < len(names)
    assert json.loads(cube.attrs["spec"])["models"] == list(cube["model"].values)
    for name in ("cosine", "deletion_auc", "fisher_lmax", "srs"):
        assert cube[name].attrs["direction"] in ("higher", "lower")


def test_deterministic_per_seed_and_large_sizes_get_generic_names():
    first, again, other = make_cube(seed=3), make_cube(seed=3), make_cube(seed=4)
    assert first.identical(again)
    assert not np.array_equal(first["prob_true"].values, other["prob_true"].values)
    big = make_cube(n_models=12, n_perturbations=26, n_methods=13, n_samples=3, n_examples=1, image_size=4)
    validate(big)
    assert big.sizes["model"] == 12 and len(set(big["perturbation"].values)) == 26


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="n_examples"):
        make_cube(n_samples=2, n_examples=3)
    with pytest.raises(ValueError, match="at least one"):
        make_cube(n_models=0)
