"""Bring your own classifier: torchvision, timm and RobustBench models (``pip install "robustviz[models]"``), or any
``nn.Module`` / state-dict file of your own.

Every loader returns a model that meets robustviz's contract: a :class:`~robustviz.models.wrappers.NormalizedModel`
in eval mode that takes [0, 1] images and exposes ``cam_layer``, ``class_names`` and ``num_classes``. Hub loaders
download weights through their libraries (``weights="DEFAULT"`` for torchvision, ``pretrained=True`` for timm,
RobustBench's model zoo); pass local files to stay offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from .._optional import require
from ..registry import register
from ..validation import InputError
from .wrappers import IMAGENET_MEAN, IMAGENET_STD, NormalizedModel, is_scripted, resolve_layer
from .zoo import ARCHITECTURES, resolve_device

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                    "truck")


def guess_cam_layer(model: nn.Module) -> nn.Module | None:
    """A sensible CAM layer for a CNN: ``model.cam_layer`` if set, else the last top-level child that contains a
    convolution (``layer4`` of a ResNet, ``features`` of VGG/DenseNet/MobileNet/EfficientNet/ConvNeXt).

    Returns None for TorchScript models and when no child holds a convolution (e.g. an MLP); transformers need an explicit layer whose output
    is a spatial map (see :class:`~robustviz.models.zoo.TokensToMap`).
    """
    if is_scripted(model):
        return None  # TorchScript refuses hooks: no layer can be a CAM layer
    existing = getattr(model, "cam_layer", None)
    if isinstance(existing, nn.Module):
        return existing
    chosen = None
    for _, child in model.named_children():
        if any(_is_convolution(module) for module in child.modules()):
            chosen = child
    return chosen


def _is_convolution(module: nn.Module) -> bool:
    """An ``nn.Conv2d``, or a module holding a 4-D ``weight`` (the conv of an unflattened torch.export program,
    which has lost its type)."""
    if isinstance(module, nn.Conv2d):
        return True
    weight = dict(module.named_parameters(recurse=False)).get("weight")
    return isinstance(weight, torch.Tensor) and weight.ndim == 4


def _wrap(model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None,
          cam_layer: nn.Module | str | None, class_names: Sequence[str] | None, num_classes: int | None,
          device: torch.device | str | None) -> NormalizedModel:
    mean = (0.0, 0.0, 0.0) if mean is None else mean
    std = (1.0, 1.0, 1.0) if std is None else std
    layer = cam_layer if cam_layer is not None else guess_cam_layer(model)
    wrapped = NormalizedModel(model, mean, std, cam_layer=layer, class_names=class_names)
    if wrapped.class_names is None:
        count = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        if count is None:  # the last Linear layer's width is the number of classes
            linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
            count = linears[-1].out_features if linears else None
        if count is None:  # TorchScript / torch.export: types are gone, the last 2-D weight is the classifier's
            matrices = [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim == 2]
            count = matrices[-1].shape[0] if matrices else None
        if count is not None:
            wrapped.class_names = [str(index) for index in range(int(count))]
            wrapped.num_classes = int(count)
    return wrapped.to(resolve_device(device)).eval()


def _load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # pickled modules, corrupt files
        raise InputError(f"cannot load {path} with torch.load(weights_only=True): {error}. Save a state dict "
                         f"(torch.save(model.state_dict(), path)) rather than a whole pickled model") from error
    return _unwrap_checkpoint(state, str(path))


def _unwrap_checkpoint(state: Any, source: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers and DataParallel's
    ``module.`` prefixes are removed."""
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{source} does not hold a state dict (a mapping of parameter names to tensors)")
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def _build(architecture: nn.Module | Callable[[], nn.Module] | str | None) -> nn.Module:
    if architecture is None:
        raise InputError("loading a state dict needs architecture=: an nn.Module instance, a callable that builds "
                         f"one, or a zoo architecture name ({', '.join(ARCHITECTURES)})")
    if isinstance(architecture, nn.Module):
        return architecture
    if isinstance(architecture, str):
        if architecture not in ARCHITECTURES:
            raise InputError(f"unknown architecture {architecture!r}; pass an nn.Module or one of "
                             f"{', '.join(ARCHITECTURES)}")
        return ARCHITECTURES[architecture]()
    if callable(architecture):
        model = architecture()
        if not isinstance(model, nn.Module):
            raise InputError(f"architecture() returned {type(model).__name__}, not an nn.Module")
        return model
    raise InputError(f"architecture must be an nn.Module, a callable or a name, got {type(architecture).__name__}")


def load_module(module_or_state_dict: nn.Module | Mapping[str, torch.Tensor] | str | Path,
                architecture: nn.Module | Callable[[], nn.Module] | str | None = None, *,
                mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD,
                cam_layer: nn.Module | str | None = None, class_names: Sequence[str] | None = None,
                num_classes: int | None = None, device: torch.device | str | None = None,
                strict: bool = True) -> NormalizedModel:
    """Wrap your own classifier for robustviz.

    ``module_or_state_dict`` is an ``nn.Module``, a state dict, or a file saved with ``torch.save(state_dict)``
    (loaded with ``weights_only=True``; checkpoint wrappers and ``module.`` prefixes are handled), in which case
    ``architecture`` builds the network to load it into. ``mean``/``std`` are the normalisation the model was
    trained with (ImageNet's by default; ``None`` if it already takes [0, 1] images). ``cam_layer`` is a submodule
    or its dotted name (default: :func:`guess_cam_layer`).
    """
    if isinstance(module_or_state_dict, nn.Module):
        model = module_or_state_dict
    else:
        if isinstance(module_or_state_dict, (str, Path)):
            state = _load_state_dict_file(module_or_state_dict)
        else:
            state = _unwrap_checkpoint(module_or_state_dict, "the given state dict")
        model = _build(architecture)
        result = model.load_state_dict(state, strict=False)
        if strict and (result.missing_keys or result.unexpected_keys):
            raise InputError(f"the state dict does not fit {type(model).__name__}: missing keys "
                             f"{result.missing_keys[:5]}, unexpected keys {result.unexpected_keys[:5]}; check the "
                             f"architecture or pass strict=False")
    return _wrap(model, mean, std, cam_layer, class_names, num_classes, device)


def load_torchvision(name: str, weights: str | Path | None = "DEFAULT", *, cam_layer: nn.Module | str | None = None,
                     device: torch.device | str | None = None) -> NormalizedModel:
    """A torchvision classifier by name ("resnet50", "vgg16", ...).

    ``weights``: a torchvision weights name ("DEFAULT", "IMAGENET1K_V2"; downloaded by torchvision), a local
    state-dict file, or None for random initialisation. ImageNet normalisation; class names from the weights'
    metadata when available.
    """
    torchvision = require("torchvision", "models", "loading torchvision models")
    class_names = None
    is_file = isinstance(weights, Path) or (isinstance(weights, str) and Path(weights).suffix in
                                            (".pt", ".pth", ".bin", ".ckpt"))
    if weights is None or is_file:
        model = torchvision.models.get_model(name, weights=None)
        if weights is not None:
            model.load_state_dict(_load_state_dict_file(weights), strict=True)
    else:
        weights_enum = torchvision.models.get_model_weights(name)
        chosen = weights_enum.DEFAULT if weights == "DEFAULT" else weights_enum[weights]
        model = torchvision.models.get_model(name, weights=chosen)
        class_names = chosen.meta.get("categories")
    return _wrap(model, IMAGENET_MEAN, IMAGENET_STD, cam_layer, class_names, None, device)


def load_timm(name: str, checkpoint_path: str | Path | None = None, *, pretrained: bool = True,
              cam_layer: nn.Module | str | None = None, device: torch.device | str | None = None) -> NormalizedModel:
    """A timm model by name; weights from ``checkpoint_path`` when given, else timm's pretrained download.

    Normalisation comes from the model's ``pretrained_cfg`` (mean/std).
    """
    timm = require("timm", "models", "loading timm models")
    model = timm.create_model(name, pretrained=pretrained and checkpoint_path is None,
                              checkpoint_path=str(checkpoint_path) if checkpoint_path else "")
    config = getattr(model, "pretrained_cfg", None) or {}
    mean, std = config.get("mean", IMAGENET_MEAN), config.get("std", IMAGENET_STD)
    return _wrap(model, mean, std, cam_layer, None, getattr(model, "num_classes", None), device)


def load_robustbench(name: str, dataset: str = "cifar10", threat_model: str = "Linf",
                     model_dir: str | Path = "./models", *, cam_layer: nn.Module | str | None = None,
                     device: torch.device | str | None = None) -> NormalizedModel:
    """A RobustBench model (e.g. ``"Standard"``, ``"Carmon2019Unlabeled"``) — downloaded into ``model_dir``.

    RobustBench models already take [0, 1] images, so no normalisation is added.
    """
    require("robustbench", "models", "loading RobustBench models")
    from robustbench.utils import load_model

    model = load_model(model_name=name, dataset=dataset, threat_model=threat_model, model_dir=str(model_dir))
    class_names = CIFAR10_CLASSES if dataset == "cifar10" else None
    return _wrap(model, None, None, cam_layer, class_names, None, device)


# Hub families by prefix: ``robustviz.create("model", "torchvision:resnet50")``, ``"timm:vit_small_patch16_224"``,
# ``"robustbench:Carmon2019Unlabeled"`` (the registry calls these with ``name=`` the part after the colon).
register("model", "torchvision:")(load_torchvision)
register("model", "timm:")(load_timm)
register("model", "robustbench:")(load_robustbench)


def resolve_cam_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Public alias of :func:`robustviz.models.wrappers.resolve_layer`."""
    return resolve_layer(model, layer)


__all__ = ["CIFAR10_CLASSES", "guess_cam_layer", "load_module", "load_robustbench", "load_timm", "load_torchvision",
           "resolve_cam_layer"]
