"""The tiny model zoo: SmallCNN, TinyResNet and TinyViT trained on the shapes dataset, shipped with weights.

Each architecture exposes ``cam_layer`` (the module whose output is a spatial ``N×C×h×w`` feature map that CAM
methods weigh) as a read-only property, so it is not registered twice in the state dict. Registered zoo models are
wrapped in :class:`~robustviz.models.wrappers.NormalizedModel` (mean 0.5, std 0.25 per channel) and take [0, 1]
images of any size >= 32 (adaptive average pooling; the ViT interpolates its position embeddings).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from ..validation import InputError
from .wrappers import NormalizedModel

ZOO_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
ZOO_STD: tuple[float, float, float] = (0.25, 0.25, 0.25)
ZOO_ARCHITECTURES: tuple[str, ...] = ("smallcnn", "tinyresnet", "tinyvit")
ZOO_REGIMES: tuple[str, ...] = ("standard", "noise")
ZOO_NAMES: tuple[str, ...] = tuple(f"{arch}-{regime}" for arch in ZOO_ARCHITECTURES for regime in ZOO_REGIMES)
# The classes the zoo was trained on (robustviz.data.SHAPE_CLASSES; a test checks the two agree — models/ may not
# import data/).
ZOO_CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart")
# Constructor arguments of the shipped architectures (train.py builds the same; the manifest records them).
ZOO_ARCHITECTURE_KWARGS: dict[str, dict] = {"smallcnn": {"width": 16}, "tinyresnet": {"width": 16},
                                            "tinyvit": {"dim": 64, "depth": 3, "heads": 4, "stem": "conv"}}


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution (no bias) -> batch norm -> ReLU (not in place, so hooks see the activation unchanged)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class SmallCNN(nn.Module):
    """Four conv blocks (5×5 stride 2, then 3×3 with two max-pools), global average pooling, linear head.

    Output stride 8: a 64×64 image gives an 8×8 map at ``cam_layer`` (the last conv block, after its ReLU).
    """

    def __init__(self, num_classes: int = 8, width: int = 16, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, width, 5, stride=2),
            conv_bn_relu(width, 2 * width), nn.MaxPool2d(2),
            conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2),
            conv_bn_relu(4 * width, 4 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * width, num_classes)
        self.num_classes = num_classes

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(images)).flatten(1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convs with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.bn1(self.conv1(inputs)))
        return F.relu(self.bn2(self.conv2(hidden)) + self.shortcut(inputs))


class TinyResNet(nn.Module):
    """A stride-2 stem and three residual stages (widths w, 2w, 4w; strides 1, 2, 2): output stride 8.

    ``cam_layer`` is the last stage (its output is the final ReLU'd feature map, like ``layer4`` of a ResNet).
    """

    def __init__(self, num_classes: int = 8, width: int = 16, in_channels: int = 3, blocks_per_stage: int = 1):
        super().__init__()
        self.stem = conv_bn_relu(in_channels, width, 3, stride=2)
        stages, channels = [], width
        for index, out_channels in enumerate((width, 2 * width, 4 * width)):
            blocks = [BasicBlock(channels, out_channels, 1 if index == 0 else 2)]
            blocks += [BasicBlock(out_channels, out_channels) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)
        self.num_classes = num_classes

    @property
    def cam_layer(self) -> nn.Module:
        return self.stage3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stage3(self.stage2(self.stage1(self.stem(images))))
        return self.head(self.pool(features).flatten(1))


class TokensToMap(nn.Module):
    """Patch tokens ``N×L×D`` -> spatial map ``N×D×h×w`` (``L = h·w``, row-major), so a ViT has a CAM layer.

    It has no parameters; it only reshapes. Hooking its output gives CAM methods a feature map with the same
    meaning as a CNN's last conv layer: channel ``d`` at grid cell ``(i, j)`` is feature ``d`` of patch ``(i, j)``.
    """

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, length, dim = tokens.shape
        if length != height * width:
            raise InputError(f"{length} tokens cannot form a {height}×{width} map")
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)


class Attention(nn.Module):
    """Multi-head self-attention written out (softmax(QKᵀ/√d)V), so every autograd mode (VJP, JVP) works."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise InputError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        return self.proj((weights @ value).transpose(1, 2).reshape(batch, length, dim))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attention(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


class TinyViT(nn.Module):
    """A small Vision Transformer: patch size 8, no class token, mean-pooled patch tokens, linear head.

    ``stem="patch"`` embeds non-overlapping 8×8 patches with one linear map (a stride-8 conv, as in ViT);
    ``stem="conv"`` uses three stride-2 3×3 convs instead (total stride 8; Xiao et al. 2021, "Early convolutions help
    transformers see better"). Learned position embeddings live on the training grid (``image_size / 8``) and are
    interpolated bicubically for other sizes. ``cam_layer`` is a :class:`TokensToMap` after the final LayerNorm,
    whose ``N×D×h×w`` output the pooled head reads — so Grad-CAM on it is exact CAM, as for the CNNs.
    """

    def __init__(self, num_classes: int = 8, image_size: int = 64, patch_size: int = 8, dim: int = 64,
                 depth: int = 3, heads: int = 4, mlp_ratio: float = 2.0, in_channels: int = 3, stem: str = "patch"):
        super().__init__()
        if image_size % patch_size:
            raise InputError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        if stem == "patch":
            self.embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        elif stem == "conv" and patch_size == 8:
            self.embed = nn.Sequential(conv_bn_relu(in_channels, dim // 4, 3, 2), conv_bn_relu(dim // 4, dim // 2, 3, 2),
                                       nn.Conv2d(dim // 2, dim, 3, 2, 1))
        else:
            raise InputError(f"stem must be 'patch' or 'conv' (conv needs patch_size 8), got {stem!r}")
        grid = image_size // patch_size
        self.position = nn.Parameter(torch.randn(1, dim, grid, grid) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.to_map = TokensToMap()
        self.head = nn.Linear(dim, num_classes)
        self.num_classes = num_classes

    @property
    def cam_layer(self) -> nn.Module:
        return self.to_map

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height < self.patch_size or width < self.patch_size:
            raise InputError(f"TinyViT needs images of at least {self.patch_size}×{self.patch_size} pixels, "
                             f"got {height}×{width}")
        patches = self.embed(images)  # N×D×h×w; a size that is not a multiple of 8 drops the last partial patch
        grid = patches.shape[-2:]
        position = self.position
        if tuple(position.shape[-2:]) != tuple(grid):
            position = F.interpolate(position, size=tuple(grid), mode="bicubic", align_corners=False)
        tokens = (patches + position).flatten(2).transpose(1, 2)
        tokens = self.norm(self.blocks(tokens))
        feature_map = self.to_map(tokens, grid[0], grid[1])
        return self.head(feature_map.mean(dim=(2, 3)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"smallcnn": SmallCNN, "tinyresnet": TinyResNet,
                                                      "tinyvit": TinyViT}


def build_architecture(architecture: str, num_classes: int = len(ZOO_CLASS_NAMES), **kwargs) -> nn.Module:
    """An untrained zoo architecture ("smallcnn", "tinyresnet", "tinyvit"), without the normalisation wrapper."""
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown zoo architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](num_classes=num_classes, **kwargs)


def weights_dir():
    """The shipped weights folder (an importlib.resources Traversable)."""
    return resources.files("robustviz.models") / "weights"


@lru_cache(maxsize=1)
def load_manifest() -> dict:
    """``weights/manifest.json``: training configuration, accuracies and sha256 of each shipped weights file."""
    path = weights_dir() / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"the zoo manifest {path} is missing; run `robustviz train-zoo` to recreate it")
    return json.loads(path.read_text())


def resolve_device(device: torch.device | str | None) -> torch.device:
    """None -> CPU; "auto" -> CUDA when available; anything else as torch.device understands it."""
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def wrap_zoo_model(network: nn.Module) -> NormalizedModel:
    """The zoo's normalisation wrapper with the shapes class names."""
    return NormalizedModel(network, ZOO_MEAN, ZOO_STD, class_names=ZOO_CLASS_NAMES)


def create_model(name: str, pretrained: bool = True, device: torch.device | str | None = None) -> nn.Module:
    """A zoo model by name ("smallcnn-standard", "tinyvit-noise", ...) in eval mode, taking [0, 1] images."""
    if name not in ZOO_NAMES:
        import difflib

        close = difflib.get_close_matches(name, ZOO_NAMES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise InputError(f"unknown zoo model {name!r}.{hint} Zoo models: {', '.join(ZOO_NAMES)}")
    architecture = name.split("-")[0]
    network = build_architecture(architecture, **ZOO_ARCHITECTURE_KWARGS[architecture])
    if pretrained:
        path = weights_dir() / f"{name}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"shipped weights {path} are missing; run `robustviz train-zoo` to recreate them")
        with path.open("rb") as handle:
            state = torch.load(handle, weights_only=True, map_location="cpu")
        network.load_state_dict(state)
    return wrap_zoo_model(network).to(resolve_device(device)).eval()


def _register_zoo_entry(name: str) -> None:
    def factory(pretrained: bool = True, device: torch.device | str | None = None) -> nn.Module:
        return create_model(name, pretrained=pretrained, device=device)

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"The zoo model {name!r} (see robustviz.models.zoo)."
    register("model", name, architecture=name.split("-")[0], regime=name.split("-")[1], dataset="shapes")(factory)


for _name in ZOO_NAMES:
    _register_zoo_entry(_name)


__all__ = ["ARCHITECTURES", "BasicBlock", "SmallCNN", "TinyResNet", "TinyViT", "TokensToMap", "ZOO_ARCHITECTURE_KWARGS", "ZOO_CLASS_NAMES",
           "ZOO_MEAN", "ZOO_NAMES", "ZOO_STD", "build_architecture", "create_model", "load_manifest",
           "resolve_device", "weights_dir", "wrap_zoo_model"]
