"""The tiny zoo: contract (shape, [0, 1] input, cam_layer), shipped weights (accuracy, size, hashes, safe loading)."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest
import torch
import torch.nn.functional as F

import robustviz
from robustviz.data import SHAPE_CLASSES, make_shapes
from robustviz.models import ZOO_CLASS_NAMES, ZOO_NAMES, NormalizedModel, build_architecture, create_model
from robustviz.models.zoo import ZOO_ARCHITECTURE_KWARGS, ZOO_MEAN, ZOO_STD
from robustviz.validation import InputError

WEIGHTS = resources.files("robustviz.models") / "weights"


@pytest.fixture(scope="module")
def zoo():
    return {name: robustviz.registry.create("model", name) for name in ZOO_NAMES}


@pytest.fixture(scope="module")
def held_out():
    return make_shapes(512, image_size=64, seed=0, split="test")


def test_zoo_names_are_registered():
    assert set(ZOO_NAMES) <= set(robustviz.registry.list_names("model"))
    assert set(ZOO_NAMES) == {f"{a}-{r}" for a in ("smallcnn", "tinyresnet", "tinyvit") for r in ("standard", "noise")}


def test_zoo_class_names_match_the_dataset():
    assert ZOO_CLASS_NAMES == SHAPE_CLASSES
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    assert manifest["class_names"] == list(SHAPE_CLASSES)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_output_shape_eval_mode_and_metadata(zoo, name):
    model = zoo[name]
    assert isinstance(model, NormalizedModel) and not model.training
    assert model.class_names == list(SHAPE_CLASSES) and model.num_classes == len(SHAPE_CLASSES)
    with torch.no_grad():
        for size in (32, 64, 224):
            assert model(torch.rand(2, 3, size, size)).shape == (2, len(SHAPE_CLASSES))


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_model_takes_unit_range_images_and_normalises_inside(zoo, name):
    """The wrapper computes inner((x - mean) / std) — checked against the formula on the inner network."""
    model, images = zoo[name], torch.rand(3, 3, 64, 64)
    mean, std = torch.tensor(ZOO_MEAN).view(1, 3, 1, 1), torch.tensor(ZOO_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(images), model.model((images - mean) / std), atol=1e-5)
    with pytest.raises(InputError, match="N×3×H×W"):
        model(torch.rand(3, 64, 64, 3))


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_cam_layer_is_the_spatial_map_the_head_pools(zoo, name):
    """cam_layer is a submodule; its output is N×C×h×w (h = H/8) and the logits are head(mean over the map)."""
    model = zoo[name]
    assert any(module is model.cam_layer for module in model.modules())
    captured = []
    handle = model.cam_layer.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        with torch.no_grad():
            logits = model(torch.rand(2, 3, 64, 64))
    finally:
        handle.remove()
    (feature_map,) = captured
    assert feature_map.ndim == 4 and feature_map.shape[0] == 2 and feature_map.shape[-2:] == (8, 8)
    with torch.no_grad():
        assert torch.allclose(model.model.head(feature_map.mean(dim=(2, 3))), logits, atol=1e-5)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_held_out_accuracy_at_least_90_percent(zoo, held_out, name):
    with torch.no_grad():
        predictions = torch.cat([zoo[name](held_out.images[i:i + 256]).argmax(1) for i in range(0, 512, 256)])
    accuracy = float((predictions == held_out.labels).float().mean())
    assert accuracy >= 0.90, f"{name}: {accuracy:.3f}"


def test_noise_trained_models_resist_noise_better(zoo, held_out):
    """Gaussian-noise augmentation should pay off under σ = 0.2 noise (seeded, same noise for all models)."""
    generator = torch.Generator().manual_seed(0)
    noisy = (held_out.images + 0.2 * torch.randn(held_out.images.shape, generator=generator)).clamp(0, 1)
    accuracy = {}
    with torch.no_grad():
        for name, model in zoo.items():
            accuracy[name] = float((model(noisy).argmax(1) == held_out.labels).float().mean())
    better = [accuracy[f"{a}-noise"] > accuracy[f"{a}-standard"] for a in ("smallcnn", "tinyresnet", "tinyvit")]
    assert sum(better) >= 2, accuracy


def test_shipped_weights_are_small_and_match_manifest_hashes():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    total = 0
    for name in ZOO_NAMES:
        entry = manifest["models"][name]
        payload = (WEIGHTS / entry["file"]).read_bytes()
        total += len(payload)
        assert hashlib.sha256(payload).hexdigest() == entry["sha256"], name
        assert entry["test_accuracy"] >= 0.90
    assert total <= 5 * 1024 * 1024


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_weights_load_with_weights_only_into_the_architecture(name):
    with (WEIGHTS / f"{name}.pt").open("rb") as handle:
        state = torch.load(handle, weights_only=True, map_location="cpu")
    architecture = name.split("-")[0]
    network = build_architecture(architecture, **ZOO_ARCHITECTURE_KWARGS[architecture])
    result = network.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_untrained_model_and_device_argument():
    model = create_model("smallcnn-standard", pretrained=False, device="cpu")
    assert not model.training and next(model.parameters()).device.type == "cpu"
    with pytest.raises(InputError, match="Did you mean 'smallcnn-standard'"):
        create_model("smallcnn-standart")


def test_vit_interpolates_position_embeddings():
    """At 128 px the ViT sees a 16×16 token grid; its position embeddings are the bicubic upsampling of the
    trained 8×8 grid (checked against F.interpolate directly)."""
    vit = build_architecture("tinyvit", **ZOO_ARCHITECTURE_KWARGS["tinyvit"]).eval()
    images = torch.rand(1, 3, 128, 128)
    captured = []
    handle = vit.blocks[0].register_forward_hook(lambda module, args, output: captured.append(args[0]))
    try:
        with torch.no_grad():
            vit(images)
    finally:
        handle.remove()
    with torch.no_grad():
        patches = vit.embed(images)
        position = F.interpolate(vit.position, size=(16, 16), mode="bicubic", align_corners=False)
        expected = (patches + position).flatten(2).transpose(1, 2)
    assert captured[0].shape == (1, 256, 64) and torch.allclose(captured[0], expected, atol=1e-6)
