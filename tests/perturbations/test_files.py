"""Pre-corrupted data on disk: tiny fake ImageNet-C and CIFAR-10-C layouts written in tmp_path."""

from __future__ import annotations

import json

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


# -- whole cubes: files written from robustviz's own deterministic corruptions give the on-the-fly cube ---------------
DETERMINISTIC = ("contrast", "brightness")


class _TwoClassNet(torch.nn.Module):
    """A fixed 2-class model: dark images are class 0, bright ones class 1 (threshold 0.32 on the mean pixel), plus
    a small random convolutional term; smooth in the pixels, so uint8 storage moves probabilities by < 1e-2."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)
        with torch.no_grad():
            for parameter in self.conv.parameters():
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))

    def forward(self, images):
        score = 20 * (images.mean(dim=(1, 2, 3)) - 0.32)
        return torch.stack([-score, score], 1) + torch.relu(self.conv(images)).mean(dim=(2, 3))


def _clean_folder(root, size=32):
    """2 classes × 3 photos-like images (smooth gradients + texture), PNG, in ImageNet val layout."""
    generator = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for c, wnid in enumerate(("n01440764", "n01443537")):
        (root / wnid).mkdir(parents=True)
        for k in range(3):
            base = np.stack([yy, xx, (yy + xx) / 2], -1) * (0.5 + 0.25 * c) + generator.uniform(0, 0.04, (size, size, 3))
            Image.fromarray((np.clip(base, 0, 1) * 255).round().astype(np.uint8)).save(root / wnid / f"{k}.png")


def _write_corrupted(clean_data, out_root, layout, suffix=".png"):
    """Apply robustviz's corruption to the clean images and store them in the benchmark's layout (uint8)."""
    from robustviz.data.folders import list_image_folder

    for name in DETERMINISTIC:
        corruption = robustviz.create("perturbation", name)
        stored = []
        for severity in range(1, 6):
            seeds = derive_seeds(0, clean_data.sample_ids, "perturbation", name, severity)
            images = corruption(clean_data.images, severity, seeds=seeds)
            arrays = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
            stored.append(arrays)
            if layout == "imagenet-c":
                files, _, _ = list_image_folder(clean_data.metadata["root"])
                for array, sample in zip(arrays, clean_data.sample_ids.tolist()):
                    target = out_root / name / str(severity) / files[sample].parent.name
                    target.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(array).save(target / (files[sample].stem + suffix), quality=95)
        if layout == "cifar-10-c":
            np.save(out_root / f"{name}.npy", np.concatenate(stored))
    if layout == "cifar-10-c":
        np.save(out_root / "labels.npy", np.tile(clean_data.labels.numpy().astype(np.uint8), 5))


def _cubes(data, stored_root, layout, dataset=None):
    from robustviz.evaluate import evaluate
    from robustviz.spec import EvaluationSpec

    common = dict(models=["net"], n_samples=len(data), severities=[1, 2, 3, 4, 5], device="cpu", n_examples=0,
                  dataset=dataset or "tensors")
    model = {"net": _TwoClassNet().eval()}
    passed = None if dataset else data
    on_the_fly = evaluate(EvaluationSpec(perturbations=list(DETERMINISTIC), **common), data=passed, models=model,
                          progress=False)
    files = [{"name": "precomputed", "root": str(stored_root), "corruption": name, "layout": layout}
             for name in DETERMINISTIC]
    from_files = evaluate(EvaluationSpec(perturbations=files, **common), data=passed, models=model, progress=False)
    return on_the_fly, from_files


def _assert_same(on_the_fly, from_files, atol):
    assert from_files["perturbation"].values.tolist() == list(DETERMINISTIC)  # named by corruption
    assert from_files["family"].values.tolist() == ["digital", "weather"]
    sources = json.loads(from_files.attrs["perturbation_sources"])
    assert sources["contrast"].startswith("precomputed files")
    assert np.array_equal(from_files["label"].values, on_the_fly["label"].values)
    assert float(on_the_fly.rv.accuracy().sel(severity=0).mean()) == 1.0  # the model separates the clean images
    assert len(np.unique(on_the_fly["pred"].values)) == 2
    np.testing.assert_allclose(from_files["prob_true"].values, on_the_fly["prob_true"].values, atol=atol)
    agree = (from_files["pred"].values == on_the_fly["pred"].values).mean()
    assert agree >= 0.95
    # issue 17 gap 1: corruption errors against the AlexNet table work on the file-based cube
    ce_files = from_files.rv.corruption_error()
    ce_fly = on_the_fly.rv.corruption_error()
    assert ce_files["perturbation"].values.tolist() == list(DETERMINISTIC)
    if agree == 1.0:
        np.testing.assert_allclose(ce_files.values, ce_fly.values)


def test_imagenet_c_layout_gives_the_on_the_fly_cube(tmp_path):
    """PNG files (lossless): predictions equal, probabilities within uint8 quantisation (atol 5e-3)."""
    from robustviz.data.folders import folder_dataset

    _clean_folder(tmp_path / "val")
    dataset = {"name": "folder", "root": str(tmp_path / "val"), "n_samples": 6}
    data = folder_dataset(tmp_path / "val")
    _write_corrupted(data, tmp_path / "imagenet-c", "imagenet-c")
    on_the_fly, from_files = _cubes(data, tmp_path / "imagenet-c", "imagenet-c",
                                    dataset={"name": "folder", "root": dataset["root"]})
    _assert_same(on_the_fly, from_files, atol=5e-3)
    assert np.array_equal(from_files["pred"].values, on_the_fly["pred"].values)


def test_imagenet_c_jpeg_files_load_within_jpeg_loss(tmp_path):
    """JPEG files written by PIL (quality 95): the stored images are within JPEG loss of the on-the-fly ones
    (mean |Δ| < 2/255), so the cube agrees within atol 3e-2 on probabilities."""
    from robustviz.data.folders import folder_dataset

    _clean_folder(tmp_path / "val")
    data = folder_dataset(tmp_path / "val")
    _write_corrupted(data, tmp_path / "imagenet-c", "imagenet-c", suffix=".JPEG")
    source = PrecomputedCorruption(tmp_path / "imagenet-c", "contrast")
    stored = source(data.images, 3, seeds=derive_seeds(0, data.sample_ids), sample_ids=data.sample_ids)
    computed = robustviz.create("perturbation", "contrast")(data.images, 3, seeds=derive_seeds(0, data.sample_ids))
    assert float((stored - computed).abs().mean()) < 2 / 255
    on_the_fly, from_files = _cubes(data, tmp_path / "imagenet-c", "imagenet-c",
                                    dataset={"name": "folder", "root": str(tmp_path / "val")})
    _assert_same(on_the_fly, from_files, atol=3e-2)


def test_cifar_10_c_layout_gives_the_on_the_fly_cube(tmp_path):
    from robustviz.data import from_tensors

    generator = np.random.default_rng(2)
    brightness = np.array([60, 120] * 4).reshape(8, 1, 1, 1)  # dark class 0, bright class 1
    images = np.clip(brightness + generator.integers(-40, 40, size=(8, 32, 32, 3)), 0, 255).astype(np.uint8)
    data = from_tensors(images, [0, 1] * 4, class_names=["airplane", "automobile"])
    _write_corrupted(data, tmp_path, "cifar-10-c")
    on_the_fly, from_files = _cubes(data, tmp_path, "cifar-10-c")
    _assert_same(on_the_fly, from_files, atol=5e-3)
    assert np.array_equal(from_files["pred"].values, on_the_fly["pred"].values)
