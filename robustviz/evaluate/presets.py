"""Presets: named default parameters for the costly methods and metrics (``preset: paper`` or ``preset: fast``).

A preset only fills parameters the spec leaves out: ``{name: rise, n_masks: 2000}`` under ``preset: paper`` keeps
2000 masks. ``paper`` follows the publications (see docs/guide/papers_settings.md for the sources and what each
costs); ``fast`` is the light demo setting (a laptop CPU runs the whole zoo in minutes) — its maps and AUCs are
coarse and not comparable with published numbers.
"""

from __future__ import annotations

from typing import Any, Mapping

PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "paper": {
        "method": {
            # Petsiuk et al. 2018: N = 4000 masks (ResNet-50), s = 8, p = 0.5 in the paper's code; 6000 in DESIGN
            "rise": {"n_masks": 4000, "batch_masks": 256},
            # Sundararajan et al. 2017 use 20-300 steps; Captum's default (50) is the common choice
            "integrated_gradients": {"n_steps": 50},
            # Smilkov et al. 2017: 50 noisy samples, σ = 15 % of the input range
            "smoothgrad": {"nt_samples": 50, "stdevs": 0.15},
        },
        "metric": {
            # Petsiuk et al. 2018: 224 pixels per step at 224² (the default step scales to about 224 steps)
            "deletion_auc": {"step": None},
            "insertion_auc": {"step": None},
            # I-ASIDE 2024: M = 8 bands, exact Shapley over the 2^8 coalitions
            "iaside": {"n_bands": 8, "method": "exact"},
        },
    },
    "fast": {
        "method": {
            "rise": {"n_masks": 16, "batch_masks": 256},
            "integrated_gradients": {"n_steps": 4},
            "smoothgrad": {"nt_samples": 4},
        },
        "metric": {
            "deletion_auc": {"step": 1024},
            "insertion_auc": {"step": 1024},
            "iaside": {"n_bands": 8, "method": "exact"},
            "fisher_lmax": {"at": "clean"},
            "max_sensitivity": {"n_samples": 4},
            "local_lipschitz": {"n_samples": 8},
        },
    },
}

PRESET_NAMES = tuple(PRESETS)  # the same names as robustviz.spec.PRESET_NAMES


def preset_defaults(preset: str | None, kind: str, name: str) -> Mapping[str, Any]:
    """Parameters ``preset`` gives component ``name`` of ``kind`` (empty without a preset); explicit spec
    parameters override them. A ``None`` value means "the component's own default" (nothing is passed)."""
    if preset is None:
        return {}
    values = PRESETS[preset].get(kind, {}).get(name, {})
    return {key: value for key, value in values.items() if value is not None}


def describe(preset: str | None) -> str:
    """One line for the CLI and the cube attrs: which preset, and whether it is the papers' setting."""
    if preset is None:
        return "none (each component's own defaults)"
    if preset == "paper":
        return "paper (the publications' settings; see docs/guide/papers_settings)"
    return f"{preset} (light settings for a quick look, not the papers'; see docs/guide/papers_settings)"


__all__ = ["PRESETS", "PRESET_NAMES", "describe", "preset_defaults"]
