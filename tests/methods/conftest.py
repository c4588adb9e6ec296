"""Fixtures for the explanation-method tests: a tiny CNN whose CAM layer sits before a non-linear head (so the CAM
variants differ), and the zoo's SmallCNN when the zoo is available."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv-ReLU-conv-ReLU (cam_layer) - conv-ReLU-maxpool - avgpool - linear; 3×32×32 inputs, 5 classes."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, stride=2,
                                                                                           padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(12, num_classes)
        self.num_classes = num_classes
        self.class_names = [f"class{i}" for i in range(num_classes)]

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[3]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.features(images)).flatten(1))


def make_tiny_cnn(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    model = TinyCNN().eval()
    with torch.no_grad():  # a stronger head so gradients are far from zero
        model.fc.weight.mul_(4.0)
    return model


@pytest.fixture
def tiny_model() -> TinyCNN:
    return make_tiny_cnn()


@pytest.fixture
def zoo_model() -> nn.Module:
    """The zoo's SmallCNN (random weights) when registered, else the tiny CNN."""
    import robustviz

    try:
        torch.manual_seed(0)
        return robustviz.create("model", "smallcnn-standard", pretrained=False)
    except Exception:  # the zoo is built by another helper; fall back until it lands
        return make_tiny_cnn()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 32, 32, generator=generator)
    return images, torch.tensor([0, 2, 4]), torch.tensor([11, 22, 33], dtype=torch.int64)
