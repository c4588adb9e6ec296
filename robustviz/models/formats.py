"""Model files in every common form: a state dict plus an architecture, a TorchScript archive, a ``torch.export``
program — loaded into robustviz's model contract (:class:`~robustviz.models.wrappers.NormalizedModel`).

``load_model_file(path)`` tells the forms apart by the archive's contents (no file suffix convention needed):

- **TorchScript** (``torch.jit.save``): loaded with ``torch.jit.load``. TorchScript refuses forward hooks, so
  methods that hook layers (the CAM family, DeepLift, guided backprop, LRP) cannot run on it; gradient and
  perturbation methods (saliency, integrated gradients, SmoothGrad, occlusion, RISE, …) can.
- **torch.export** (``torch.export.save``, ``.pt2``): loaded with ``torch.export.load`` and *unflattened*
  (``torch.export.unflatten``), which restores the module hierarchy so forward hooks on named submodules fire: CAMs
  work with ``cam_layer: layer4``. Module types are gone (a ReLU is an interpreter module), so methods that replace
  the gradient of particular module types (DeepLift, guided backprop, LRP) cannot run. The batch dimension must
  have been exported as dynamic (robustviz feeds batches of several sizes).
- **state dict** (``torch.save(model.state_dict())``): loaded with ``weights_only=True`` into ``architecture``: an
  ``nn.Module``, a callable, a zoo name, or an import string ``"package.module:factory"`` /
  ``"path/to/file.py:factory"`` (what a YAML spec can hold). Every method works.

In a spec: ``models: [{name: file, path: resnet.pt, architecture: "mypkg.nets:resnet18", normalize: imagenet}]``.
The cube names such a model by its file name (``resnet``) unless the component gives ``label:``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..registry import register
from ..validation import InputError
from .wrappers import NormalizedModel, parse_normalization

FORMATS = ("auto", "state_dict", "torchscript", "export")
#: What each file form lets methods hook (see :data:`~robustviz.models.wrappers.HOOK_SUPPORT`).
FORMAT_HOOKS = {"state_dict": "full", "torchscript": "none", "export": "forward"}


def sniff_format(path: str | Path) -> str:
    """``"torchscript"``, ``"export"`` or ``"state_dict"`` from the archive's member names (cheap: no loading)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        return "state_dict"  # legacy (non-zip) torch.save files hold pickles: torch.load decides
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any("/code/" in name or name.endswith("constants.pkl") for name in names):
        return "torchscript"
    if any(name.endswith("archive_format") or "/models/" in name for name in names):
        return "export"
    return "state_dict"


def import_object(reference: str) -> Any:
    """The object named by ``"package.module:attribute"`` or ``"path/to/file.py:attribute"``.

    This imports and runs user code, exactly like ``python -c "from package.module import attribute"``: only use
    specs you trust.
    """
    module_name, separator, attribute = str(reference).rpartition(":")
    if not separator or not module_name or not attribute:
        raise InputError(f"architecture {reference!r} must look like 'package.module:factory' or "
                         f"'path/to/file.py:factory'")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise InputError(f"architecture file {file} does not exist")
            unique = f"robustviz_user_{abs(hash(str(file.resolve())))}"
            spec = importlib.util.spec_from_file_location(unique, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"cannot import {module_name!r} for architecture {reference!r}: {error}; install the "
                         f"package or give a file path ('path/to/file.py:factory')") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InputError(f"{module_name!r} has no attribute {attribute!r} (architecture {reference!r})") from None


def _exported_module(path: Path) -> nn.Module:
    with _quiet_export_warnings():
        program = torch.export.load(str(path))
    inputs = [node for node in program.graph.nodes if node.op == "placeholder"
              and node.name in set(program.graph_signature.user_inputs)]
    for node in inputs:
        value = node.meta.get("val")
        if value is not None and value.ndim and isinstance(value.shape[0], int):
            raise InputError(f"{path} was exported with a fixed batch size of {value.shape[0]}; robustviz feeds "
                             f"batches of several sizes. Export it again with a dynamic batch: torch.export.export("
                             f"model, (x,), dynamic_shapes={{'{node.name}': {{0: torch.export.Dim('batch')}}}})")
    with _quiet_export_warnings():
        # unflatten keeps the module hierarchy, so forward hooks on named submodules (CAM layers) fire
        return torch.export.unflatten(program)


@contextlib.contextmanager
def _quiet_export_warnings() -> Iterator[None]:
    """Silence torch's deprecation notes about its own serialisation internals while loading."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _architecture(architecture: Any, kwargs: Mapping[str, Any] | None) -> Any:
    if isinstance(architecture, str) and ":" in architecture:
        factory = import_object(architecture)
        if kwargs:
            return lambda: factory(**kwargs)
        return factory
    if kwargs:
        if not callable(architecture) or isinstance(architecture, nn.Module):
            raise InputError("architecture_kwargs need an architecture that is a callable or 'module:factory'")
        return lambda: architecture(**kwargs)
    return architecture


def load_model_file(path: str | Path, *, format: str = "auto", architecture: Any = None,
                    architecture_kwargs: Mapping[str, Any] | None = None,
                    normalize: str | Mapping[str, Sequence[float]] | None = None,
                    cam_layer: nn.Module | str | None = None, class_names: Sequence[str] | None = None,
                    num_classes: int | None = None, strict: bool = True,
                    device: torch.device | str | None = None) -> NormalizedModel:
    """Load a model file (state dict, TorchScript or torch.export; see the module docstring) for robustviz.

    ``normalize`` declares the input normalisation the model was trained with: ``"imagenet"``, ``"none"`` (the
    model takes [0, 1] images) or ``{"mean": [...], "std": [...]}``. Left out, no normalisation is applied and the
    model is marked as undeclared, so a clean accuracy at chance is reported with that hint.
    """
    from .loaders import _build, _load_state_dict_file, _unwrap_checkpoint, _wrap

    if format not in FORMATS:
        raise InputError(f"format must be one of {FORMATS}, got {format!r}")
    path = Path(path)
    kind = sniff_format(path) if format == "auto" else format
    mean, std = parse_normalization(normalize)
    if kind == "torchscript":
        if architecture is not None:
            raise InputError(f"{path} is a TorchScript archive, which holds its own architecture; drop architecture=")
        with _quiet_export_warnings():
            try:
                model = torch.jit.load(str(path), map_location="cpu")
            except Exception as error:
                raise InputError(f"cannot load {path} with torch.jit.load: {error}") from error
    elif kind == "export":
        if architecture is not None:
            raise InputError(f"{path} is a torch.export program, which holds its own graph; drop architecture=")
        try:
            model = _exported_module(path)
        except InputError:
            raise
        except Exception as error:
            raise InputError(f"cannot load {path} with torch.export.load: {error}") from error
    else:
        state = _unwrap_checkpoint(_load_state_dict_file(path), str(path))
        model = _build(_architecture(architecture, architecture_kwargs))
        result = model.load_state_dict(state, strict=False)
        if strict and (result.missing_keys or result.unexpected_keys):
            raise InputError(f"{path} does not fit {type(model).__name__}: missing keys {result.missing_keys[:5]}, "
                             f"unexpected keys {result.unexpected_keys[:5]}; check the architecture or pass "
                             f"strict: false")
    wrapped = _wrap(model, mean, std, cam_layer, class_names, num_classes, device)
    wrapped.hook_support = FORMAT_HOOKS[kind]
    wrapped.normalization_declared = normalize is not None
    wrapped.source_format = kind
    return wrapped


@register("model", "file")
def model_file(path: str, format: str = "auto", architecture: str | None = None,
               architecture_kwargs: Mapping[str, Any] | None = None,
               normalize: str | Mapping[str, Sequence[float]] | None = None, cam_layer: str | None = None,
               class_names: Sequence[str] | None = None, num_classes: int | None = None,
               strict: bool = True) -> NormalizedModel:
    """Registry factory for spec entries ``{name: file, path: ..., normalize: ..., architecture: ...}``."""
    return load_model_file(path, format=format, architecture=architecture, architecture_kwargs=architecture_kwargs,
                           normalize=normalize, cam_layer=cam_layer, class_names=class_names,
                           num_classes=num_classes, strict=strict)


def wrap_user_module(model: nn.Module, normalize: Any = None, *, declared: bool = True) -> NormalizedModel:
    """An ``nn.Module`` passed to ``evaluate(models=...)`` with a spec-declared ``normalize``: wrapped so it takes
    [0, 1] images (a :class:`NormalizedModel` is returned as it is)."""
    if isinstance(model, NormalizedModel):
        return model
    mean, std = parse_normalization(normalize)
    from .loaders import _wrap

    wrapped = _wrap(model, mean, std, None, getattr(model, "class_names", None), None,
                    next((p.device for p in model.parameters()), None))
    wrapped.normalization_declared = declared
    return wrapped


__all__ = ["FORMATS", "FORMAT_HOOKS", "import_object", "load_model_file", "sniff_format", "wrap_user_module"]
