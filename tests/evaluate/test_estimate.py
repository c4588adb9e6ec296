"""The cost estimate (``rv.estimate`` / ``robustviz run --dry-run``) against an instrumented run of the same spec."""

import time

import numpy as np
import pytest
import torch

import robustviz as rv
from robustviz.cli import EXIT_OVER_LIMIT, main
from robustviz.evaluate.estimate import PassCounter
from robustviz.evaluate.probe import _grid
from robustviz.evaluate.plan import Plan
from tests.evaluate import helpers  # noqa: F401  (registers test_tiny / test_noise)

pytestmark = pytest.mark.filterwarnings("ignore::robustviz.evaluate.scoping.DegenerateMetricWarning")


def cost_spec(**changes) -> rv.EvaluationSpec:
    """Every kind of row: a model-using and a plain perturbation, a method probed as is (saliency) and two
    extrapolated ones (IG steps, RISE masks), a metric that re-runs its method (bilinear in n_samples × n_masks),
    deletion, Fisher (clean only) and I-ASIDE, over two unequal sample chunks."""
    data = dict(
        models=["test_tiny"], dataset={"name": "shapes", "image_size": 16}, n_samples=5, sample_chunk=3,
        perturbations=["test_noise", "lowpass"], severities=[2],
        methods=["saliency", {"name": "integrated_gradients", "n_steps": 5}, {"name": "rise", "n_masks": 6,
                                                                             "batch_masks": 16}],
        metrics=["cosine", {"name": "deletion_auc", "step": 32},
                 {"name": "max_sensitivity", "n_samples": 3, "methods": ["saliency", "rise"]},
                 {"name": "fisher_lmax", "at": "clean", "mode": "exact"}, {"name": "iaside", "n_bands": 3}],
        batch_size=4, seed=5, device="cpu", n_examples=1)
    data.update(changes)
    return rv.EvaluationSpec.from_dict(data)


def _instrumented_run(spec):
    model = Plan.from_spec(spec).create_model(0)
    with PassCounter(model) as counter:
        started = time.perf_counter()
        rv.evaluate(spec, models={"test_tiny": model}, progress=False)
        seconds = time.perf_counter() - started
    return counter, seconds


def test_bilinear_weights_reproduce_an_affine_cost():
    # cost(a, b) = 3 + 2a + 5b + 7ab, probed at a, b ∈ {1, 2}, extrapolated to (10, 6)
    factors = [("a", 10, (1, 2)), ("b", 6, (1, 2))]
    total = sum(weight * (3 + 2 * a + 5 * b + 7 * a * b) for (a, b), weight in _grid(factors))
    assert total == pytest.approx(3 + 20 + 30 + 420)
    # other nodes (I-ASIDE's 2 and 4 coalitions): the same exactness
    total = sum(weight * (1 + 3 * c) for (c,), weight in _grid([("c", 256, (2, 4))]))
    assert total == pytest.approx(1 + 3 * 256)


def test_passes_are_counted_exactly_and_time_is_close():
    torch.manual_seed(0)
    spec = cost_spec()
    estimate = rv.estimate(spec)
    counter, seconds = _instrumented_run(spec)
    # exact: every image through the model, forward and backward, as an instrumented run counts them
    assert estimate.total_forwards == counter.forward_images
    assert estimate.total_backwards == counter.backward_images
    rows = {(r.kind, r.name): r for r in estimate.rows}
    # the default-skipped / scoped pairs are not estimated, the scoped ones are
    assert ("metric", "max_sensitivity × rise") in rows and ("metric", "max_sensitivity × integrated_gradients") \
        not in rows
    assert rows[("method", "rise")].how.startswith("extrapolated")
    assert rows[("metric", "deletion_auc × rise")].how.startswith("extrapolated")
    # masks × block × blocks (the block is the 5 samples; two chunks: a clean and two perturbed blocks each)
    assert rows[("method", "rise")].forwards == 6 * 5 * (2 + 2 * 2)
    assert rows[("metric", "deletion_auc × saliency")].forwards == (256 // 32 + 1) * 5 * (2 + 2 * 2)
    # a busy machine: generous bounds here; the measured ratio is reported in the closing note
    ratio = estimate.total_seconds / seconds
    print(f"estimate / measured wall time: {ratio:.2f}")
    assert 0.33 < ratio < 3.0


def test_rise_pass_count_matches_its_definition():
    spec = cost_spec(methods=[{"name": "rise", "n_masks": 37, "batch_masks": 16}], metrics=[],
                     perturbations=["test_noise"], severities=[1], n_samples=8, sample_chunk=None)
    estimate = rv.estimate(spec)
    counter, _ = _instrumented_run(spec)
    rise = next(r for r in estimate.rows if r.name == "rise")
    assert rise.forwards == 37 * 8 * 2  # N masks per image, one block of 8 images, clean and perturbed
    # + two prediction blocks (clean, perturbed) of the 8 images (never padded beyond the dataset)
    assert estimate.total_forwards == counter.forward_images == 37 * 8 * 2 + 2 * 8


def test_table_limit_and_text():
    estimate = rv.estimate(cost_spec(metrics=["cosine"], perturbations=["test_noise"]), max_hours=1e-9)
    table = estimate.table()
    assert set(table["kind"]) == {"predictions", "perturbation", "method", "metric"}
    assert table["share"].sum() == pytest.approx(1.0)
    assert estimate.exceeds_limit
    text = str(estimate)
    assert "total" in text and "exceeds the limit" in text
    assert not rv.estimate(cost_spec(metrics=[], methods=[], perturbations=[]), max_hours=10).exceeds_limit


def test_cli_dry_run_and_limits(tmp_path, capsys):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(cost_spec(metrics=["cosine"], perturbations=["test_noise"], methods=["saliency"]).to_yaml())
    store = tmp_path / "out.zarr"
    assert main(["run", str(spec_path), "--store", str(store), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "method: saliency" in out and "total" in out
    assert not store.exists()
    # over the limit: refused (nothing written) unless --force
    assert main(["run", str(spec_path), "--store", str(store), "--max-hours", "1e-9", "--no-progress"]) \
        == EXIT_OVER_LIMIT
    assert "pass --force" in capsys.readouterr().err
    assert not store.exists()
    assert main(["run", str(spec_path), "--store", str(store), "--max-hours", "1e-9", "--force",
                 "--no-progress"]) == 0
    assert store.exists()


def test_spec_limits_key(tmp_path, capsys):
    spec = cost_spec(metrics=[], methods=[], perturbations=["test_noise"], limits={"max_hours": 1e-9})
    assert rv.EvaluationSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.fingerprint() == spec.replace(limits=None).fingerprint()  # a limit does not change the cube
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(spec.to_yaml())
    assert main(["run", str(spec_path), "--store", str(tmp_path / "o.zarr"), "--no-progress"]) == EXIT_OVER_LIMIT
    for bad in ({"max_hours": -1}, {"max_hours": "two"}, {"hours": 1}, [1, 2]):
        with pytest.raises(rv.SpecError, match="limits"):
            cost_spec(limits=bad)


def test_pass_counter_counts_forward_and_backward():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with PassCounter(model) as counter:
        with torch.no_grad():
            model(torch.zeros(5, 12))
        inputs = torch.zeros(4, 12, requires_grad=True)
        torch.autograd.grad(model(inputs).sum(), inputs)
    model(torch.zeros(2, 12))  # after the context: not counted
    assert list(counter.counts()) == [9, 4, 2, 1]
    assert np.isfinite(counter.counts()).all()


def test_progress_steps_inside_regions(capfd):
    from robustviz.evaluate.engine import RegionComputer, region_steps

    spec = cost_spec(metrics=["cosine", {"name": "deletion_auc", "step": 64}, {"name": "fisher_lmax", "at": "clean"}])
    plan = Plan.from_spec(spec)
    computer = RegionComputer(plan)
    ticks = []
    computer.tick = lambda: ticks.append(1)
    for key, with_clean in (((0, 0, 0), True), ((0, 1, 0), False), ((0, 0, 1), True)):
        ticks.clear()
        computer.region(*key)
        assert len(ticks) == region_steps(plan, key[2], with_clean=with_clean)
    capfd.readouterr()
    rv.evaluate(spec, progress=False)
    assert capfd.readouterr().err == ""  # no bars, no noise
    rv.evaluate(spec, progress=True)
    err = capfd.readouterr().err
    assert "step" in err and "test_tiny × lowpass" in err
