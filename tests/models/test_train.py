"""train_zoo in a tiny configuration: it runs, writes loadable weights and a manifest, and is deterministic."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from robustviz.models import build_architecture
from robustviz.models.train import train_zoo
from robustviz.models.zoo import ZOO_ARCHITECTURE_KWARGS
from robustviz.validation import InputError

TINY = dict(epochs=1, n_train=24, n_test=16, batch_size=12, progress=False, threads=1,
            names=["smallcnn-standard", "tinyvit-noise"])


def _load(path):
    return torch.load(path, weights_only=True, map_location="cpu")


def test_train_zoo_tiny_run_writes_loadable_weights_and_is_deterministic(tmp_path):
    accuracies = train_zoo(tmp_path / "a", seed=5, **TINY)
    assert set(accuracies) == {"smallcnn-standard", "tinyvit-noise"}
    assert all(0.0 <= value <= 1.0 for value in accuracies.values())
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["training"]["epochs"] == 1 and manifest["training"]["seed"] == 5
    for name, entry in manifest["models"].items():
        path = tmp_path / "a" / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["test_accuracy"] == accuracies[name]
        architecture = name.split("-")[0]
        network = build_architecture(architecture, **ZOO_ARCHITECTURE_KWARGS[architecture])
        network.load_state_dict(_load(path), strict=True)
        assert all(value.dtype in (torch.float16, torch.int64) for value in _load(path).values())

    train_zoo(tmp_path / "b", seed=5, **TINY)
    other_seed = train_zoo(tmp_path / "c", seed=6, **TINY)
    assert other_seed  # ran
    for name in accuracies:
        first, again = _load(tmp_path / "a" / f"{name}.pt"), _load(tmp_path / "b" / f"{name}.pt")
        assert all(torch.equal(first[key], again[key]) for key in first)
        different = _load(tmp_path / "c" / f"{name}.pt")
        assert not all(torch.equal(first[key], different[key]) for key in first)


def test_train_zoo_rejects_bad_options(tmp_path):
    with pytest.raises(InputError, match="unknown zoo model names"):
        train_zoo(tmp_path, names=["bignet-standard"], progress=False)
    with pytest.raises(InputError, match="unknown training options"):
        train_zoo(tmp_path, learning_rat=0.1, progress=False)
    with pytest.raises(InputError, match=">= 1"):
        train_zoo(tmp_path, epochs=0, progress=False)
