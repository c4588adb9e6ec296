"""Issue 15.3: missing is missing — cells of regions not written yet read as NaN / -1 in a store exactly as in
memory, accuracy of an unfinished region is NaN (never 0), and a partial store opens."""

import numpy as np
import pytest

import robustviz as rv
from robustviz.cube.template import materialize
from robustviz.evaluate.engine import build_template
from robustviz.evaluate.plan import Plan

from .store_tools import store_spec


class Stop(Exception):
    pass


def test_unwritten_regions_read_as_missing_in_store_and_memory(tmp_path):
    spec = store_spec()
    store = tmp_path / "cube.zarr"

    def stop(key):
        raise Stop

    with pytest.raises(Stop):  # region (0,0,0) written: perturbation 0, samples 0-1; the rest pending
        rv.evaluate(spec, store=store, progress=False, on_region=stop)
    partial = rv.open_cube(store)  # validates: must not fail on the pending regions
    assert not partial.rv.is_complete()
    full = rv.evaluate(spec, progress=False)
    empty = materialize(build_template(Plan.from_spec(spec)))  # what the in-memory path starts from
    for name in ("pred", "correct", "prob_true", "confidence", "cosine", "example_attribution"):
        written = {"perturbation": 0, "sample": slice(0, 2)} if "sample" in partial[name].dims else {"perturbation": 0}
        pending = np.ones(partial[name].shape, dtype=bool)
        pending[tuple(written.get(d, slice(None)) for d in partial[name].dims)] = False
        np.testing.assert_array_equal(partial[name].values[pending], empty[name].values[pending], err_msg=name)
        np.testing.assert_array_equal(partial[name].values[~pending], full[name].values[~pending], err_msg=name)
    pending = partial.isel(perturbation=1)
    assert (pending["pred"].values == -1).all()
    assert np.isnan(pending["correct"].values).all() and np.isnan(pending["prob_true"].values).all()
    accuracy = partial.rv.accuracy()
    assert np.isnan(accuracy.isel(perturbation=1).values).all(), "an unfinished region's accuracy must be NaN"
    # one sample chunk of two written: the cell's accuracy is not known yet
    assert np.isnan(accuracy.isel(perturbation=0).values).all()
    expected = full["correct"].astype("float64").isel(perturbation=0, sample=slice(0, 2)).mean("sample")
    np.testing.assert_array_equal(partial.isel(sample=slice(0, 2)).rv.accuracy().isel(perturbation=0).values,
                                  expected.values)
    # the in-memory cube and the finished store agree value for value, missing markers included
    finished = rv.evaluate(spec, store=store, progress=False).load()
    for name in full.data_vars:
        np.testing.assert_array_equal(finished[name].values, full[name].values, err_msg=name)


def test_correct_is_never_false_for_a_missing_prediction():
    from robustviz.cube.schema import BASE_VARIABLES

    spec = store_spec(metrics=[], methods=[], n_examples=0)
    empty = materialize(build_template(Plan.from_spec(spec)))
    assert BASE_VARIABLES["correct"]["dtype"] != "bool"
    assert np.isnan(empty["correct"].values).all() and (empty["pred"].values == -1).all()
    assert np.isnan(empty.rv.accuracy().values).all()
