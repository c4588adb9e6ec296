"""Issue 15.2: a model's parameters and buffers are part of a store's identity: resuming with other weights under
the same name is an error naming the model, never a cube that mixes two models."""

import pytest
import torch

import robustviz as rv
from robustviz.evaluate.store import StoreError, model_fingerprint
from tests.evaluate.helpers import _tiny_model

from .store_tools import assert_identical, store_spec


class Stop(Exception):
    pass


def stop_after_first(key):
    raise Stop(key)


def test_resuming_with_other_weights_under_the_same_name_is_refused(tmp_path):
    spec = store_spec(metrics=["cosine"])
    store = tmp_path / "cube.zarr"
    first, second = _tiny_model(seed=0), _tiny_model(seed=1)
    with pytest.raises(Stop):  # interrupted after its first region
        rv.evaluate(spec, store=store, models={"test_tiny": first}, progress=False, on_region=stop_after_first)
    with pytest.raises(StoreError, match="model 'test_tiny' has other weights"):
        rv.evaluate(spec, store=store, models={"test_tiny": second}, progress=False)
    # a buffer counts too (e.g. BatchNorm statistics): same parameters, one buffer changed
    with_zeros, with_ones = _tiny_model(seed=0), _tiny_model(seed=0)
    with_zeros.register_buffer("running_stat", torch.zeros(3))
    with_ones.register_buffer("running_stat", torch.ones(3))
    assert model_fingerprint(with_zeros) != model_fingerprint(with_ones)
    first_again = _tiny_model(seed=0)  # another object with the same weights resumes
    resumed = rv.evaluate(spec, store=store, models={"test_tiny": first_again}, progress=False).load()
    assert_identical(resumed.drop_vars(["done", "model_done"]),
                     rv.evaluate(spec, models={"test_tiny": _tiny_model(seed=0)}, progress=False)
                     .drop_vars(["done", "model_done"]))


def test_the_fingerprint_hashes_every_parameter_and_buffer():
    model = _tiny_model(seed=0)
    reference = model_fingerprint(model)
    assert model_fingerprint(_tiny_model(seed=0)) == reference
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        changed = _tiny_model(seed=0)
        target = dict(list(changed.named_parameters()) + list(changed.named_buffers()))[name]
        with torch.no_grad():
            target.view(-1)[-1] += 1e-3  # the last element of each tensor: the whole tensor is hashed
        assert model_fingerprint(changed) != reference, name
