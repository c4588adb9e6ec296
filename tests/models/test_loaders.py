"""Loading the user's own models (state dicts in tmp_path; no downloads) and the missing-extra messages."""

from __future__ import annotations

import sys
from importlib import resources

import pytest
import torch
from torch import nn

from robustviz.models import NormalizedModel, attach_metadata, create_model
from robustviz.models.loaders import guess_cam_layer, load_module, load_robustbench, load_timm, load_torchvision
from robustviz.validation import InputError


class TinyNet(nn.Module):
    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, classes)

    def forward(self, images):
        return self.fc(self.body(self.stem(images)).mean(dim=(2, 3)))


@pytest.mark.parametrize("loader, module", [
    (lambda: load_torchvision("resnet18"), "torchvision"),
    (lambda: load_timm("resnet18"), "timm"),
    (lambda: load_robustbench("Standard"), "robustbench"),
])
def test_missing_extra_names_the_pip_install_line(monkeypatch, loader, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail even where it is installed
    with pytest.raises(ImportError, match=r'pip install "robustviz\[models\]"') as info:
        loader()
    assert module in str(info.value)


def test_load_module_from_state_dict_file(tmp_path):
    torch.manual_seed(0)
    reference = TinyNet().eval()
    path = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), path)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    model = load_module(path, architecture=TinyNet, mean=mean, std=std, cam_layer="body")
    assert isinstance(model, NormalizedModel) and not model.training
    assert model.cam_layer is model.model.body
    assert model.num_classes == 5 and model.class_names == ["0", "1", "2", "3", "4"]
    images = torch.rand(2, 3, 16, 16)
    expected = reference((images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    with torch.no_grad():
        assert torch.allclose(model(images), expected, atol=1e-6)


def test_load_module_unwraps_checkpoints_and_data_parallel_prefixes(tmp_path):
    reference = TinyNet().eval()
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = load_module(path, architecture=TinyNet(), mean=None, std=None)
    images = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=1e-6)  # mean None: no normalisation
    assert model.cam_layer is model.model.body  # guessed: the last child holding a convolution


def test_load_module_errors(tmp_path):
    reference = TinyNet()
    with pytest.raises(InputError, match="needs architecture="):
        load_module(reference.state_dict())
    with pytest.raises(InputError, match="does not fit TinyNet"):
        load_module({"weight": torch.zeros(2)}, architecture=TinyNet)
    pickled = tmp_path / "whole_model.pt"
    torch.save(reference, pickled)
    with pytest.raises(InputError, match="weights_only"):
        load_module(pickled, architecture=TinyNet)
    with pytest.raises(InputError, match="does not exist"):
        load_module(tmp_path / "nothing.pt", architecture=TinyNet)
    with pytest.raises(InputError, match="no submodule 'layer9'"):
        load_module(reference, cam_layer="layer9")
    with pytest.raises(InputError, match="std must be positive"):
        load_module(reference, std=(0.0, 1.0, 1.0))


def test_load_module_with_zoo_architecture_name_reproduces_the_zoo_model():
    weights = resources.files("robustviz.models") / "weights" / "smallcnn-standard.pt"
    with weights.open("rb") as handle:
        state = torch.load(handle, weights_only=True)
    model = load_module(state, architecture="smallcnn", mean=(0.5,) * 3, std=(0.25,) * 3)
    zoo = create_model("smallcnn-standard")
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(images), zoo(images), atol=1e-5)
    assert model.cam_layer is model.model.features[-1]  # the architecture's own cam_layer


def test_guess_cam_layer_picks_last_convolutional_child():
    network = nn.Sequential()
    network.add_module("conv1", nn.Conv2d(3, 4, 3))
    network.add_module("layer4", nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()))
    network.add_module("pool", nn.AdaptiveAvgPool2d(1))
    network.add_module("fc", nn.Flatten())
    assert guess_cam_layer(network) is network.layer4
    assert guess_cam_layer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2))) is None


def test_attach_metadata_sets_contract_attributes():
    network = TinyNet()
    attach_metadata(network, cam_layer="stem", class_names=["a", "b", "c", "d", "e"])
    assert network.cam_layer is network.stem and network.num_classes == 5
    assert "cam_layer" not in dict(network.named_children())  # not registered twice in the state dict
    wrapped = attach_metadata(NormalizedModel(TinyNet()), cam_layer="body", num_classes=5)
    assert wrapped.cam_layer is wrapped.model.body and wrapped.class_names == ["0", "1", "2", "3", "4"]
    with pytest.raises(InputError, match="num_classes=3 but 2 class_names"):
        attach_metadata(TinyNet(), class_names=["a", "b"], num_classes=3)


def test_hub_prefixes_reach_the_loaders_and_name_the_extra():
    import robustviz

    with pytest.raises(ImportError, match=r'pip install "robustviz\[models\]"'):
        robustviz.create("model", "torchvision:resnet50")
    with pytest.raises(ImportError, match=r'pip install "robustviz\[models\]"'):
        robustviz.create("model", "timm:resnet18", pretrained=False)
