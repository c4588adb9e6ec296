"""CE, mCE, relative mCE and flip probability on synthetic cubes with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from robustviz.cube.robustness import (ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, IMAGENET_C_BENCHMARK, RobustnessError,
                                       corruption_error, error_table, flip_probability, mce, relative_mce)

N_SAMPLES = 1000


def cube_from_errors(errors: dict[str, np.ndarray], perturbations: list[str], n_samples: int = N_SAMPLES,
                     severities=(0, 1, 2, 3, 4, 5), n_classes: int = 10, seed: int = 0) -> xr.Dataset:
    """A cube whose error rate for (model, perturbation, severity) is exactly errors[model][p, s] (multiples of
    1/n_samples): the first round(e·n) samples are wrong."""
    models = list(errors)
    labels = np.arange(n_samples) % n_classes
    shape = (len(models), len(perturbations), len(severities), n_samples)
    correct = np.ones(shape, bool)
    for m, model in enumerate(models):
        for p in range(len(perturbations)):
            for s in range(len(severities)):
                correct[m, p, s, : int(round(errors[model][p, s] * n_samples))] = False
    rng = np.random.default_rng(seed)
    wrong = (labels + rng.integers(1, n_classes, size=shape)) % n_classes
    pred = np.where(correct, labels, wrong).astype(np.int8)
    dims = ("model", "perturbation", "severity", "sample")
    return xr.Dataset(
        {"correct": (dims, correct, {"direction": "higher"}), "pred": (dims, pred, {"direction": "none"})},
        coords={"model": np.array(models, dtype=object), "perturbation": np.array(perturbations, dtype=object),
                "family": ("perturbation", np.array(["x"] * len(perturbations), dtype=object)),
                "severity": np.array(severities), "sample": np.arange(n_samples), "label": ("sample", labels)},
    )


def grid_errors(rng: np.random.Generator, n_perturbations: int) -> np.ndarray:
    """Errors on the 1/N_SAMPLES grid, clean error the same for every perturbation, rising with severity."""
    clean = rng.integers(100, 300) / N_SAMPLES
    steps = rng.integers(10, 120, size=(n_perturbations, 5)) / N_SAMPLES
    return np.concatenate([np.full((n_perturbations, 1), clean), clean + np.cumsum(steps, axis=1)], axis=1)


def test_error_table_is_one_minus_accuracy():
    errors = {"a": np.array([[0.1, 0.2, 0.3]]), "b": np.array([[0.05, 0.5, 0.9]])}
    ds = cube_from_errors(errors, ["fog"], severities=(0, 1, 2))
    table = error_table(ds)
    assert table.dims == ("model", "perturbation", "severity")
    np.testing.assert_allclose(table.sel(model="a", perturbation="fog"), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(table.sel(model="b", perturbation="fog"), [0.05, 0.5, 0.9])


def test_ce_and_mce_against_alexnet_by_hand():
    rng = np.random.default_rng(0)
    names = list(IMAGENET_C_BENCHMARK) + ["speckle_noise", "uniform_noise"]
    errors = {"model": grid_errors(rng, len(names))}
    ds = cube_from_errors(errors, names)
    table = errors["model"]
    expected_ce = {name: table[i, 1:].sum() / (5 * ALEXNET_ERRORS[name]) for i, name in enumerate(names)
                   if name in ALEXNET_ERRORS}
    expected_relative = {name: (table[i, 1:] - table[i, 0]).sum() / (5 * (ALEXNET_ERRORS[name] - ALEXNET_CLEAN_ERROR))
                         for i, name in enumerate(names) if name in ALEXNET_ERRORS}
    ce = corruption_error(ds)
    assert list(ce["perturbation"].values) == list(expected_ce)  # uniform_noise has no AlexNet entry
    np.testing.assert_allclose(ce.sel(model="model").values, list(expected_ce.values()), rtol=1e-12)
    np.testing.assert_allclose(corruption_error(ds, relative=True).sel(model="model").values,
                               list(expected_relative.values()), rtol=1e-12)
    benchmark_mean = np.mean([expected_ce[name] for name in IMAGENET_C_BENCHMARK])  # speckle_noise is held out
    assert float(mce(ds).sel(model="model")) == pytest.approx(benchmark_mean, rel=1e-12)
    relative_mean = np.mean([expected_relative[name] for name in IMAGENET_C_BENCHMARK])
    assert float(relative_mce(ds).sel(model="model")) == pytest.approx(relative_mean, rel=1e-12)
    assert mce(ds).attrs["baseline_source"].startswith("published AlexNet")


def test_alexnet_scores_100_percent():
    names = list(IMAGENET_C_BENCHMARK)
    # Errors equal to AlexNet's averages at every severity (rounded to the 1/50000 grid) and AlexNet's clean error.
    alexnet = np.array([[ALEXNET_CLEAN_ERROR] + [ALEXNET_ERRORS[name]] * 5 for name in names])
    ds = cube_from_errors({"alexnet-like": alexnet}, names, n_samples=50_000)
    assert mce(ds).sel(model="alexnet-like").item() == pytest.approx(1.0, abs=2e-5)
    assert relative_mce(ds).sel(model="alexnet-like").item() == pytest.approx(1.0, abs=1e-4)


def test_baseline_model_in_the_cube():
    rng = np.random.default_rng(1)
    names = list(IMAGENET_C_BENCHMARK)
    errors = {"base": grid_errors(rng, 15), "other": grid_errors(rng, 15)}
    ds = cube_from_errors(errors, names + [], n_samples=N_SAMPLES)
    scores = mce(ds, baseline="base")
    assert float(scores.sel(model="base")) == 1.0
    expected = np.mean([errors["other"][i, 1:].sum() / errors["base"][i, 1:].sum() for i in range(15)])
    assert float(scores.sel(model="other")) == pytest.approx(expected, rel=1e-12)
    expected_relative = np.mean([(errors["other"][i, 1:] - errors["other"][i, 0]).sum()
                                 / (errors["base"][i, 1:] - errors["base"][i, 0]).sum() for i in range(15)])
    assert float(relative_mce(ds, baseline="base").sel(model="other")) == pytest.approx(expected_relative, rel=1e-12)
    assert mce(ds, baseline="base").attrs["baseline_source"] == "model 'base' in the cube"


def test_baseline_model_works_for_any_perturbation_and_subset_of_severities():
    errors = {"base": np.array([[0.1, 0.4, 0.6]]), "m": np.array([[0.1, 0.2, 0.4]])}
    ds = cube_from_errors(errors, ["my_blur"], severities=(0, 1, 3))
    ce = corruption_error(ds, baseline="base")
    assert float(ce.sel(model="m", perturbation="my_blur")) == pytest.approx((0.2 + 0.4) / (0.4 + 0.6))
    with pytest.raises(RobustnessError, match="severities 1–5"):
        corruption_error(ds)


def test_missing_corruptions_need_allow_partial():
    rng = np.random.default_rng(2)
    names = ["gaussian_noise", "fog", "my_noise"]
    ds = cube_from_errors({"m": grid_errors(rng, 3)}, names)
    with pytest.raises(RobustnessError, match="lacks"):
        mce(ds)
    partial = mce(ds, allow_partial=True)
    table = error_table(ds).sel(model="m")
    expected = np.mean([float(table.sel(perturbation=name)[1:].sum()) / (5 * ALEXNET_ERRORS[name])
                        for name in ("gaussian_noise", "fog")])
    assert float(partial.sel(model="m")) == pytest.approx(expected, rel=1e-12)
    assert partial.attrs["corruptions"] == "gaussian_noise, fog" and partial.attrs["partial"] == 1
    only_custom = cube_from_errors({"m": grid_errors(rng, 1)}, ["my_noise"])
    with pytest.raises(RobustnessError, match="not an ImageNet-C corruption|none of the cube's"):
        mce(only_custom, allow_partial=True)


def test_unknown_baseline_and_missing_variables():
    ds = cube_from_errors({"m": np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])}, ["fog"])
    with pytest.raises(RobustnessError, match="neither a model in the cube"):
        mce(ds, baseline="resnet50")
    with pytest.raises(RobustnessError, match="no 'correct'"):
        mce(ds.drop_vars("correct"))


def test_flip_probability_by_hand():
    labels = np.array([0, 1, 2, 3])
    pred = np.array([[0, 1, 2, 3],    # severity 0
                     [0, 1, 2, 0],    # 1 change
                     [0, 2, 2, 0],    # 1 change
                     [1, 2, 0, 0]])   # 2 changes
    dims = ("model", "perturbation", "severity", "sample")
    ds = xr.Dataset({"pred": (dims, pred[None, None]), "correct": (dims, (pred == labels)[None, None])},
                    coords={"model": ["m"], "perturbation": ["p"], "severity": [0, 1, 2, 3],
                            "sample": np.arange(4), "label": ("sample", labels)})
    flips = flip_probability(ds)
    assert flips.dims == ("model", "perturbation")
    assert float(flips.sel(model="m", perturbation="p")) == pytest.approx((1 / 4 + 1 / 4 + 2 / 4) / 3)
