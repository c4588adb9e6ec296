"""Which explanation methods each metric is computed for, and which metric settings are degenerate.

``metrics: [{name: max_sensitivity, methods: [saliency, grad_cam]}]`` computes the metric for those methods only;
the other methods' cells read NaN (missing, never 0). Without ``methods``, a sensitivity metric skips the methods
whose every call is already many model passes (RISE and the other perturbation-based methods, SmoothGrad,
Score-CAM, Ablation-CAM): max-sensitivity re-runs the method ``n_samples`` times per image, so with RISE's 6000 masks it is ~89 % of a
default spec's cost. ``methods: all`` (or naming the method) computes them anyway.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..spec import Component, SpecError

#: Metric categories that re-run the explanation method on perturbed copies of each image.
RERUNNING_CATEGORIES = ("sensitivity",)
#: Methods skipped by default for such metrics: by family (every call is many forward passes) or by name.
COSTLY_FAMILIES = ("perturbation",)
COSTLY_METHODS = ("smoothgrad", "score_cam", "ablation_cam")  # one forward per noisy copy / per channel
#: Below this many masks RISE maps are dominated by the masks themselves (shared by clean and perturbed images).
RISE_MIN_MASKS = 1000
#: Below this many steps an insertion/deletion AUC is a coarse trapezoid of a handful of points.
MIN_CAUSAL_STEPS = 16


class DegenerateMetricWarning(UserWarning):
    """A metric whose scores say little for this setting (e.g. RISE with few masks and map similarity)."""


def is_costly(method: Any) -> bool:
    return getattr(method, "family", "") in COSTLY_FAMILIES or getattr(method, "name", "") in COSTLY_METHODS


def reruns_method(metric: Any) -> bool:
    return getattr(metric, "category", "") in RERUNNING_CATEGORIES and "method" in getattr(metric, "needs", ())


def resolve_metric_methods(component: Component, metric: Any, method_components: Sequence[Component],
                           method_labels: Sequence[str], methods: Sequence[Any], notes: list[str]) -> list[bool]:
    """One bool per method: whether ``metric`` is computed for it. Appends a note for each default skip."""
    requested = component.kwargs.get("methods")
    if not metric.per_method:
        if requested is not None:
            raise SpecError(f"metric {component.name!r} does not use attributions, so 'methods' does not apply; "
                            f"remove it")
        return []
    if requested is None:
        computed = [not (reruns_method(metric) and is_costly(method)) for method in methods]
        skipped = [label for label, on in zip(method_labels, computed) if not on]
        if skipped:
            notes.append(f"{component.name} skipped for {', '.join(skipped)} by default (it re-runs the method "
                         f"{getattr(metric, 'n_samples', 'many')} times per image); list them under the metric's "
                         f"'methods' (or methods: all) to compute it")
        return computed
    if requested == "all":
        return [True] * len(methods)
    if isinstance(requested, str):
        requested = [requested]
    if not isinstance(requested, (list, tuple)) or not all(isinstance(r, str) for r in requested):
        raise SpecError(f"metric {component.name!r}: methods must be 'all' or a list of method names, got "
                        f"{requested!r}")
    names = [c.name for c in method_components]
    unknown = [r for r in requested if r not in method_labels and r not in names]
    if unknown:
        raise SpecError(f"metric {component.name!r}: methods {', '.join(map(repr, unknown))} are not in the spec's "
                        f"methods ({', '.join(method_labels) or 'none'}); name methods the spec lists")
    return [label in requested or name in requested for label, name in zip(method_labels, names)]


def _similarity_name(metric: Any) -> str | None:
    """The map similarity a metric uses: its own name for the plain similarity metrics, ``similarity=`` for
    consistency/responsiveness; None for metrics that do not compare two maps."""
    if getattr(metric, "category", "") != "explanation-robustness":
        return None
    return getattr(metric, "similarity_name", getattr(metric, "name", None))


def check_degenerate(components: Sequence[Component], metrics: Sequence[Any], computed: Sequence[list[bool]],
                     method_labels: Sequence[str], methods: Sequence[Any], image_size: tuple[int, int]) -> list[str]:
    """Warnings for metric × setting combinations whose scores say little (recorded in the cube's attrs)."""
    warnings = []
    height, width = image_size
    for component, metric, flags in zip(components, metrics, computed):
        if metric.per_method and not any(flags):
            warnings.append(f"{component.name}: computed for no method (every cell NaN)")
        compares_maps = metric.category == "explanation-robustness" or reruns_method(metric)
        for label, method, on in zip(method_labels, methods, flags):
            if not on or not compares_maps or getattr(method, "name", "") != "rise":
                continue
            if method.n_masks < RISE_MIN_MASKS:
                warnings.append(
                    f"{component.name} × {label}: degenerate with {method.n_masks} RISE masks — the clean and "
                    f"perturbed maps share their masks, and with so few masks the maps are mostly the mask pattern: "
                    f"similarity stays near 1 (sensitivity near 0) whatever the perturbation; use ≥ "
                    f"{RISE_MIN_MASKS} masks (preset: paper)")
            if _similarity_name(metric) == "cosine":
                warnings.append(
                    f"{component.name} × {label}: cosine similarity of RISE maps is near 1 even between unrelated "
                    f"images (every RISE map carries a large positive offset); use an offset-free similarity, "
                    f"e.g. {{name: {component.name}, similarity: spearman}} or the spearman/ssim metrics")
        if metric.name in ("deletion_auc", "insertion_auc"):
            from ..metrics.faithfulness import default_step

            step = getattr(metric, "step", None) or default_step(height, width)
            n_steps = math.ceil(height * width / step)
            if n_steps < MIN_CAUSAL_STEPS:
                warnings.append(f"{component.name}: only {n_steps} steps of {step} pixels at {height}×{width}; the "
                                f"AUC is a coarse trapezoid (the paper uses ~224 steps: leave step out)")
    return warnings


__all__ = ["DegenerateMetricWarning", "check_degenerate", "is_costly", "resolve_metric_methods", "reruns_method"]
