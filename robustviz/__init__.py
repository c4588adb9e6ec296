"""robustviz: how image classifiers, and the explanations of their decisions, hold up when the input is perturbed.

The curated public API::

    import robustviz as rv
    spec = rv.EvaluationSpec.from_yaml("spec.yaml")
    ds = rv.evaluate(spec, store="cube.zarr")     # xarray.Dataset: model × perturbation × severity × method × sample
    ds.rv.accuracy(); ds.rv.summary(); ds.rv.explore()

In a notebook, ``%load_ext robustviz`` registers the rich display of cubes and the panels.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from . import cube as _cube  # noqa: F401,E402  (registers the ds.rv accessor)
from .cube import CubeConflictError, CubeError, diff_cubes, merge_cubes, open_cube, to_netcdf  # noqa: E402
from .data.base import ImageSet  # noqa: E402
from .evaluate import CubeStore, StoreError, evaluate  # noqa: E402
from .evaluate.estimate import CostEstimate, estimate  # noqa: E402
from .evaluate.extend import extend_cube  # noqa: E402
from .registry import REGISTRY, RegistryError, create, list_names, register  # noqa: E402
from .spec import Component, EvaluationSpec, SpecError  # noqa: E402
from .validation import InputError  # noqa: E402


def explore(ds: Any, **kwargs: Any) -> Any:
    """Interactive explorer of a cube (ipywidgets)."""
    from .panels import explore as _explore

    return _explore(ds, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext robustviz``: rich HTML display of cubes and the panels in the notebook namespace."""
    from .panels.extension import load_ipython_extension as _load

    _load(ipython)


__all__ = [
    "Component", "CostEstimate", "CubeConflictError", "CubeError", "CubeStore", "EvaluationSpec", "ImageSet",
    "InputError", "REGISTRY", "RegistryError", "SpecError", "StoreError", "__version__", "create", "diff_cubes",
    "estimate", "evaluate", "explore", "extend_cube", "list_names", "load_ipython_extension", "merge_cubes",
    "open_cube", "register", "to_netcdf",
]
