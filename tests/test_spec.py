import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from robustviz.spec import Component, EvaluationSpec, SpecError

YAML = """
models: [smallcnn-standard, {name: tinyresnet-noise}]
dataset: {name: shapes, image_size: 32}
n_samples: 16
perturbations: [gaussian_noise, {name: rise_like, n_masks: 10}]
severities: [5, 1, 3]
methods: [saliency]
metrics: [cosine]
batch_size: 8
seed: 3
"""


def test_from_yaml_parses_and_normalises():
    spec = EvaluationSpec.from_yaml(YAML)
    assert [c.name for c in spec.models] == ["smallcnn-standard", "tinyresnet-noise"]
    assert spec.dataset == Component("shapes", (("image_size", 32),))
    assert spec.severities == (1, 3, 5)
    assert spec.perturbations[1].kwargs == {"n_masks": 10}
    assert spec.perturbations[1].label == "rise_like[n_masks=10]"


def test_round_trip_through_dict_and_yaml(tmp_path):
    spec = EvaluationSpec.from_yaml(YAML)
    assert EvaluationSpec.from_dict(spec.to_dict()) == spec
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    assert EvaluationSpec.from_yaml(path) == spec
    assert yaml.safe_load(spec.to_yaml()) == spec.to_dict()


def test_frozen():
    spec = EvaluationSpec.from_yaml(YAML)
    with pytest.raises(Exception):
        spec.seed = 1  # type: ignore[misc]


def test_fingerprint_ignores_batch_size_and_device_only():
    spec = EvaluationSpec.from_yaml(YAML)
    assert spec.fingerprint() == spec.replace(batch_size=1, device="cpu").fingerprint()
    assert spec.fingerprint() != spec.replace(seed=4).fingerprint()
    assert spec.fingerprint() != spec.replace(severities=[1, 2]).fingerprint()


@pytest.mark.parametrize("changes, message", [
    ({"severities": [0, 1]}, "severities must be a non-empty subset of 1..5"),
    ({"severities": [6]}, "severities"),
    ({"n_samples": 0}, "n_samples must be ≥ 1"),
    ({"batch_size": "big"}, "batch_size must be an integer"),
    ({"models": []}, "models: give at least one entry"),
    ({"perturbations": ["a", "a"]}, "listed more than once"),
    ({"device": "tpu"}, "device must be"),
    ({"methods": [{"n_masks": 3}]}, "needs a 'name' key"),
])
def test_invalid_specs_have_clear_errors(changes, message):
    data = EvaluationSpec.from_yaml(YAML).to_dict()
    data.update(changes)
    with pytest.raises(SpecError, match=message):
        EvaluationSpec.from_dict(data)


def test_unknown_field_suggests():
    with pytest.raises(SpecError, match="did you mean 'n_samples'"):
        EvaluationSpec.from_dict({"models": ["a"], "nsamples": 3})


def test_invalid_yaml():
    with pytest.raises(SpecError, match="not valid YAML"):
        EvaluationSpec.from_yaml("models: [a\nseed: 1\n")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 1000), severities=st.sets(st.integers(1, 5), min_size=1),
       names=st.lists(st.text("abcdefgh_-", min_size=1, max_size=8), min_size=1, max_size=4, unique=True))
def test_round_trip_property(seed, n, severities, names):
    spec = EvaluationSpec(models=names, perturbations=names, seed=seed, n_samples=n, severities=tuple(severities))
    assert EvaluationSpec.from_dict(spec.to_dict()) == spec
    assert EvaluationSpec.from_yaml(spec.to_yaml()) == spec
