"""Issue 15, acceptance 2: damage a finished store in one of many ways; `robustviz verify` must report it, and
`robustviz run --resume` must restore a cube identical to the undamaged one — or refuse with a clear error. Never
exit 0 with a damaged cube."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
import zarr

import robustviz as rv
from robustviz.cli import main

from .store_tools import assert_identical, chunk_file, store_spec

SPEC = store_spec()


def _garbage(path: Path) -> None:
    size = max(path.stat().st_size, 16)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _swap(a: Path, b: Path) -> None:
    first, second = a.read_bytes(), b.read_bytes()
    assert first != second
    a.write_bytes(second)
    b.write_bytes(first)


def _edit_meta(name: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        meta = json.loads((store / name / "zarr.json").read_text())
        edit(meta)
        (store / name / "zarr.json").write_text(json.dumps(meta))
    return damage


def _set(meta: dict, key: str, value) -> None:
    meta[key] = value


def _overwrite_sample_ids(store: Path) -> None:
    group = zarr.open_group(store, mode="r+")
    group["sample"][...] = np.asarray(group["sample"][...]) + 100  # valid chunk, wrong values


#: damage kind → (what it does to the store, "repair" or "refuse")
DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "delete-pred-chunk": (lambda s: chunk_file(s, "pred", 0, 0, 0).unlink(), "repair"),
    "delete-metric-chunk": (lambda s: chunk_file(s, "cosine", 0, 1, 1).unlink(), "repair"),
    "delete-example-chunk": (lambda s: chunk_file(s, "example_image", 0, 1).unlink(), "repair"),
    "delete-chunks-of-several-variables": (lambda s: [chunk_file(s, n, 0, 1, 0).unlink()
                                                      for n in ("pred", "prob_true", "cosine", "correct")], "repair"),
    "delete-all-chunks-of-a-variable": (lambda s: shutil.rmtree(s / "confidence" / "c"), "repair"),
    "truncate-confidence-chunk": (lambda s: _truncate(chunk_file(s, "confidence", 0, 0, 1)), "repair"),
    "truncate-correct-chunk": (lambda s: _truncate(chunk_file(s, "correct", 0, 1, 0)), "repair"),
    "empty-prob-true-chunk": (lambda s: chunk_file(s, "prob_true", 0, 1, 1).write_bytes(b""), "repair"),
    "garbage-pred-chunk": (lambda s: _garbage(chunk_file(s, "pred", 0, 0, 1)), "repair"),
    "garbage-attribution-chunk": (lambda s: _garbage(chunk_file(s, "example_attribution", 0, 0)), "repair"),
    "swap-prob-true-chunks": (lambda s: _swap(chunk_file(s, "prob_true", 0, 0, 0),
                                              chunk_file(s, "prob_true", 0, 1, 1)), "repair"),
    "copy-cosine-chunk-over-another": (lambda s: chunk_file(s, "cosine", 0, 0, 0).write_bytes(
        chunk_file(s, "cosine", 0, 0, 1).read_bytes()), "repair"),
    "edit-dtype": (_edit_meta("prob_true", lambda m: _set(m, "data_type", "float64")), "repair"),
    "edit-shape": (_edit_meta("pred", lambda m: m["shape"].__setitem__(3, 8)), "repair"),
    "edit-fill-value": (_edit_meta("pred", lambda m: _set(m, "fill_value", 0)), "repair"),
    "edit-codecs": (_edit_meta("confidence", lambda m: _set(m, "codecs", m["codecs"][:1])), "repair"),
    "delete-array-metadata": (lambda s: (s / "confidence" / "zarr.json").unlink(), "repair"),
    "delete-variable": (lambda s: shutil.rmtree(s / "cosine"), "repair"),
    "delete-done-mask": (lambda s: shutil.rmtree(s / "done"), "repair"),
    "delete-done-chunk": (lambda s: chunk_file(s, "done", 0, 1, 1).unlink(), "repair"),
    "garbage-done-chunk": (lambda s: _garbage(chunk_file(s, "done", 0, 0, 1)), "repair"),
    "delete-region-record": (lambda s: (s / ".robustviz" / "regions" / "0-1-0.json").unlink(), "repair"),
    "garbage-region-record": (lambda s: _garbage(s / ".robustviz" / "regions" / "0-0-0.json"), "repair"),
    "delete-model-level-chunk": (lambda s: chunk_file(s, "sid", 0).unlink(), "repair"),
    "delete-model-done": (lambda s: shutil.rmtree(s / "model_done"), "repair"),
    "garbage-label-coordinate": (lambda s: _garbage(s / "label" / "c" / "0"), "repair"),
    "overwrite-sample-coordinate": (_overwrite_sample_ids, "repair"),
    "delete-manifest": (lambda s: (s / ".robustviz" / "store.json").unlink(), "refuse"),
    "garbage-root-metadata": (lambda s: _garbage(s / "zarr.json"), "refuse"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    store = root / "cube.zarr"
    rv.evaluate(SPEC, store=store, progress=False)
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC.to_dict()))
    return store, spec_file, rv.open_cube(store).load()


def test_there_are_at_least_20_damage_kinds():
    assert len(DAMAGES) >= 20


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_damage_is_reported_then_repaired_or_refused(kind, pristine, tmp_path, capsys):
    source, spec_file, reference = pristine
    store = tmp_path / "cube.zarr"
    shutil.copytree(source, store)
    damage, outcome = DAMAGES[kind]
    damage(store)

    assert main(["verify", str(store)]) == 1, f"verify passed a store with damage {kind!r}"
    assert "damaged:" in capsys.readouterr().out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the repair warning lists what is recomputed
        code = main(["run", str(spec_file), "--store", str(store), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    if outcome == "refuse":
        assert code == 2 and err.startswith("error: ") and "--overwrite" in err, err
        assert main(["verify", str(store)]) == 1, "a refused store must still fail verification"
        return
    assert code == 0, err
    assert main(["verify", str(store)]) == 0, capsys.readouterr().out
    assert_identical(rv.open_cube(store).load(), reference)
