"""ImageFolder loading, in-memory tensors, and scikit-image's sample photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import robustviz
from robustviz.data import from_tensors, load_image_folder
from robustviz.data.skimage_samples import SKIMAGE_SAMPLE_NAMES, skimage_samples
from robustviz.validation import InputError


def _write_tree(root, sizes=((12, 10),) * 3, classes=("cat", "ant")):
    """PNG files root/<class>/<i>.png with known random pixels; returns {(class, i): uint8 array}."""
    generator = np.random.default_rng(0)
    written = {}
    for name in classes:
        (root / name).mkdir(parents=True)
        for index, (height, width) in enumerate(sizes):
            array = generator.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"{index}.png")
            written[name, index] = array
    return written


def test_folder_round_trip_is_exact(tmp_path):
    written = _write_tree(tmp_path)
    data = load_image_folder(tmp_path)
    assert data.class_names == ["ant", "cat"]  # sorted directory names
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack([written["ant", i] for i in range(3)] + [written["cat", i] for i in range(3)])
    assert torch.equal(data.images, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 255)


def test_folder_resizes_mixed_sizes_only_when_asked(tmp_path):
    _write_tree(tmp_path, sizes=((12, 10), (20, 16)))
    with pytest.raises(InputError, match="different sizes"):
        load_image_folder(tmp_path)
    data = load_image_folder(tmp_path, image_size=8)
    assert data.images.shape == (4, 3, 8, 8)
    assert float(data.images.min()) >= 0 and float(data.images.max()) <= 1


def test_folder_grey_and_rgba_images_become_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((4, 4), 200, np.uint8), mode="L").save(tmp_path / "a" / "grey.png")
    Image.fromarray(np.full((4, 4, 4), 100, np.uint8), mode="RGBA").save(tmp_path / "a" / "rgba.png")
    data = load_image_folder(tmp_path)
    assert data.images.shape == (2, 3, 4, 4)
    assert torch.allclose(data.images[0], torch.full((3, 4, 4), 200 / 255))


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="no class sub-directories"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="contains no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "empty" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(InputError, match="cannot read image file .*broken.png"):
        load_image_folder(tmp_path)


def test_folder_registry_entry(tmp_path):
    _write_tree(tmp_path)
    data = robustviz.registry.create("dataset", "folder", root=tmp_path, n_samples=4)
    assert len(data) == 4 and data.class_names == ["ant", "cat"]
    with pytest.raises(InputError, match="holds only 6"):
        robustviz.registry.create("dataset", "folder", root=tmp_path, n_samples=7)


def test_from_tensors_uint8_channels_last_and_float():
    array = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    data = from_tensors(array, [1, 0])
    assert data.images.shape == (2, 3, 3, 4)
    assert float(data.images[1, 2, 0, 1]) == pytest.approx(array[1, 0, 1, 2] / 255)
    assert data.class_names == ["0", "1"]
    floats = from_tensors(torch.rand(3, 3, 5, 5), torch.tensor([0, 2, 1]), class_names=["a", "b", "c"])
    assert floats.class_names == ["a", "b", "c"] and floats.images.dtype == torch.float32


@pytest.mark.parametrize("images, labels, message", [
    (torch.full((1, 3, 4, 4), float("nan")), [0], "NaN"),
    (torch.full((1, 3, 4, 4), 2.0), [0], r"\[0, 1\]"),
    (torch.rand(1, 4, 4, 3), [0], "channels last"),
    (torch.rand(1, 3, 4, 4), [0, 1], "one label per image"),
    (torch.rand(1, 3, 4, 4), [0.5], "integer class indices"),
    (np.zeros((1, 4, 4, 5), np.uint8), [0], "1 or 3 channels last"),
    (torch.zeros((1, 3, 4, 4), dtype=torch.int32), [0], "uint8"),
])
def test_from_tensors_rejects_bad_input(images, labels, message):
    with pytest.raises(InputError, match=message):
        from_tensors(images, labels)


def test_from_tensors_label_outside_class_names():
    with pytest.raises(InputError, match="must lie in"):
        from_tensors(torch.rand(2, 3, 4, 4), [0, 3], class_names=["a", "b"])


def test_skimage_samples_match_independent_resize():
    from skimage import data as skdata
    from skimage.transform import resize

    photos = skimage_samples(len(SKIMAGE_SAMPLE_NAMES) + 2, image_size=32)
    assert photos.images.shape == (len(SKIMAGE_SAMPLE_NAMES) + 2, 3, 32, 32)
    assert photos.class_names == list(SKIMAGE_SAMPLE_NAMES)
    assert photos.labels.tolist() == list(range(len(SKIMAGE_SAMPLE_NAMES))) + [0, 1]  # cyclic repeat
    assert torch.equal(photos.images[-2], photos.images[0])
    reference = resize(skdata.astronaut(), (32, 32), anti_aliasing=True)  # floats in [0, 1], H×W×3
    ours = photos.images[SKIMAGE_SAMPLE_NAMES.index("astronaut")].permute(1, 2, 0).numpy()
    assert np.abs(ours - reference).mean() < 0.03
    grey = photos.images[SKIMAGE_SAMPLE_NAMES.index("camera")]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_skimage_registry_entry_truncates():
    data = robustviz.registry.create("dataset", "skimage", n_samples=3, image_size=16)
    assert data.labels.tolist() == [0, 1, 2] and data.images.shape == (3, 3, 16, 16)
