"""Metrics scoped to methods, default skips of costly metric × method pairs, degenerate-metric warnings."""

import json

import numpy as np
import pytest

import robustviz as rv
from robustviz.evaluate.plan import Plan
from robustviz.evaluate.scoping import RISE_MIN_MASKS, DegenerateMetricWarning
from tests.evaluate import helpers  # noqa: F401  (registers test_tiny / test_noise)

pytestmark = pytest.mark.filterwarnings("ignore::robustviz.evaluate.scoping.DegenerateMetricWarning")

METHODS = ["saliency", "grad_cam", {"name": "rise", "n_masks": 6, "batch_masks": 48},
           {"name": "smoothgrad", "nt_samples": 2}]


def scoped_spec(metrics, **changes) -> rv.EvaluationSpec:
    data = dict(models=["test_tiny"], dataset={"name": "shapes", "image_size": 16}, n_samples=4,
                perturbations=["test_noise"], severities=[1, 3], methods=METHODS, metrics=metrics,
                batch_size=4, seed=2, device="cpu", n_examples=0)
    data.update(changes)
    return rv.EvaluationSpec.from_dict(data)


def _computed(plan, name):
    index = plan.metric_names.index(name)
    return [m for m, on in zip(plan.method_names, plan.metric_methods[index]) if on]


def test_default_skips_costly_methods_for_sensitivity_metrics_only():
    plan = Plan.from_spec(scoped_spec(["cosine", {"name": "max_sensitivity", "n_samples": 2},
                                       {"name": "local_lipschitz", "n_samples": 2}]))
    assert _computed(plan, "cosine") == ["saliency", "grad_cam", "rise", "smoothgrad"]
    assert _computed(plan, "max_sensitivity") == ["saliency", "grad_cam"]
    assert _computed(plan, "local_lipschitz") == ["saliency", "grad_cam"]
    assert len(plan.notes) == 2 and "rise, smoothgrad" in plan.notes[0] and "methods: all" in plan.notes[0]


@pytest.mark.parametrize("methods, expected", [
    ("all", ["saliency", "grad_cam", "rise", "smoothgrad"]),
    (["rise"], ["rise"]),
    (["grad_cam", "saliency"], ["saliency", "grad_cam"]),
    ("smoothgrad", ["smoothgrad"]),
])
def test_explicit_methods_override_the_defaults(methods, expected):
    plan = Plan.from_spec(scoped_spec([{"name": "max_sensitivity", "n_samples": 2, "methods": methods}]))
    assert _computed(plan, "max_sensitivity") == expected
    assert plan.notes == []


def test_bad_scopes_are_clear_errors():
    with pytest.raises(rv.SpecError, match="'lime'.*not in the spec's methods"):
        Plan.from_spec(scoped_spec([{"name": "cosine", "methods": ["saliency", "lime"]}]))
    with pytest.raises(rv.SpecError, match="does not use attributions"):
        Plan.from_spec(scoped_spec([{"name": "fisher_lmax", "methods": ["saliency"]}]))
    with pytest.raises(rv.SpecError, match="methods must be"):
        Plan.from_spec(scoped_spec([{"name": "cosine", "methods": [1, 2]}]))


def test_scoped_cells_are_nan_and_equal_the_unscoped_run():
    scoped = rv.evaluate(scoped_spec([{"name": "cosine", "methods": ["grad_cam", "rise"]},
                                      {"name": "max_sensitivity", "n_samples": 2}]), progress=False)
    full = rv.evaluate(scoped_spec([{"name": "cosine", "methods": "all"},
                                    {"name": "max_sensitivity", "n_samples": 2, "methods": "all"}]),
                       progress=False)
    for name, kept in (("cosine", ["grad_cam", "rise"]), ("max_sensitivity", ["saliency", "grad_cam"])):
        dropped = [m for m in full.method.values if m not in kept]
        assert np.isnan(scoped[name].sel({"method": dropped}).values).all()  # missing, never 0
        kept_values = scoped[name].sel({"method": kept}).values
        assert np.isfinite(kept_values).all()
        np.testing.assert_array_equal(kept_values, full[name].sel({"method": kept}).values)
    # the accuracy variables do not depend on the scoping
    np.testing.assert_array_equal(scoped["correct"].values, full["correct"].values)
    assert json.loads(scoped.attrs["metric_methods"])["max_sensitivity"] == ["saliency", "grad_cam"]
    assert "skipped for rise, smoothgrad" in scoped.attrs["notes"]


def test_few_rise_masks_warn_for_map_similarity_and_are_recorded():
    spec = scoped_spec(["consistency", {"name": "deletion_auc", "step": 64}], methods=[METHODS[2]])
    with pytest.warns(DegenerateMetricWarning, match="6 RISE masks"):
        ds = rv.evaluate(spec, progress=False)
    recorded = json.loads(ds.attrs["warnings"])
    assert any("consistency × rise" in w for w in recorded)
    assert any("deletion_auc: only 4 steps" in w for w in recorded)
    enough = [{"name": "rise", "n_masks": RISE_MIN_MASKS}]
    assert Plan.from_spec(scoped_spec([{"name": "consistency", "similarity": "spearman"}, "spearman"],
                                      methods=enough)).warnings == []
    # cosine on RISE maps: near 1 between unrelated images whatever the masks (their positive offset)
    cosine = Plan.from_spec(scoped_spec(["consistency", "cosine"], methods=enough)).warnings
    assert len(cosine) == 2 and all("offset" in w for w in cosine)
    gradients = scoped_spec(["consistency", "deletion_auc"], methods=["saliency"])
    assert Plan.from_spec(gradients).warnings == []
