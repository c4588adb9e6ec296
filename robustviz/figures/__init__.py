"""Publication figures from cubes (matplotlib ``Figure`` objects; one style, colour-blind safe)."""

from .._optional import import_submodules
from .curves import severity_curves
from .style import figure, style

import_submodules(__name__, ("grid", "robustness", "explanations", "tables", "export"))

__all__ = ["figure", "severity_curves", "style"]
