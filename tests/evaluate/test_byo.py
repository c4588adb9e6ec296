"""Bring your own model and photos: a 1000-class model on a 4-class ImageNet-style folder (class maps), a forgotten
input normalisation (loud warning), folder labels that disagree with the model's classes (refused, issue 17 gap 2),
and clean-only evaluation.

The 1000-class model is plain torch with constructed weights: it averages the normalised image per channel and
scores each class by closeness to a colour prototype, so red / green / blue / grey photos land on the model classes
17 / 345 / 512 / 999 exactly when the ImageNet normalisation is applied — every expected prediction is known.
"""

from __future__ import annotations

import json
import textwrap
import warnings

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import robustviz
from robustviz.cli import main
from robustviz.cube.checks import CleanAccuracyWarning
from robustviz.data.shapes import make_shapes
from robustviz.evaluate import evaluate
from robustviz.models.zoo import ZOO_CLASS_NAMES
from robustviz.spec import EvaluationSpec
from robustviz.validation import InputError

COLOURS = {17: (0.9, 0.1, 0.1), 345: (0.1, 0.85, 0.15), 512: (0.1, 0.15, 0.9), 999: (0.5, 0.5, 0.5)}
WNIDS = [f"n{index:08d}" for index in range(1000)]

MODEL_SOURCE = textwrap.dedent('''
    import torch
    from torch import nn

    MEAN = torch.tensor([0.485, 0.456, 0.406])
    STD = torch.tensor([0.229, 0.224, 0.225])


    class ColourNet(nn.Module):
        """1000 classes: logit_k = -10·‖mean colour of the (normalised) image − prototype_k‖² + bias_k."""

        def __init__(self):
            super().__init__()
            self.features = nn.Conv2d(3, 3, 1)  # identity, so the model has a layer
            self.prototypes = nn.Parameter(torch.zeros(1000, 3))
            self.bias = nn.Parameter(torch.zeros(1000))

        def forward(self, x):
            colour = self.features(x).mean(dim=(2, 3))
            return -10 * ((colour[:, None, :] - self.prototypes[None]) ** 2).sum(-1) + self.bias


    def build(colours=None):
        model = ColourNet()
        with torch.no_grad():
            model.features.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            model.features.bias.zero_()
            generator = torch.Generator().manual_seed(0)
            model.prototypes.copy_(torch.randn(1000, 3, generator=generator) * 3)
            model.bias.fill_(-4.0)  # the 996 other classes never win near the 4 colours
            for index, rgb in (colours or {}).items():
                model.prototypes[int(index)] = (torch.tensor(rgb) - MEAN) / STD
                model.bias[int(index)] = 0.0
        return model
''')


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    (root / "colournet.py").write_text(MODEL_SOURCE)
    from robustviz.models.formats import import_object

    model = import_object(f"{root / 'colournet.py'}:build")(COLOURS)
    torch.save(model.state_dict(), root / "colournet.pt")
    photos = root / "photos"
    generator = np.random.default_rng(0)
    for index, rgb in COLOURS.items():
        folder = photos / WNIDS[index]
        folder.mkdir(parents=True)
        for k in range(2):
            pixels = np.clip(np.array(rgb) + generator.normal(0, 0.05, size=(72, 96, 3)), 0, 1)
            Image.fromarray((pixels * 255).round().astype(np.uint8)).save(folder / f"{k}.png")
    (root / "synsets.txt").write_text("".join(f"{wnid} class number {i}\n" for i, wnid in enumerate(WNIDS)))
    return root


def _spec(byo, *, class_map=None, normalize="imagenet", perturbations=("brightness",), **changes) -> dict:
    model = {"name": "file", "path": str(byo / "colournet.pt"), "architecture": f"{byo / 'colournet.py'}:build"}
    if normalize is not None:
        model["normalize"] = normalize
    dataset = {"name": "folder", "root": str(byo / "photos"), "resize": 64, "crop": 56}
    if class_map is not None:
        dataset["class_map"] = class_map
    spec = {"models": [model], "dataset": dataset, "n_samples": 8, "perturbations": list(perturbations),
            "severities": [1], "device": "cpu", "n_examples": 0}
    spec.update(changes)
    return spec


@pytest.mark.parametrize("form", ["wnid_file", "dict"])
def test_imagenet_subset_on_a_1000_class_model_uses_the_model_indices(byo, form):
    class_map = str(byo / "synsets.txt") if form == "wnid_file" else {WNIDS[i]: i for i in COLOURS}
    cube = evaluate(EvaluationSpec.from_yaml(yaml.safe_dump(_spec(byo, class_map=class_map))), progress=False)
    expected = np.repeat(sorted(COLOURS), 2)  # folders sorted by wnid = by model index here
    assert cube["label"].values.tolist() == expected.tolist()
    clean = cube.rv.clean()
    assert clean["pred"].values[0].tolist() == expected.tolist()  # full 1000-way argmax, model indices
    assert float(cube.rv.accuracy().sel(severity=0).values[0, 0]) == 1.0
    assert json.loads(cube.attrs["warnings"]) == []
    # short, path-free coordinates and dataset attr (the full spec, paths included, stays in attrs["spec"])
    for name in ("model", "perturbation", "family"):
        assert not any(str(byo) in str(value) for value in cube[name].values)
    assert str(byo) not in cube.attrs["dataset"] and cube.attrs["dataset"].startswith("folder[")
    names = cube.rv.class_names
    assert len(names) == 1000 if form == "wnid_file" else len(names) == 1000  # indices up to 999
    if form == "wnid_file":
        assert names[17] == "class number 17"


def test_folder_without_a_class_map_is_refused_on_a_wider_model(byo, tmp_path):
    with pytest.raises(InputError, match=r"has 1000 outputs but the dataset has 4 classes \(labelled by sorted "
                                         r"folder names\).*class_map"):
        evaluate(EvaluationSpec.from_dict(_spec(byo)), progress=False)
    with pytest.raises(InputError, match="has 1000 outputs"):
        evaluate(EvaluationSpec.from_dict(_spec(byo)), store=tmp_path / "cube.zarr", progress=False)
    assert not (tmp_path / "cube.zarr").exists()  # refused before the store was created


def test_forgotten_normalisation_is_a_loud_warning_everywhere(byo, tmp_path, capsys):
    spec = _spec(byo, class_map={WNIDS[i]: i for i in COLOURS}, normalize=None)
    with pytest.warns(CleanAccuracyWarning, match="declares no normalize"):
        cube = evaluate(EvaluationSpec.from_dict(spec), progress=False)
    clean = cube.rv.clean()
    accuracy = float(clean["correct"].values.mean())
    assert accuracy <= 0.25  # unnormalised inputs: at or below chance for 4 classes
    stored = json.loads(cube.attrs["warnings"])
    assert len(stored) == 1 and "normalize" in stored[0]
    with pytest.warns(CleanAccuracyWarning):
        table = cube.rv.summary()
    assert table.attrs["warnings"] == stored
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--store", str(tmp_path / "cube.zarr"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "!!! WARNING: model 'colournet'" in err and "normalize" in err
    reopened = robustviz.open_cube(tmp_path / "cube.zarr")
    assert json.loads(reopened.attrs["warnings"]) == stored  # persisted in the store


def test_clean_only_evaluation_keeps_clean_accuracy(byo):
    spec = _spec(byo, class_map={WNIDS[i]: i for i in COLOURS}, perturbations=(), methods=["saliency"],
                 n_examples=2)
    cube = evaluate(EvaluationSpec.from_dict(spec), progress=False)
    assert cube["correct"].shape == (1, 1, 1, 8)
    assert cube["perturbation"].values.tolist() == ["clean"] and cube["severity"].values.tolist() == [0]
    assert float(cube.rv.accuracy().values.mean()) == 1.0
    assert bool(cube["done"].values.all())
    assert np.isfinite(cube["example_attribution"].values.astype(np.float32)).all()
    cube.rv.validate()


def test_clean_only_run_from_the_cli(byo, tmp_path, capsys):
    spec = _spec(byo, class_map={WNIDS[i]: i for i in COLOURS}, perturbations=())
    path = tmp_path / "clean.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--store", str(tmp_path / "clean.zarr"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy on the clean images" in out and "colournet   1.000" in out


def test_clean_only_matches_a_direct_forward_pass():
    model = robustviz.models.create_model("smallcnn-standard")
    data = make_shapes(12, image_size=64)
    cube = evaluate(EvaluationSpec(models=["smallcnn-standard"], perturbations=[], n_samples=12,
                                   dataset={"name": "shapes", "image_size": 64}, device="cpu"), progress=False)
    with torch.no_grad():
        pred = model(data.images).argmax(1)
    assert cube["pred"].values[0, 0, 0].tolist() == pred.tolist()
    assert float(cube.rv.accuracy().values.item()) == float((pred == data.labels).float().mean())


def _shape_folder(root, count=16):
    data = make_shapes(count, image_size=64)
    for index, (image, label) in enumerate(zip(data.images, data.labels)):
        folder = root / ZOO_CLASS_NAMES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{index:03d}.png")
    return data


def test_folder_names_in_another_order_than_the_model_are_refused_then_mapped(tmp_path):
    """Issue 17 gap 2: the same 16 images used to score by sorted folder names (near 0.125) instead of ~1.0."""
    data = _shape_folder(tmp_path)
    spec = {"models": ["smallcnn-standard"], "dataset": {"name": "folder", "root": str(tmp_path)},
            "n_samples": 16, "perturbations": [], "device": "cpu"}
    with pytest.raises(InputError, match=r"orders its classes .* the labels would be wrong\. Give the dataset "
                                         r"class_map: \{circle: 0, crescent: 6"):
        evaluate(EvaluationSpec.from_dict(spec), progress=False)
    spec["dataset"]["class_map"] = {name: index for index, name in enumerate(ZOO_CLASS_NAMES)}
    cube = evaluate(EvaluationSpec.from_dict(spec), progress=False)
    reference = evaluate(EvaluationSpec(models=["smallcnn-standard"], perturbations=[], n_samples=16,
                                        dataset={"name": "shapes", "image_size": 64}, device="cpu"),
                         progress=False)
    assert sorted(cube["label"].values.tolist()) == sorted(data.labels.tolist())
    # same images (PNG round trip is lossless), same labels → the same accuracy as on the generated set
    assert float(cube.rv.accuracy().item()) == pytest.approx(float(reference.rv.accuracy().item()))
    assert float(cube.rv.accuracy().item()) > 0.5


def test_user_module_with_normalize_declared_in_the_spec(byo):
    from robustviz.models.formats import import_object

    network = import_object(f"{byo / 'colournet.py'}:build")(COLOURS).eval()
    spec = _spec(byo, class_map={WNIDS[i]: i for i in COLOURS})
    spec["models"] = [{"name": "mine", "normalize": "imagenet"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CleanAccuracyWarning)
        cube = evaluate(EvaluationSpec.from_dict(spec), models={"mine": network}, progress=False)
    assert float(cube.rv.accuracy().sel(severity=0).item()) == 1.0
