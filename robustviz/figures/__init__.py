"""Publication figures from cubes (matplotlib ``Figure`` objects; one style, colour-blind safe)."""

from .critical_difference import cd_diagram
from .curves import severity_curves
from .explanations import aggatt_grid, attribution_gallery, cam_criteria_bars, example_grid, robustness_heatmap
from .export import write_all
from .grid import perturbation_grid
from .robustness import mce_bars, sid_spectra, srs_vs_accuracy
from .style import figure, style

__all__ = ["aggatt_grid", "attribution_gallery", "cam_criteria_bars", "cd_diagram", "example_grid", "figure",
           "mce_bars", "perturbation_grid", "robustness_heatmap", "severity_curves", "sid_spectra", "srs_vs_accuracy",
           "style", "write_all"]
