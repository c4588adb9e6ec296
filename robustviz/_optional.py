"""Import helpers for the modules each layer owns, and for optional extras."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_submodules(package: str, names: tuple[str, ...]) -> None:
    """Import ``package.name`` for each name so their ``@register`` decorators run; a module that does not exist
    yet is skipped, any other import error propagates."""
    for name in names:
        full = f"{package}.{name}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as error:
            if error.name != full:
                raise


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the ``pip install`` line."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the optional package {module!r}, which is not installed "
            f"({error}). Install it with: pip install \"robustviz[{extra}]\" -c constraints.txt"
        ) from error


__all__ = ["import_submodules", "require"]
