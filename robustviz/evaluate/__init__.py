"""The evaluator: spec → cube, batched, resumable, optionally distributed."""

from .engine import RegionComputer, evaluate
from .plan import Plan, resolve_device
from .store import CubeStore, StoreError

__all__ = ["CubeStore", "Plan", "RegionComputer", "StoreError", "evaluate", "resolve_device"]
