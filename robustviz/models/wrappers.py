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
#: Named input normalisations a spec may declare (``normalize: imagenet``); ``none`` means the model takes [0, 1].
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "none": ((0.0,), (1.0,)),
}
#: What a model lets explanation methods hook: every module ("full": a plain ``nn.Module``), forward hooks on named
#: submodules whose types are gone ("forward": a ``torch.export`` program, unflattened), or nothing ("none":
#: TorchScript, whose modules refuse ``register_forward_hook``).
HOOK_SUPPORT = ("full", "forward", "none")


def _channel_constant(values: float | Sequence[float], name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{name} must be finite numbers (one per channel), got {values!r}")
    if name == "std" and bool((tensor <= 0).any()):
        raise InputError(f"std must be positive, got {values!r}")
    return tensor.reshape(1, -1, 1, 1)


def parse_normalization(value: object) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` from a declared normalisation: a name in :data:`NORMALIZATIONS` (``"imagenet"``,
    ``"none"``/None), or a mapping ``{"mean": [...], "std": [...]}`` (one number per channel, or one for all)."""
    if value is None or value is False:
        value = "none"
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in NORMALIZATIONS:
            raise InputError(f"unknown normalize {value!r}; use one of {sorted(NORMALIZATIONS)} or "
                             f"{{mean: [r, g, b], std: [r, g, b]}}")
        return NORMALIZATIONS[key]
    if isinstance(value, dict) and set(value) == {"mean", "std"}:
        mean = tuple(float(v) for v in torch.as_tensor(value["mean"], dtype=torch.float64).reshape(-1).tolist())
        std = tuple(float(v) for v in torch.as_tensor(value["std"], dtype=torch.float64).reshape(-1).tolist())
        _channel_constant(mean, "mean"), _channel_constant(std, "std")
        return mean, std
    raise InputError(f"normalize must be 'imagenet', 'none' or {{mean: [...], std: [...]}}, got {value!r}")


def describe_normalization(mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> str:
    """A short human description: ``imagenet``, ``none`` or ``mean=[…] std=[…]``."""
    mean_list = [round(float(v), 4) for v in torch.as_tensor(mean).reshape(-1)]
    std_list = [round(float(v), 4) for v in torch.as_tensor(std).reshape(-1)]
    for name, (ref_mean, ref_std) in NORMALIZATIONS.items():
        if mean_list == [round(v, 4) for v in ref_mean] and std_list == [round(v, 4) for v in ref_std]:
            return name
    if set(mean_list) == {0.0} and set(std_list) == {1.0}:
        return "none"
    return f"mean={mean_list} std={std_list}"


def is_scripted(model: nn.Module) -> bool:
    """True for a TorchScript module (``torch.jit.script``/``trace``/``load``): hooks are not supported on it."""
    return isinstance(model, torch.jit.ScriptModule)


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """``layer`` itself when it is a submodule of ``model``, or the submodule named by a dotted path ("layer4.1")."""
    if is_scripted(model):
        raise InputError("a TorchScript model has no hookable layers (TorchScript refuses forward hooks), so it "
                         "cannot have a cam_layer; load its state dict with the architecture, or a torch.export "
                         "program, to use CAM methods")
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
                 class_names: Sequence[str] | None = None, normalization_declared: bool = True,
                 hook_support: str | None = None):
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
        #: How the [0, 1] input is normalised ("imagenet", "none", "mean=… std=…"), and whether the user said so
        #: (the clean-accuracy check names an undeclared normalisation as the likely culprit).
        self.normalization = describe_normalization(self.mean, self.std)
        self.normalization_declared = bool(normalization_declared)
        if hook_support is None:
            hook_support = "none" if is_scripted(model) else getattr(model, "hook_support", "full")
        if hook_support not in HOOK_SUPPORT:
            raise InputError(f"hook_support must be one of {HOOK_SUPPORT}, got {hook_support!r}")
        self.hook_support = hook_support

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


__all__ = ["HOOK_SUPPORT", "IMAGENET_MEAN", "IMAGENET_STD", "NORMALIZATIONS", "NormalizedModel", "attach_metadata",
           "describe_normalization", "is_scripted", "parse_normalization", "resolve_layer"]
