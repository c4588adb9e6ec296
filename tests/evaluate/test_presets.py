"""``preset: paper`` / ``preset: fast``: defaults for costly components, explicit parameters win."""

import json

import numpy as np
import pytest

import robustviz as rv
from robustviz.cli import demo_spec
from robustviz.evaluate.plan import Plan
from robustviz.evaluate.presets import PRESETS
from robustviz.metrics.faithfulness import default_step
from tests.evaluate import helpers  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::robustviz.evaluate.scoping.DegenerateMetricWarning")


def preset_spec(preset, methods=("rise", "integrated_gradients"), metrics=("deletion_auc",), **changes):
    data = dict(models=["test_tiny"], dataset={"name": "shapes", "image_size": 16}, n_samples=2,
                perturbations=["test_noise"], severities=[1], methods=list(methods), metrics=list(metrics),
                batch_size=4, seed=0, device="cpu", n_examples=0, preset=preset)
    data.update(changes)
    return rv.EvaluationSpec.from_dict(data)


def test_paper_preset_uses_the_papers_settings():
    plan = Plan.from_spec(preset_spec("paper", metrics=["deletion_auc", "insertion_auc", "iaside"]))
    rise, ig = plan.methods
    assert 4000 <= rise.n_masks <= 8000  # Petsiuk et al. 2018
    assert 32 <= ig.n_steps <= 50  # Sundararajan et al. 2017 / Captum
    for metric in plan.metrics:  # the default step: ~224 steps, 224 pixels per step at 224²
        assert metric.step is None and default_step(224, 224) == 224
    assert plan.model_metrics[0].n_bands == 8 and plan.model_metrics[0].method == "exact"


def test_explicit_parameters_override_the_preset():
    spec = preset_spec("paper", methods=[{"name": "rise", "n_masks": 50}, "integrated_gradients"],
                       metrics=[{"name": "deletion_auc", "step": 8}])
    plan = Plan.from_spec(spec)
    assert plan.methods[0].n_masks == 50 and plan.methods[1].n_steps == PRESETS["paper"]["method"][
        "integrated_gradients"]["n_steps"]
    assert plan.metrics[0].step == 8
    assert plan.method_names == ["rise", "integrated_gradients"]  # labels are the spec's, not the preset's


def test_no_preset_keeps_component_defaults_and_fingerprints():
    plan = Plan.from_spec(preset_spec(None))
    assert plan.methods[0].n_masks == 6000 and plan.methods[1].n_steps == 32
    spec = preset_spec(None)
    assert "preset" not in spec.to_dict()  # earlier specs (and their stores) keep their fingerprint
    assert preset_spec("fast").fingerprint() != spec.fingerprint() != preset_spec("paper").fingerprint()
    assert rv.EvaluationSpec.from_yaml(preset_spec("fast").to_yaml()).preset == "fast"
    with pytest.raises(rv.SpecError, match="preset must be one of paper, fast"):
        preset_spec("papers")


def test_fast_preset_matches_the_demo_and_is_labelled():
    spec = demo_spec(4)
    assert spec.preset == "fast"
    plan = Plan.from_spec(spec.replace(models=["test_tiny"], perturbations=["test_noise"], severities=[1],
                                       dataset={"name": "shapes", "image_size": 64}))
    rise = plan.methods[plan.method_names.index("rise")]
    assert rise.n_masks == 16 and plan.methods[plan.method_names.index("integrated_gradients")].n_steps == 4
    assert plan.metrics[plan.metric_names.index("deletion_auc")].step == 1024
    assert plan.metric_scopes[plan.metric_names.index("fisher_lmax")] == "clean"  # an engine parameter
    assert plan.attrs()["preset"].startswith("fast (light settings")


def test_preset_engine_parameters_reach_the_cube():
    ds = rv.evaluate(preset_spec("fast", methods=[], metrics=["fisher_lmax"]), progress=False)
    assert ds.attrs["preset"].startswith("fast")
    values = ds["fisher_lmax"].values  # model × perturbation × severity × sample: clean only under "fast"
    assert np.isfinite(values[:, :, 0]).all() and np.isnan(values[:, :, 1:]).all()
    assert json.loads(ds.attrs["warnings"]) == []
