"""``EvaluationSpec``: the frozen, validated description of one evaluation (what goes into a cube).

A spec names registered components; each component is a name or a name with parameters
(``{"name": "rise", "n_masks": 2000}`` in YAML). It loads from YAML (``yaml.safe_load``), round-trips through
:meth:`EvaluationSpec.to_dict`, and its :meth:`EvaluationSpec.fingerprint` identifies the cube a store holds.
Names are checked against the registry by the evaluator (this module imports nothing of robustviz).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping


#: Presets known to the evaluator (their parameters live in robustviz.evaluate.presets).
PRESET_NAMES = ("paper", "fast")
#: Keys of ``limits``: the longest estimated run ``robustviz run`` starts without ``--force``.
LIMIT_KEYS = ("max_hours",)


class SpecError(ValueError):
    """An invalid evaluation spec; the message names the field and the fix."""


@dataclass(frozen=True)
class Component:
    """A registered component by name, with keyword parameters for its factory."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, value: Any, field_name: str) -> "Component":
        if isinstance(value, Component):
            return value
        if isinstance(value, str):
            if not value.strip():
                raise SpecError(f"{field_name}: empty name")
            return cls(value.strip())
        if isinstance(value, Mapping):
            if "name" not in value:
                raise SpecError(f"{field_name}: a component given as a mapping needs a 'name' key, got {dict(value)}")
            params = {k: _freeze(v) for k, v in value.items() if k != "name"}
            if isinstance(value.get("params"), Mapping):  # also accept {"name": ..., "params": {...}}
                params.pop("params")
                params.update({k: _freeze(v) for k, v in value["params"].items()})
            return cls(str(value["name"]), tuple(sorted(params.items())))
        raise SpecError(f"{field_name}: expected a name or a mapping with 'name', got {value!r}")

    @property
    def kwargs(self) -> dict[str, Any]:
        return {key: _thaw(value) for key, value in self.params}

    @property
    def label(self) -> str:
        """The coordinate label in the cube: the name, plus parameters when given (``rise[n_masks=2000]``)."""
        if not self.params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={_thaw(v)}' for k, v in self.params)}]"

    def to_value(self) -> str | dict[str, Any]:
        return self.name if not self.params else {"name": self.name, **self.kwargs}


class _FrozenMapping(tuple):
    """A mapping parameter frozen as its sorted items; thawed back to a dict (not to a list of pairs)."""


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _FrozenMapping(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, _FrozenMapping):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _components(values: Any, field_name: str, *, allow_empty: bool) -> tuple[Component, ...]:
    if values is None:
        values = ()
    if isinstance(values, (str, Mapping)):
        values = (values,)
    if not isinstance(values, Iterable):
        raise SpecError(f"{field_name}: expected a list of names, got {values!r}")
    parsed = tuple(Component.parse(v, field_name) for v in values)
    if not parsed and not allow_empty:
        raise SpecError(f"{field_name}: give at least one entry")
    labels = [c.label for c in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise SpecError(f"{field_name}: {', '.join(duplicates)} listed more than once")
    return parsed


@dataclass(frozen=True)
class EvaluationSpec:
    """One evaluation: models × perturbations × severities × methods × samples of a dataset, and the metrics."""

    models: tuple[Component, ...]
    perturbations: tuple[Component, ...]
    dataset: Component = Component("shapes")
    n_samples: int = 64
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    methods: tuple[Component, ...] = ()
    metrics: tuple[Component, ...] = ()
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    sample_chunk: int | None = None
    n_examples: int = 4
    name: str = "robustviz"
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=True)
    #: Named defaults for costly components ("paper" or "fast"); explicit parameters win. None: their own defaults.
    preset: str | None = None
    #: Cost limits checked by ``robustviz run`` before it starts, e.g. ``{"max_hours": 2}`` (not part of the cube).
    limits: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "models", _components(self.models, "models", allow_empty=False))
        set_(self, "perturbations", _components(self.perturbations, "perturbations", allow_empty=True))
        set_(self, "methods", _components(self.methods, "methods", allow_empty=True))
        set_(self, "metrics", _components(self.metrics, "metrics", allow_empty=True))
        set_(self, "dataset", Component.parse(self.dataset, "dataset"))
        severities = self.severities
        if isinstance(severities, int):
            severities = (severities,)
        try:
            severities = tuple(sorted({int(s) for s in severities}))
        except (TypeError, ValueError):
            raise SpecError(f"severities must be integers 1..5, got {self.severities!r}") from None
        if not severities or any(s < 1 or s > 5 for s in severities):
            raise SpecError(f"severities must be a non-empty subset of 1..5 (0, the clean image, is always "
                            f"included), got {self.severities!r}")
        set_(self, "severities", severities)
        for name in ("n_samples", "batch_size", "seed", "n_examples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{name} must be an integer, got {value!r}")
        if self.n_samples < 1:
            raise SpecError(f"n_samples must be ≥ 1, got {self.n_samples}")
        if self.batch_size < 1:
            raise SpecError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.n_examples < 0:
            raise SpecError(f"n_examples must be ≥ 0, got {self.n_examples}")
        if self.sample_chunk is not None and (not isinstance(self.sample_chunk, int) or self.sample_chunk < 1):
            raise SpecError(f"sample_chunk must be a positive integer or null, got {self.sample_chunk!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "mps") or
                                                     self.device.startswith("cuda")):
            raise SpecError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        set_(self, "extra", tuple(sorted((str(k), _freeze(v)) for k, v in dict(self.extra).items())))
        if self.preset is not None and self.preset not in PRESET_NAMES:
            raise SpecError(f"preset must be one of {', '.join(PRESET_NAMES)} (or left out), got {self.preset!r}")
        try:
            limits = dict(self.limits)
        except (TypeError, ValueError):
            limits = None
        if limits is None or set(limits) - set(LIMIT_KEYS):
            raise SpecError(f"limits must be a mapping with keys {', '.join(LIMIT_KEYS)}, got {self.limits!r}")
        for key, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise SpecError(f"limits.{key} must be a positive number, got {value!r}")
        set_(self, "limits", tuple(sorted(limits.items())))

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"a spec must be a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib

            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise SpecError(f"unknown spec field(s) {', '.join(hints)}; fields are {', '.join(sorted(known))}")
        for required in ("models",):
            if required not in data:
                raise SpecError(f"a spec needs {required!r}")
        values = dict(data)
        for key in ("extra", "limits"):
            if key in values and isinstance(values[key], Mapping):
                values[key] = tuple(values[key].items())
        if values.get("limits") is None:
            values.pop("limits", None)
        return cls(**values)

    @classmethod
    def from_yaml(cls, source: str | Path) -> "EvaluationSpec":
        """Load from a YAML file path or a YAML string (``yaml.safe_load``, refusing alias bombs)."""
        text = Path(source).read_text() if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and Path(source).is_file()) else str(source)
        return cls.from_dict(_load_yaml(text))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form: ``EvaluationSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            "name": self.name,
            "models": [c.to_value() for c in self.models],
            "dataset": self.dataset.to_value(),
            "n_samples": self.n_samples,
            "perturbations": [c.to_value() for c in self.perturbations],
            "severities": list(self.severities),
            "methods": [c.to_value() for c in self.methods],
            "metrics": [c.to_value() for c in self.metrics],
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device,
            "sample_chunk": self.sample_chunk,
            "n_examples": self.n_examples,
            "extra": {k: _thaw(v) for k, v in self.extra},
            # only when set, so that the fingerprints of earlier specs (and their stores) do not change
            **({"preset": self.preset} if self.preset is not None else {}),
            **({"limits": dict(self.limits)} if self.limits else {}),
        }

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> "EvaluationSpec":
        return EvaluationSpec.from_dict({**self.to_dict(), **changes})

    def fingerprint(self) -> str:
        """Hash of everything that determines the cube's values — not batch_size or device, which must not."""
        data = self.to_dict()
        for key in ("batch_size", "device", "name", "limits"):
            data.pop(key, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: The most nodes a spec may expand to once YAML aliases are followed. A real spec has a few hundred; a "billion
#: laughs" document of a few hundred bytes (nested ``&a [*b, *b, …]``) expands to billions and would take minutes and
#: gigabytes to freeze and fingerprint.
MAX_YAML_NODES = 10_000


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """Nodes of ``node`` with every alias expanded, counted in time linear in the document (memoised per node)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 0  # a recursive alias (&a [*a]) counts once instead of looping
        children = node.value if isinstance(node.value, list) else []
        total = 1
        for child in children:
            for part in (child if isinstance(child, tuple) else (child,)):  # mappings hold (key, value) pairs
                total += _expanded_size(part, sizes)
                if total > MAX_YAML_NODES:
                    break
        sizes[key] = total
    return sizes[key]


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a document whose aliases expand past :data:`MAX_YAML_NODES` nodes."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:
            raise SpecError(f"the spec expands to more than {MAX_YAML_NODES} values once its YAML aliases (*name) "
                            f"are followed; a spec needs far fewer — write the values out or use fewer nested "
                            f"aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise SpecError(f"the spec is not valid YAML: {error}") from error
    finally:
        loader.dispose()


__all__ = ["Component", "EvaluationSpec", "SpecError"]
