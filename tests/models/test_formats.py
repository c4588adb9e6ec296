"""Model files in every form, evaluated through a YAML spec: state dict + architecture import string, TorchScript
and torch.export. The reference is the same network passed as an nn.Module object (the form that always worked);
methods that cannot run on a form are refused before any work with an error naming those that can."""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest
import torch

from robustviz.evaluate import evaluate
from robustviz.models import NormalizedModel, load_model_file
from robustviz.models.formats import import_object, sniff_format
from robustviz.models.wrappers import IMAGENET_MEAN, IMAGENET_STD
from robustviz.spec import EvaluationSpec
from robustviz.validation import InputError

ARCHITECTURE = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, classes=8):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                                          nn.ReLU())
            self.fc = nn.Linear(8, classes)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3)))


    def build(classes=8):
        torch.manual_seed(0)
        return Net(classes)
''')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_files")
    (root / "arch.py").write_text(ARCHITECTURE)
    build = import_object(f"{root / 'arch.py'}:build")
    network = build().eval()
    torch.save(network.state_dict(), root / "weights.pt")
    torch.jit.save(torch.jit.script(network), root / "scripted.pt")
    example = torch.rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(network, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        torch.export.save(program, root / "exported.pt2")
        fixed = torch.export.export(network, (example,))
        torch.export.save(fixed, root / "fixed_batch.pt2")
    return {"root": root, "network": network, "arch": f"{root / 'arch.py'}:build"}


def _spec(model: dict, methods: list) -> EvaluationSpec:
    import yaml

    text = yaml.safe_dump({
        "models": [model], "dataset": {"name": "shapes", "image_size": 16}, "n_samples": 4,
        "perturbations": ["gaussian_noise"], "severities": [2], "methods": methods, "n_examples": 4,
        "batch_size": 4, "device": "cpu", "seed": 3})
    return EvaluationSpec.from_yaml(text)


def _reference(files, methods, cam_layer=None):
    network = files["network"]
    wrapped = NormalizedModel(network, IMAGENET_MEAN, IMAGENET_STD,
                              cam_layer=None if cam_layer is None else network.get_submodule(cam_layer))
    wrapped.class_names, wrapped.num_classes = None, 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(_spec({"name": "mine"}, methods), models={"mine": wrapped}, progress=False)


def _assert_same_cube(cube, reference):
    assert np.array_equal(cube["pred"].values, reference["pred"].values)
    np.testing.assert_allclose(cube["prob_true"].values, reference["prob_true"].values, atol=1e-5)
    if "example_attribution" in reference:
        got = cube["example_attribution"].values.astype(np.float32)
        want = reference["example_attribution"].values.astype(np.float32)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4 * np.abs(want).max())


def test_formats_are_told_apart_by_content(files):
    root = files["root"]
    assert sniff_format(root / "weights.pt") == "state_dict"
    assert sniff_format(root / "scripted.pt") == "torchscript"
    assert sniff_format(root / "exported.pt2") == "export"


def test_state_dict_with_architecture_string_runs_every_method(files):
    methods = ["saliency", "grad_cam", "guided_backprop"]
    model = {"name": "file", "path": str(files["root"] / "weights.pt"), "architecture": files["arch"],
             "normalize": "imagenet", "cam_layer": "features"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = evaluate(_spec(model, methods), progress=False)
    assert list(cube["model"].values) == ["weights"]  # named by the file, no path in the coordinate
    _assert_same_cube(cube, _reference(files, methods, cam_layer="features"))


def test_torchscript_runs_hook_free_methods_and_names_them_for_the_rest(files):
    methods = ["saliency", {"name": "rise", "n_masks": 8, "batch_masks": 8}]
    model = {"name": "file", "path": str(files["root"] / "scripted.pt"), "normalize": "imagenet"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = evaluate(_spec(model, methods), progress=False)
    _assert_same_cube(cube, _reference(files, methods))
    with pytest.raises(InputError, match=r"TorchScript model: grad_cam cannot run on it .*Methods that do: .*"
                                         r"integrated_gradients.*rise.*saliency"):
        evaluate(_spec(model, ["saliency", "grad_cam"]), progress=False)


def test_scripted_module_passed_as_object_is_refused_by_name(files):
    scripted = torch.jit.load(str(files["root"] / "scripted.pt"))
    with pytest.raises(InputError, match="gradcam_plus_plus cannot run on it"):
        evaluate(_spec({"name": "mine"}, ["gradcam_plus_plus"]), models={"mine": scripted}, progress=False)


def test_exported_program_runs_cams_through_unflatten(files):
    methods = ["saliency", "grad_cam", "gradcam_plus_plus"]
    model = {"name": "file", "path": str(files["root"] / "exported.pt2"), "normalize": "imagenet",
             "cam_layer": "features"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = evaluate(_spec(model, methods), progress=False)
    _assert_same_cube(cube, _reference(files, methods, cam_layer="features"))
    with pytest.raises(InputError, match=r"torch.export program: guided_backprop cannot run on it"):
        evaluate(_spec(model, ["guided_backprop"]), progress=False)


def test_loader_errors_say_what_to_do(files):
    root = files["root"]
    with pytest.raises(InputError, match="fixed batch size of 2.*dynamic_shapes"):
        load_model_file(root / "fixed_batch.pt2")
    with pytest.raises(InputError, match="needs architecture="):
        load_model_file(root / "weights.pt")
    with pytest.raises(InputError, match="holds its own architecture"):
        load_model_file(root / "scripted.pt", architecture=files["arch"])
    with pytest.raises(InputError, match="has no attribute 'nothing'"):
        load_model_file(root / "weights.pt", architecture=f"{root / 'arch.py'}:nothing")
    with pytest.raises(InputError, match="must look like 'package.module:factory'"):
        import_object("no_colon")
    with pytest.raises(InputError, match="no hookable layers"):
        load_model_file(root / "scripted.pt", cam_layer="features")
    with pytest.raises(InputError, match="unknown normalize 'imagenette'"):
        load_model_file(root / "scripted.pt", normalize="imagenette")


def test_normalize_forms_and_declaration(files):
    root = files["root"]
    images = torch.rand(3, 3, 16, 16)
    network = files["network"]
    declared = load_model_file(root / "scripted.pt", normalize={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.25]})
    expected = network((images - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
                       / torch.tensor([0.2, 0.2, 0.25]).view(1, 3, 1, 1))
    with torch.no_grad():
        assert torch.allclose(declared(images), expected, atol=1e-5)
    assert declared.normalization_declared and declared.num_classes == 8
    plain = load_model_file(root / "exported.pt2")
    with torch.no_grad():
        assert torch.allclose(plain(images), network(images), atol=1e-5)
    assert not plain.normalization_declared and plain.normalization == "none"
