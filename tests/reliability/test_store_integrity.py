"""Issue 15.4: every written region carries content hashes; `open_cube(verify=True)` and `robustviz verify` name
damaged regions, and `--resume` recomputes them (a deleted or swapped chunk used to open silently wrong)."""

import shutil

import pytest

import robustviz as rv
from robustviz.cli import main
from robustviz.cube.schema import CubeError
from robustviz.evaluate.store import StoreRepairWarning

from .store_tools import assert_identical, chunk_file, store_spec


def test_a_deleted_or_swapped_chunk_is_found_and_recomputed(tmp_path, capsys):
    spec = store_spec()
    store = tmp_path / "cube.zarr"
    reference = rv.evaluate(spec, store=store, progress=False).load()
    assert main(["verify", str(store)]) == 0
    assert "ok; 4 written regions verified" in capsys.readouterr().out

    chunk_file(store, "pred", 0, 1, 1).unlink()  # region (0, 1, 1) loses its predictions
    a, b = chunk_file(store, "prob_true", 0, 0, 0), chunk_file(store, "prob_true", 0, 1, 0)
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())  # region (0, 0, 0) gets region (0, 1, 0)'s probabilities
    assert a.read_bytes() != a_bytes
    with pytest.raises(CubeError, match=r"model=0 perturbation=0 chunk=0: content of prob_true differs"):
        rv.open_cube(store, verify=True)
    assert main(["verify", str(store)]) == 1
    out = capsys.readouterr().out
    assert "model=0 perturbation=1 chunk=1: content of pred differs" in out
    assert "model=0 perturbation=0 chunk=0" in out and "DAMAGED" in out
    assert "chunk=1 " not in out.replace("perturbation=1 chunk=1", "")  # undamaged regions are not blamed

    recomputed = []
    with pytest.warns(StoreRepairWarning, match="damaged"):
        repaired = rv.evaluate(spec, store=store, progress=False, on_region=recomputed.append).load()
    assert sorted(recomputed) == [(0, 0, 0), (0, 1, 1)], "only the damaged regions are recomputed"
    assert_identical(repaired, reference)
    assert main(["verify", str(store)]) == 0
    rv.open_cube(store, verify=True)


def test_verify_refuses_to_vouch_for_a_store_without_hashes(tmp_path, capsys):
    spec = store_spec(metrics=[], methods=[], perturbations=["test_noise"], sample_chunk=None)
    store = tmp_path / "cube.zarr"
    rv.evaluate(spec, store=store, progress=False)
    shutil.rmtree(store / ".robustviz")
    assert main(["verify", str(store)]) == 1
    assert "no integrity manifest" in capsys.readouterr().out
