"""One registry for every pluggable kind of thing in robustviz.

Models, datasets, perturbations, explanation methods and metrics are all looked up by name through
:data:`REGISTRY`. Built-in entries register themselves with the :func:`register` decorator when their module is
imported; third-party packages add entries through ``entry_points(group="robustviz.<kind>")`` — the entry point's
object is the factory (a class or a function returning an instance).

This module imports nothing of robustviz, so every layer may use it.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

KINDS: tuple[str, ...] = ("model", "dataset", "perturbation", "method", "metric")

# Modules whose import registers the built-in entries of each kind. Loaded lazily on first lookup so that
# ``import robustviz.registry`` stays cheap and has no import cycles.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "model": ("robustviz.models",),
    "dataset": ("robustviz.data",),
    "perturbation": ("robustviz.perturbations",),
    "method": ("robustviz.methods",),
    "metric": ("robustviz.metrics",),
}


class RegistryError(KeyError):
    """An unknown kind or name; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message and show the quotes
        return str(self.args[0]) if self.args else ""


class ParameterError(RegistryError, TypeError):
    """A component created with a parameter its factory does not take (or without one it needs)."""


def _check_parameters(kind: str, name: str, factory: Callable[..., Any], params: dict[str, Any]) -> None:
    """A :class:`ParameterError` with a "did you mean" when ``params`` do not fit ``factory``'s signature."""
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no introspectable signature: let the call itself complain
        return
    accepted = [p.name for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not (
                    isinstance(factory, functools.partial) and p.name in factory.keywords)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    listing = f" (its parameters: {', '.join(accepted) or 'none'})"
    if not takes_any:
        for key in params:
            if key not in accepted:
                close = difflib.get_close_matches(str(key), accepted, n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ParameterError(f"unknown parameter {key!r} for {kind} {name!r}{hint}{listing}")
    try:
        signature.bind(**params)
    except TypeError as error:
        raise ParameterError(f"cannot create {kind} {name!r} with parameters {params}: {error}{listing}") from None


@dataclass
class Entry:
    """A registered factory and the metadata it was registered with."""

    kind: str
    name: str
    factory: Callable[..., Any]
    metadata: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name → factory tables, one per kind, with entry-point plugins and "did you mean" errors."""

    def __init__(self, kinds: Iterable[str] = KINDS, builtin_modules: dict[str, tuple[str, ...]] | None = None):
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in kinds}
        self._builtin_modules = dict(builtin_modules or {})
        self._loaded: set[str] = set()

    # -- registration -------------------------------------------------------------------------------------------
    def register(self, kind: str, name: str | None = None, *, replace: bool = False, **metadata: Any):
        """Decorator registering a class or factory function under ``name`` (default: its ``name`` attribute or
        ``__name__``)."""
        table = self._table(kind, load=False)

        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            key = name or getattr(factory, "name", None) or factory.__name__
            if not isinstance(key, str):
                key = factory.__name__
            if key in table and not replace and table[key].factory is not factory:
                raise ValueError(
                    f"a {kind} named {key!r} is already registered (by {table[key].factory!r}); "
                    f"choose another name or pass replace=True"
                )
            table[key] = Entry(kind, key, factory, dict(metadata))
            return factory

        return decorator

    def add(self, kind: str, name: str, factory: Callable[..., Any], *, replace: bool = False, **metadata: Any) -> None:
        """Register ``factory`` without the decorator syntax."""
        self.register(kind, name, replace=replace, **metadata)(factory)

    # -- lookup ---------------------------------------------------------------------------------------------------
    def list(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (built-ins and plugins)."""
        return sorted(self._table(kind))

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``. A name ``"prefix:rest"`` not registered itself resolves to the factory
        registered as ``"prefix:"``, called with ``name="rest"`` (e.g. ``"torchvision:resnet50"``)."""
        table = self._table(kind)
        if name not in table:
            prefix, separator, rest = str(name).partition(":")
            if separator and rest and f"{prefix}:" in table:
                family = table[f"{prefix}:"]
                return Entry(kind, name, functools.partial(family.factory, name=rest), dict(family.metadata))
            raise RegistryError(self._unknown_message(kind, name, table))
        return table[name]

    def get(self, kind: str, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``."""
        return self.entry(kind, name).factory

    def create(self, kind: str, name: str, **params: Any) -> Any:
        """Build the ``kind`` called ``name`` with ``params``; bad parameters name the factory in the error."""
        factory = self.get(kind, name)
        _check_parameters(kind, name, factory, params)
        try:
            return factory(**params)
        except TypeError as error:
            if "argument" in str(error):
                raise TypeError(f"cannot create {kind} {name!r} with parameters {params}: {error}") from error
            raise

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._table(kind)

    # -- internals ------------------------------------------------------------------------------------------------
    def _table(self, kind: str, load: bool = True) -> dict[str, Entry]:
        if kind not in self._entries:
            close = difflib.get_close_matches(kind, self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise RegistryError(f"unknown registry kind {kind!r}; kinds are {', '.join(self._entries)}.{hint}")
        if load and kind not in self._loaded:
            self._loaded.add(kind)
            for module in self._builtin_modules.get(kind, ()):
                importlib.import_module(module)
            self._load_entry_points(kind)
        return self._entries[kind]

    def _load_entry_points(self, kind: str) -> None:
        for point in entry_points(group=f"robustviz.{kind}"):
            if point.name in self._entries[kind]:
                continue
            try:
                factory = point.load()
            except Exception as error:  # a broken plugin must not break robustviz itself
                import warnings

                warnings.warn(f"robustviz plugin {point.name!r} ({point.value}) failed to load: {error}", stacklevel=3)
                continue
            self._entries[kind][point.name] = Entry(kind, point.name, factory, {"plugin": point.value})

    @staticmethod
    def _unknown_message(kind: str, name: str, table: dict[str, Entry]) -> str:
        close = difflib.get_close_matches(str(name), table, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        known = ", ".join(sorted(table)) or "(none)"
        return f"unknown {kind} {name!r}.{hint} Registered {kind}s: {known}. See `robustviz info` for all names."


REGISTRY = Registry(KINDS, _BUILTIN_MODULES)


def register(kind: str, name: str | None = None, *, replace: bool = False, **metadata: Any):
    """Register a factory of ``kind`` in the global registry (decorator)."""
    return REGISTRY.register(kind, name, replace=replace, **metadata)


def create(kind: str, name: str, **params: Any) -> Any:
    """Build a registered object by kind and name."""
    return REGISTRY.create(kind, name, **params)


def get(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered for ``kind``/``name``."""
    return REGISTRY.get(kind, name)


def list_names(kind: str) -> list[str]:
    """Registered names of ``kind``."""
    return REGISTRY.list(kind)


__all__ = ["KINDS", "REGISTRY", "Entry", "ParameterError", "Registry", "RegistryError", "create", "get", "list_names",
           "register"]
