"""Small test classifiers for the metric tests: given layers, a head and a logit scale, with the model attributes."""

from __future__ import annotations

import torch
from torch import nn


class ScaledCNN(nn.Module):
    """``scale · head(features(x))`` with ``num_classes``, ``class_names`` and ``cam_layer`` (the features)."""

    def __init__(self, features: nn.Sequential, head: nn.Sequential, num_classes: int, scale: float):
        super().__init__()
        self.features, self.head, self.scale = features, head, scale
        self.num_classes = num_classes
        self.class_names = [f"class{k}" for k in range(num_classes)]

    @property
    def cam_layer(self) -> nn.Module:
        return self.features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.head(self.features(images))
