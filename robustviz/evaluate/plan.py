"""Resolve an :class:`EvaluationSpec` into live objects, validating everything before anything is written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any, Mapping

import torch

from .. import registry
from ..cube.schema import BASE_VARIABLES, SCHEMA_VERSION
from ..cube.template import VariableSpec
from ..data.base import ImageSet
from ..metrics.base import Metric, ModelMetric
from ..spec import Component, EvaluationSpec, SpecError
from ..validation import InputError
from .presets import describe as describe_preset
from .presets import preset_defaults
from .scoping import check_degenerate, resolve_metric_methods

#: Whom attributions are computed for: the class predicted on the clean image, the same for clean and perturbed
#: images, so their maps are comparable (the RISE insertion/deletion protocol scores that class too).
TARGETS = ("clean_pred", "label", "pred")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present (then MPS), else CPU; an unavailable CUDA request is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available; use device: auto or cpu")
    return torch.device(device)


#: Component parameters the engine consumes itself rather than passing to the factory.
#: ``at: clean`` computes a metric on the clean images only (NaN at severities ≥ 1) — e.g. a costly model
#: metric such as ``fisher_lmax`` when its value under perturbation is not needed.
#: ``label`` names a model or perturbation in the cube (e.g. two model files, or a precomputed corruption next to
#: the on-the-fly one).
#: ``methods: [saliency, grad_cam]`` limits a per-method metric to those methods (the other cells read NaN).
ENGINE_PARAMS = {"metric": ("at", "methods"), "model": ("label",), "perturbation": ("label",)}
METRIC_SCOPES = ("all", "clean")
#: Parameters holding file-system paths (and any absolute path): shown by their file name only in labels.
_PATH_PARAMS = ("path", "root", "checkpoint_path", "model_dir")
#: The perturbation coordinate of a clean-only cube (``perturbations: []``).
CLEAN_ONLY = "clean"


def _create(kind: str, component: Component, **defaults: Any) -> Any:
    engine_keys = ENGINE_PARAMS.get(kind, ())
    params = {**defaults, **{k: v for k, v in component.kwargs.items() if k not in engine_keys}}
    return registry.create(kind, component.name, **params)


def with_preset(preset: str | None, kind: str, component: Component) -> Component:
    """``component`` with the preset's parameters filled in where the spec gives none (explicit ones win)."""
    defaults = preset_defaults(preset, kind, component.name)
    if not defaults:
        return component
    return Component.parse({"name": component.name, **defaults, **component.kwargs}, kind)


def _short_label(component: Component) -> str:
    """``component.label`` with path parameters shortened to their file name (no absolute paths in coordinates)."""
    if not component.params:
        return component.name
    shown = [(k, PurePath(v).name if isinstance(v, str) and (k in _PATH_PARAMS or PurePath(v).is_absolute())
              else v) for k, v in component.kwargs.items()]
    return f"{component.name}[{','.join(f'{k}={v}' for k, v in shown)}]"


def coordinate_labels(components: tuple[Component, ...] | list[Component],
                      preferred: list[str | None] | None = None) -> list[str]:
    """Cube coordinate labels: a ``label`` parameter when given, else ``preferred`` (what a component calls itself,
    e.g. a model file's stem or a precomputed corruption's name), else the bare name where it is unique in the list
    (``rise``), the name with its parameters where the same name appears twice (``rise[n_masks=100]``)."""
    preferred = list(preferred) if preferred is not None else [None] * len(components)
    names = [c.kwargs.get("label") or wish or c.name for c, wish in zip(components, preferred)]
    labels = []
    for component, name in zip(components, names):
        if "label" in component.kwargs or names.count(name) == 1:
            labels.append(str(name))
        else:
            labels.append(_short_label(component))
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise SpecError(f"{', '.join(duplicates)} would name two entries of the cube; give them distinct "
                        f"`label:` parameters")
    return labels


class CleanOnly:
    """The identity, standing in for the perturbation of a clean-only spec (``perturbations: []``): the cube then
    holds one perturbation, ``clean``, with severity 0 only."""

    name = CLEAN_ONLY
    family = "none"
    source = "none (clean images only)"
    severities = ()

    def __call__(self, images: torch.Tensor, severity: int, **kwargs: Any) -> torch.Tensor:
        return images


#: Methods that replace the gradient of particular module types (ReLU rules, LRP rules): they need the model's
#: modules with their types, which neither TorchScript nor torch.export keeps.
MODULE_TYPE_METHODS = frozenset({"deeplift", "deeplift_shap", "deep_lift_shap", "guided_backprop",
                                 "guided_grad_cam", "lrp", "fullgrad"})
_HOOK_LEVELS = {"none": 0, "forward": 1, "full": 2}


def hooks_needed(method: Any) -> str:
    """What ``method`` (an instance or a registered class) hooks: "none", "forward" (forward hooks on a layer, the
    CAM family) or "full" (module-type rules). A method may say so itself with a ``needs_hooks`` attribute."""
    declared = getattr(method, "needs_hooks", None)
    if declared in _HOOK_LEVELS:
        return declared
    name, family = getattr(method, "name", ""), getattr(method, "family", "")
    if name in MODULE_TYPE_METHODS or family == "relevance":
        return "full"
    if family == "cam" or isinstance(getattr(method, "layer", None), (str, torch.nn.Module)):
        return "forward"
    return "none"


def check_method_support(model_name: str, support: str, methods: list[Any], labels: list[str],
                         what: str = "") -> None:
    """Refuse, before any work, methods that need hooks the model cannot give; name the methods that do work."""
    level = _HOOK_LEVELS.get(support, 2)
    refused = [label for label, method in zip(labels, methods) if _HOOK_LEVELS[hooks_needed(method)] > level]
    if not refused:
        return
    usable = []
    for name in registry.list_names("method"):
        factory = registry.get("method", name)
        if _HOOK_LEVELS[hooks_needed(factory)] <= level and not name.endswith("_ours"):
            usable.append(name)
    kind = what or {"none": "a TorchScript model", "forward": "a torch.export program"}.get(support, "this model")
    why = ("TorchScript refuses forward hooks" if support == "none" else
           "its modules have lost their types, so module-specific gradient rules cannot be attached")
    raise InputError(f"model {model_name!r} is {kind}: {', '.join(refused)} cannot run on it ({why}). Methods "
                     f"that do: {', '.join(usable)}. To use every method, load the state dict with its "
                     f"architecture ({{name: file, path: ..., architecture: 'package.module:factory'}})")


def data_fingerprint(data: ImageSet) -> str:
    digest = hashlib.sha256()
    for tensor in (data.images, data.labels, data.sample_ids):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_labels(components: tuple[Component, ...] | list[Component]) -> list[str]:
    """Model coordinates: a model file is named by its file name without suffix (``resnet18.pt`` → ``resnet18``)."""
    stems = [PurePath(str(c.kwargs["path"])).stem if c.name == "file" and "path" in c.kwargs else None
             for c in components]
    return coordinate_labels(components, stems)


def perturbation_labels(components: tuple[Component, ...] | list[Component]) -> list[str]:
    """Perturbation coordinates: pre-corrupted files are named by their corruption (``gaussian_noise``), so the
    ImageNet-C tables (mCE) apply; a clean-only spec has the one coordinate ``clean``."""
    if not components:
        return [CLEAN_ONLY]
    corruptions = [str(c.kwargs["corruption"]) if c.name == "precomputed" and "corruption" in c.kwargs else None
                   for c in components]
    return coordinate_labels(components, corruptions)


_model_labels = model_labels


@dataclass
class Plan:
    """Everything an evaluation needs, resolved and validated: models are created lazily (one at a time)."""

    spec: EvaluationSpec
    data: ImageSet
    perturbations: list[Any]
    methods: list[Any]
    metrics: list[Metric]
    model_metrics: list[ModelMetric]
    device: torch.device
    model_overrides: Mapping[str, torch.nn.Module] = field(default_factory=dict)
    target: str = "clean_pred"
    metric_scopes: list[str] = field(default_factory=list)  # "all" or "clean", one per per-sample metric
    #: Per per-sample metric, one bool per method: computed (True) or left NaN (scoped out or skipped by default).
    metric_methods: list[list[bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the plan chose for the user (default skips)
    warnings: list[str] = field(default_factory=list)  # metrics that are degenerate for this setting

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: EvaluationSpec, *, data: ImageSet | None = None,
                  models: Mapping[str, torch.nn.Module] | None = None) -> "Plan":
        if not isinstance(spec, EvaluationSpec):
            raise SpecError(f"evaluate() needs an EvaluationSpec (EvaluationSpec.from_yaml(path)), got "
                            f"{type(spec).__name__}")
        models = dict(models or {})
        for component in spec.models:  # fail on unknown names before any work
            if component.name not in models:
                registry.get("model", component.name)
        if data is None:
            data = _create("dataset", spec.dataset, n_samples=spec.n_samples, seed=spec.seed)
        if not isinstance(data, ImageSet):
            raise InputError(f"dataset {spec.dataset.name!r} returned {type(data).__name__}, not an ImageSet")
        if len(data) < spec.n_samples:
            raise InputError(f"dataset {spec.dataset.name!r} has {len(data)} samples, the spec asks for "
                             f"n_samples={spec.n_samples}; lower n_samples")
        data = data.subset(slice(0, spec.n_samples))
        perturbations: list[Any] = [_create("perturbation", c) for c in spec.perturbations] or [CleanOnly()]
        for component, perturbation in zip(spec.perturbations, perturbations):
            missing = sorted(set(spec.severities) - set(perturbation.severities))
            if missing:
                raise InputError(f"perturbation {component.label!r} has no severities {missing}; its severities "
                                 f"are {tuple(perturbation.severities)}")
        method_components = [with_preset(spec.preset, "method", c) for c in spec.methods]
        methods = [_create("method", c) for c in method_components]
        method_labels = coordinate_labels(spec.methods)
        for component, name in zip(spec.models, _model_labels(spec.models)):
            if component.name == "file" and component.name not in models and "path" in component.kwargs:
                from ..models.formats import FORMAT_HOOKS, sniff_format

                fmt = component.kwargs.get("format", "auto")
                kind = sniff_format(component.kwargs["path"]) if fmt == "auto" else fmt
                check_method_support(name, FORMAT_HOOKS.get(kind, "full"), methods, method_labels)
        metrics: list[Metric] = []
        model_metrics: list[ModelMetric] = []
        scopes: list[str] = []
        metric_methods: list[list[bool]] = []
        notes: list[str] = []
        metric_components = []
        for component in (with_preset(spec.preset, "metric", c) for c in spec.metrics):
            metric = _create("metric", component)
            if getattr(metric, "scope", "sample") == "model":
                model_metrics.append(metric)
                continue
            if metric.per_method and not methods:
                raise SpecError(f"metric {component.label!r} compares attributions: list at least one method")
            if "masks" in metric.needs and data.masks is None:
                suggestion = getattr(metric, "mask_dataset", "shapes")
                raise SpecError(f"metric {component.label!r} needs ground-truth masks, which dataset "
                                f"{spec.dataset.name!r} does not have; use the {suggestion!r} dataset")
            scope = component.kwargs.get("at", "all")
            if scope not in METRIC_SCOPES:
                raise SpecError(f"metric {component.label!r}: at must be one of {METRIC_SCOPES}, got {scope!r}")
            metrics.append(metric)
            scopes.append(scope)
            metric_methods.append(resolve_metric_methods(component, metric, spec.methods, method_labels, methods,
                                                         notes))
            metric_components.append(component)
        target = dict(spec.extra).get("target", "clean_pred")
        if target not in TARGETS:
            raise SpecError(f"extra.target must be one of {TARGETS}, got {target!r}")
        warnings = check_degenerate(metric_components, metrics, metric_methods, method_labels, methods,
                                    tuple(data.images.shape[-2:]))
        return cls(spec, data, perturbations, methods, metrics, model_metrics, resolve_device(spec.device),
                   models, target, scopes, metric_methods, notes, warnings)

    # -- derived layout ------------------------------------------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        """Cube variable names of the per-sample metrics: the label without engine-only parameters."""
        engine_keys = ENGINE_PARAMS["metric"]
        return coordinate_labels([Component(c.name, tuple((k, v) for k, v in c.params if k not in engine_keys))
                                  for c in self._metric_components("sample")])

    @property
    def method_names(self) -> list[str]:
        return coordinate_labels(self.spec.methods)

    @property
    def perturbation_names(self) -> list[str]:
        return perturbation_labels(self.spec.perturbations)

    @property
    def severities(self) -> tuple[int, ...]:
        """Severities ≥ 1 of the cube: none for a clean-only spec."""
        return self.spec.severities if self.spec.perturbations else ()

    @property
    def model_names(self) -> list[str]:
        return _model_labels(self.spec.models)

    @property
    def sample_chunk(self) -> int:
        return min(self.spec.sample_chunk or len(self.data), len(self.data))

    @property
    def n_chunks(self) -> int:
        return -(-len(self.data) // self.sample_chunk)

    def chunk_slice(self, chunk: int) -> slice:
        return slice(chunk * self.sample_chunk, min((chunk + 1) * self.sample_chunk, len(self.data)))

    @property
    def n_examples(self) -> int:
        return min(self.spec.n_examples, self.sample_chunk)

    def create_model(self, index: int) -> torch.nn.Module:
        component = self.spec.models[index]
        if component.name in self.model_overrides:
            model = self.model_overrides[component.name]
            if "normalize" in component.kwargs:  # declared in the spec for a module passed to evaluate()
                from ..models.formats import wrap_user_module

                model = wrap_user_module(model, component.kwargs["normalize"])
        else:
            model = _create("model", component)
        from ..models.wrappers import is_scripted

        support = "none" if is_scripted(model) else getattr(model, "hook_support", "full")
        check_method_support(self.model_names[index], support, self.methods, self.method_names)
        return model.to(self.device).eval()

    def variables(self) -> dict[str, VariableSpec]:
        sample_dims = ("model", "perturbation", "severity", "sample")
        method_dims = ("model", "perturbation", "severity", "method", "sample")
        variables = {name: VariableSpec(sample_dims, info["dtype"], {k: v for k, v in info.items() if k != "dtype"})
                     for name, info in BASE_VARIABLES.items()}
        for component, name, metric, scope in zip(self._metric_components("sample"), self.metric_names,
                                                  self.metrics, self.metric_scopes):
            attrs = {"direction": metric.direction, "category": metric.category, "metric": component.name,
                     "computed_at": "clean images only" if scope == "clean" else "every severity",
                     "long_name": (type(metric).__doc__ or component.name).strip().splitlines()[0]}
            dims = (method_dims if metric.per_method else sample_dims) + tuple(metric.value_coords)
            variables[name] = VariableSpec(dims, "float32", attrs)
        for metric in self.model_metrics:
            for name, dims in metric.variables.items():
                attrs = {"direction": metric.direction, "category": metric.category, "metric": metric.name,
                         **getattr(metric, "variable_attrs", {}).get(name, {})}
                variables[name] = VariableSpec(("model", *dims), "float64", attrs)
        if self.n_examples:
            variables["example_image"] = VariableSpec(
                ("model", "perturbation", "severity", "example", "channel", "y", "x"), "uint8",
                {"long_name": "perturbed example images (0..255)"})
            if self.methods:
                variables["example_attribution"] = VariableSpec(
                    ("model", "perturbation", "severity", "method", "example", "y", "x"), "float16",
                    {"long_name": "attribution maps of the example images"})
        return variables

    def _metric_components(self, scope: str) -> list[Component]:
        out = []
        for component in self.spec.metrics:
            is_model = component.name in {m.name for m in self.model_metrics}
            if (scope == "model") == is_model:
                out.append(component)
        return out

    def extra_coords(self) -> dict[str, Any]:
        coords: dict[str, Any] = {}
        for metric in self.model_metrics:
            coords.update({k: list(v) for k, v in metric.coords.items()})
        for metric in self.metrics:
            coords.update({k: list(v) for k, v in metric.value_coords.items()})
        return coords

    def attrs(self) -> dict[str, Any]:
        import captum

        from .. import __version__

        return {
            "robustviz_version": __version__,
            "torch_version": torch.__version__,
            "captum_version": captum.__version__,
            "spec": self.spec.to_json(),
            "spec_fingerprint": self.spec.fingerprint(),
            "data_fingerprint": data_fingerprint(self.data),
            "seed": self.spec.seed,
            "device": str(self.device),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "schema_version": SCHEMA_VERSION,
            "class_names": json.dumps(list(self.data.class_names)),
            "dataset": _short_label(self.spec.dataset),
            "perturbation_sources": json.dumps({name: getattr(p, "source", "computed on the fly")
                                                for name, p in zip(self.perturbation_names, self.perturbations)}),
            "attribution_target": self.target,
            "preset": describe_preset(self.spec.preset),
            "metric_methods": json.dumps({name: [m for m, on in zip(self.method_names, computed) if on]
                                          for name, computed, metric in zip(self.metric_names, self.metric_methods,
                                                                            self.metrics) if metric.per_method}),
            "notes": json.dumps(self.notes),
            "warnings": json.dumps(self.warnings),
        }


__all__ = ["CLEAN_ONLY", "CleanOnly", "Plan", "TARGETS", "check_method_support", "coordinate_labels",
           "data_fingerprint", "hooks_needed", "model_labels", "perturbation_labels", "resolve_device"]
