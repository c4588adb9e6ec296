"""Make any classifier meet robustviz's model contract.

The contract: the model takes float32 images ``N×C×H×W`` in [0, 1] (normalisation happens *inside* the model, so
perturbations and explanations live in pixel space), returns logits ``N×K``, is in eval mode, and exposes
``cam_layer`` (the module CAM methods hook), ``class_names`` and ``num_classes``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..validation import InputError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _channel_constant(values: float | Sequence[float], name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{name} must be finite numbers (one per channel), got {values!r}")
    if name == "std" and bool((tensor <= 0).any()):
        raise InputError(f"std must be positive, got {values!r}")
    return tensor.reshape(1, -1, 1, 1)


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """``layer`` itself when it is a submodule of ``model``, or the submodule named by a dotted path ("layer4.1")."""
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError as error:
            names = [name for name, _ in model.named_modules() if name][-8:]
            raise InputError(f"model has no submodule {layer!r}; its last submodules are {names}") from error
    if not isinstance(layer, nn.Module):
        raise InputError(f"cam_layer must be an nn.Module or a dotted submodule name, got {type(layer).__name__}")
    if not any(module is layer for module in model.modules()):
        raise InputError("cam_layer is not a submodule of the model; pass one of model.modules() or its name")
    return layer


class NormalizedModel(nn.Module):
    """``model((images - mean) / std)``: lets a model trained on normalised inputs take [0, 1] images.

    ``mean``/``std`` are per-channel buffers (not saved in the state dict, so the wrapped model's weights load as
    they are). ``cam_layer`` is looked up on the wrapped model (or given explicitly); it is kept out of this module's
    children so the state dict has no duplicate keys.
    """

    def __init__(self, model: nn.Module, mean: float | Sequence[float] = IMAGENET_MEAN,
                 std: float | Sequence[float] = IMAGENET_STD, *, cam_layer: nn.Module | str | None = None,
                 class_names: Sequence[str] | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise InputError(f"NormalizedModel wraps an nn.Module, got {type(model).__name__}")
        self.model = model
        self.register_buffer("mean", _channel_constant(mean, "mean"), persistent=False)
        self.register_buffer("std", _channel_constant(std, "std"), persistent=False)
        layer = cam_layer if cam_layer is not None else getattr(model, "cam_layer", None)
        object.__setattr__(self, "_cam_layer", None if layer is None else resolve_layer(model, layer))
        names = class_names if class_names is not None else getattr(model, "class_names", None)
        self.class_names = None if names is None else list(names)
        self.num_classes = len(self.class_names) if self.class_names is not None else getattr(model, "num_classes", None)

    @property
    def cam_layer(self) -> nn.Module | None:
        """The module whose output CAMs weigh (a submodule of the wrapped model)."""
        return self._cam_layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.mean.shape[1] and self.mean.shape[1] != 1:
            raise InputError(f"model expects images N×{self.mean.shape[1]}×H×W in [0, 1], got shape "
                             f"{tuple(images.shape)}")
        return self.model((images - self.mean) / self.std)


def attach_metadata(model: nn.Module, *, cam_layer: nn.Module | str | None = None,
                    class_names: Sequence[str] | None = None, num_classes: int | None = None) -> nn.Module:
    """Set ``cam_layer``, ``class_names`` and ``num_classes`` on ``model`` (in place; returns it).

    On a :class:`NormalizedModel` the layer is resolved inside the wrapped model. ``num_classes`` defaults to
    ``len(class_names)``; ``class_names`` defaults to ``"0" .. str(num_classes - 1)``.
    """
    if class_names is not None:
        class_names = list(class_names)
        if num_classes is not None and num_classes != len(class_names):
            raise InputError(f"num_classes={num_classes} but {len(class_names)} class_names were given")
        num_classes = len(class_names)
    elif num_classes is not None:
        class_names = [str(index) for index in range(num_classes)]
    if cam_layer is not None:
        root = model.model if isinstance(model, NormalizedModel) else model
        layer = resolve_layer(root, cam_layer)
        # a plain attribute, not a registered child: the state dict must not list the layer twice
        try:
            object.__setattr__(model, "_cam_layer" if isinstance(model, NormalizedModel) else "cam_layer", layer)
        except AttributeError as error:  # a read-only ``cam_layer`` property on the model's class
            raise InputError(f"{type(model).__name__}.cam_layer is read-only; wrap the model in NormalizedModel("
                             f"model, mean, std, cam_layer=...) instead") from error
    if class_names is not None:
        model.class_names = class_names
        model.num_classes = num_classes
    return model


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "NormalizedModel", "attach_metadata", "resolve_layer"]
