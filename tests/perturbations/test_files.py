"""Pre-corrupted data on disk: tiny fake ImageNet-C and CIFAR-10-C layouts written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import robustviz
from robustviz.perturbations.files import PrecomputedCorruption
from robustviz.rng import derive_seeds
from robustviz.validation import InputError


def _stored(severity: int, index: int, size: int = 8) -> np.ndarray:
    """A recognisable image: every pixel encodes (severity, index)."""
    return np.full((size, size, 3), 10 * severity + index, dtype=np.uint8)


@pytest.fixture()
def imagenet_root(tmp_path):
    # official archive nests corruptions in family folders: <root>/blur/glass_blur/<severity>/<class>/<image>
    classes = {"n02": ["b.png", "a.png"], "n01": ["z.png"]}  # sorted order: n01/z, n02/a, n02/b
    order = [("n01", "z.png"), ("n02", "a.png"), ("n02", "b.png")]
    for severity in range(1, 6):
        for cls, files in classes.items():
            folder = tmp_path / "blur" / "glass_blur" / str(severity) / cls
            folder.mkdir(parents=True)
            for name in files:
                Image.fromarray(_stored(severity, order.index((cls, name)))).save(folder / name)
    return tmp_path


@pytest.fixture()
def cifar_root(tmp_path):
    data = np.stack([_stored(severity, index) for severity in range(1, 6) for index in range(4)])
    np.save(tmp_path / "fog.npy", data)
    np.save(tmp_path / "labels.npy", np.tile(np.array([3, 1, 4, 1], dtype=np.uint8), 5))
    return tmp_path


def test_imagenet_c_layout_returns_stored_images_by_sample_id(imagenet_root):
    source = robustviz.create("perturbation", "precomputed", root=str(imagenet_root), corruption="glass_blur")
    assert source.needs_sample_ids and source.family == "blur" and source.name == "glass_blur"
    clean = torch.zeros(2, 3, 8, 8)
    out = source(clean, 4, seeds=derive_seeds(0, [2, 0]), sample_ids=torch.tensor([2, 0]))
    assert torch.allclose(out[:, 0, 0, 0] * 255, torch.tensor([42.0, 40.0]))
    assert torch.equal(source(clean, 0, seeds=derive_seeds(0, [2, 0]), sample_ids=[2, 0]), clean)
    assert source.labels().tolist() == [0, 1, 1]


def test_cifar_layout_rows_follow_severity_blocks(cifar_root):
    source = PrecomputedCorruption(cifar_root, "fog", layout="cifar-10-c")
    assert source.count() == 4 and source.labels().tolist() == [3, 1, 4, 1]
    out = source(torch.zeros(3, 3, 8, 8), 5, seeds=derive_seeds(0, [1, 3, 0]), sample_ids=[1, 3, 0])
    assert torch.allclose(out[:, :, 4, 4] * 255, torch.tensor([51.0, 53.0, 50.0]).reshape(-1, 1).expand(-1, 3))
    grey = source(torch.zeros(1, 1, 8, 8), 2, seeds=derive_seeds(0, [1]), sample_ids=[1])
    assert grey.shape == (1, 1, 8, 8) and float(grey[0, 0, 0, 0]) * 255 == pytest.approx(21.0, abs=1e-3)


def test_clear_errors(imagenet_root, cifar_root):
    source = PrecomputedCorruption(cifar_root, "fog", layout="cifar-10-c")
    with pytest.raises(InputError, match="sample_ids"):
        source(torch.zeros(1, 3, 8, 8), 1, seeds=derive_seeds(0, [0]))
    with pytest.raises(InputError, match="outside"):
        source(torch.zeros(1, 3, 8, 8), 1, seeds=derive_seeds(0, [9]), sample_ids=[9])
    with pytest.raises(InputError, match="shape"):
        source(torch.zeros(1, 3, 16, 16), 1, seeds=derive_seeds(0, [0]), sample_ids=[0])
    with pytest.raises(InputError, match="not found"):
        PrecomputedCorruption(cifar_root, "snow", layout="cifar-10-c")
    with pytest.raises(InputError, match="no folder"):
        PrecomputedCorruption(imagenet_root, "snow")
    with pytest.raises(InputError, match="layout"):
        PrecomputedCorruption(imagenet_root, "glass_blur", layout="tiny-c")
