"""Issue 15.1: a store knows it is a store — --overwrite deletes nothing else, stale staging directories go, and a
first run that failed at once does not block the corrected rerun."""

import json

import pytest
import torch
import yaml

import robustviz as rv
from robustviz.cli import main
from robustviz.evaluate.store import StoreError

from .store_tools import store_spec


def test_overwrite_deletes_only_a_robustviz_store(tmp_path, capsys):
    spec = store_spec(metrics=[], methods=[], perturbations=["test_noise"], sample_chunk=None)
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("\\section{Results}")
    with pytest.raises(StoreError, match="not a robustviz store.*Choose another --store path"):
        rv.evaluate(spec, store=thesis, overwrite=True, progress=False)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.to_dict()))
    assert main(["run", str(spec_file), "--store", str(thesis), "--overwrite", "--no-progress"]) == 2
    assert "not a robustviz store" in capsys.readouterr().err
    assert main(["run", str(spec_file), "--store", str(thesis), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a robustviz store" in err and "--overwrite" not in err
    assert (thesis / "chapter1.tex").read_text() == "\\section{Results}"
    # a zarr group robustviz did not write: refused, and the message does not recommend --overwrite
    foreign = tmp_path / "other.zarr"
    foreign.mkdir()
    (foreign / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(StoreError) as error:
        rv.evaluate(spec, store=foreign, progress=False)
    assert "not a robustviz store" in str(error.value) and "--overwrite" not in str(error.value).split("included")[1]
    assert (foreign / "zarr.json").exists()
    # a robustviz store is started over by --overwrite
    store = tmp_path / "cube.zarr"
    rv.evaluate(spec, store=store, progress=False)
    assert main(["run", str(spec_file), "--store", str(store), "--overwrite", "--no-progress"]) == 0


def test_stale_staging_directories_are_removed_and_foreign_ones_kept(tmp_path):
    spec = store_spec(metrics=[], methods=[], perturbations=["test_noise"], sample_chunk=None)
    store = tmp_path / "cube.zarr"
    ours = tmp_path / ".cube.zarr.0badc0de.tmp"  # what a run killed while creating the store leaves
    ours.mkdir()
    (ours / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group",
                                                "attributes": {"store_format": "robustviz-store-2"}}))
    empty = tmp_path / ".cube.zarr.12345678.tmp"
    empty.mkdir()
    theirs = tmp_path / ".cube.zarr.abcdef01.tmp"  # matches the pattern but robustviz did not make it
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    rv.evaluate(spec, store=store, progress=False)
    assert not ours.exists() and not empty.exists()
    assert (theirs / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / ".cube.zarr.lock").exists(), "the writer lock was left behind"


def test_a_first_run_that_fails_at_its_first_region_does_not_block_the_rerun(tmp_path, capsys):
    spec = store_spec(metrics=[], methods=[], perturbations=["test_noise"], sample_chunk=None)
    store = tmp_path / "cube.zarr"
    data = rv.create("dataset", "shapes", n_samples=4, seed=5, image_size=32)
    grey = data.subset(slice(0, 4))
    grey.images = grey.images[:, :1]  # the model expects 3 channels: the first region fails
    with pytest.raises(rv.InputError):
        rv.evaluate(spec, store=store, data=grey, progress=False)
    assert store.exists()
    # the corrected rerun (other data, so another data fingerprint) starts over instead of refusing
    fixed = rv.evaluate(spec, store=store, progress=False).load()
    assert fixed.rv.is_complete() and not torch.isnan(torch.from_numpy(fixed["prob_true"].values)).any()
    # the same through the CLI, without --resume / --overwrite
    store2 = tmp_path / "cli.zarr"
    with pytest.raises(rv.InputError):
        rv.evaluate(spec, store=store2, data=grey, progress=False)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.to_dict()))
    assert main(["run", str(spec_file), "--store", str(store2), "--no-progress"]) == 0, capsys.readouterr().err
