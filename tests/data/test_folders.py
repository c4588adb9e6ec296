"""ImageFolder loading, in-memory tensors, and scikit-image's sample photos."""

from __future__ import annotations

import json

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


# -- lazy reading, ImageNet transforms, subsets and class maps -------------------------------------------------------
def _count_opens(monkeypatch):
    import PIL.Image

    opened = []
    original = PIL.Image.open

    def counting(path, *args, **kwargs):
        opened.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", counting)
    return opened


def test_folder_loader_opens_only_the_chosen_images(tmp_path, monkeypatch):
    _write_tree(tmp_path, sizes=((12, 10),) * 10, classes=("a", "b", "c"))
    opened = _count_opens(monkeypatch)
    data = robustviz.registry.create("dataset", "folder", root=tmp_path, n_samples=4)
    assert len(opened) == 4 and len(data) == 4  # 30 files listed, 4 decoded
    assert data.sample_ids.tolist() == [0, 1, 2, 3]
    opened.clear()
    balanced = robustviz.registry.create("dataset", "folder", root=tmp_path, n_samples=5, subset="balanced")
    assert len(opened) == 5
    # classes in turn: a0, b0, c0, a1, b1 → positions 0, 10, 20, 1, 11 in the sorted listing (ids kept)
    assert balanced.sample_ids.tolist() == [0, 1, 10, 11, 20]
    assert balanced.labels.tolist() == [0, 0, 1, 1, 2]


def test_resize_and_centre_crop_match_explicit_pil_reference(tmp_path):
    generator = np.random.default_rng(3)
    (tmp_path / "x").mkdir()
    tall = generator.integers(0, 256, size=(300, 257, 3), dtype=np.uint8)  # H > W
    wide = generator.integers(0, 256, size=(231, 340, 3), dtype=np.uint8)  # W > H
    Image.fromarray(tall).save(tmp_path / "x" / "0.png")
    Image.fromarray(wide).save(tmp_path / "x" / "1.png")
    data = load_image_folder(tmp_path, resize=256, crop=224)
    assert data.images.shape == (2, 3, 224, 224)
    # reference, written out: shorter side 256 (torchvision: long = int(256 * long / short)), bilinear PIL resize,
    # crop offsets round((size - 224) / 2)
    for index, (array, new_size) in enumerate(((tall, (256, int(256 * 300 / 257))), (wide, (int(256 * 340 / 231),
                                                                                            256)))):
        resized = np.asarray(Image.fromarray(array).resize(new_size, Image.BILINEAR))
        top, left = int(round((resized.shape[0] - 224) / 2)), int(round((resized.shape[1] - 224) / 2))
        expected = resized[top:top + 224, left:left + 224]
        assert torch.equal(data.images[index], torch.from_numpy(expected.copy()).permute(2, 0, 1).float() / 255)
    with pytest.raises(InputError, match="smaller than crop 400×400"):
        load_image_folder(tmp_path, crop=400)


def test_class_map_forms(tmp_path):
    _write_tree(tmp_path, classes=("n02", "n01"))  # sorted: n01 (label 0), n02 (label 1)
    by_dict = load_image_folder(tmp_path, class_map={"n01": 7, "n02": 3})
    assert by_dict.labels.tolist() == [7, 7, 7, 3, 3, 3]
    assert by_dict.metadata["label_space"] == "model" and by_dict.class_names[7] == "n01"
    by_list = load_image_folder(tmp_path, class_map=["a", "n02", "b", "n01"])
    assert by_list.labels.tolist() == [3, 3, 3, 1, 1, 1] and len(by_list.class_names) == 4
    synsets = tmp_path.parent / f"{tmp_path.name}_synsets.txt"
    synsets.write_text("n00 zero\nn01 tench, Tinca tinca\nn02 goldfish\n")
    by_file = load_image_folder(tmp_path, class_map=synsets)
    assert by_file.labels.tolist() == [1, 1, 1, 2, 2, 2] and by_file.class_names == ["zero", "tench, Tinca tinca",
                                                                                      "goldfish"]
    index_json = tmp_path.parent / f"{tmp_path.name}_index.json"
    index_json.write_text(json.dumps({"0": ["n02", "goldfish"], "1": ["n09", "x"], "2": ["n01", "tench"]}))
    assert load_image_folder(tmp_path, class_map=index_json).labels.tolist() == [2, 2, 2, 0, 0, 0]
    assert load_image_folder(tmp_path, class_map=[5, 6]).labels.tolist() == [5, 5, 5, 6, 6, 6]
    with pytest.raises(InputError, match=r"no entry for the dataset classes \['n02'\]"):
        load_image_folder(tmp_path, class_map={"n01": 1})
    with pytest.raises(InputError, match=r"\['n01'\] are not in the class_map's 2 model classes"):
        load_image_folder(tmp_path, class_map=["n02", "n03"])
    with pytest.raises(InputError, match="same model index"):
        load_image_folder(tmp_path, class_map={"n01": 1, "n02": 1})
    with pytest.raises(InputError, match="one model index per class"):
        load_image_folder(tmp_path, class_map=[1, 2, 3])
