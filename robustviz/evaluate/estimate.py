"""What a spec will cost before it runs: model passes and time per component (``robustviz run --dry-run``).

Counts come from the plan and from *probes* (:mod:`robustviz.evaluate.probe`): each component is called once on
one real block (the engine's :data:`~robustviz.evaluate.engine.BLOCK` images) of the real model while a
:class:`~robustviz.evaluate.probe.PassCounter` counts the images that go forward and backward through the model.
The engine makes the same call on every block, so probe × blocks is the run's count. A component whose cost grows with one parameter (RISE's ``n_masks``, IG's
``n_steps``, max-sensitivity's ``n_samples`` …, ``SCALE_PARAMS``) is probed at 1 and 2 (all such parameters
of a metric × method pair together, a bilinear fit from 4 probes) and extrapolated, which is exact for costs
affine in each parameter; the others are probed at their real settings.

Time: a probe's own wall time (what one block costs, including work outside the model) plus, for extrapolated
components, the extra passes at the model's calibrated cost per image (one forward and one forward + backward of a
block, timed here). Model-level analyses (I-ASIDE) are probed on ``MODEL_METRIC_PROBE`` samples and scaled by
the samples they use. Not counted: loading the model and data, writing the store (small next to the model at 224 px).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from ..data.base import ImageSet
from ..spec import EvaluationSpec
from .engine import _n_blocks, block_sizes
from .plan import Plan, with_preset
from .probe import MODEL_METRIC_PROBE, SCALE_PARAMS, PassCounter, _pass_seconds, _Prober, calibrate

KINDS = ("predictions", "perturbation", "method", "metric", "fisher", "iaside", "model-metric")


@dataclass
class ComponentCost:
    """One row of the estimate: a component on one model, its passes (images) and estimated seconds."""

    model: str
    kind: str
    name: str
    forwards: float
    backwards: float
    seconds: float
    how: str  # "probed", "extrapolated from n_masks=1,2", …


@dataclass
class CostEstimate:
    """The estimate of a whole spec; ``str()`` is the dry-run table."""

    rows: list[ComponentCost]
    calibration: dict[str, dict[str, float]]  # per model: seconds per forward/backward image and per call
    max_hours: float | None = None
    notes: list[str] = field(default_factory=list)  # the plan's default choices (e.g. skipped metric × method)
    warnings: list[str] = field(default_factory=list)  # degenerate metric settings

    @property
    def total_seconds(self) -> float:
        return float(sum(r.seconds for r in self.rows))

    @property
    def total_forwards(self) -> float:
        return float(sum(r.forwards for r in self.rows))

    @property
    def total_backwards(self) -> float:
        return float(sum(r.backwards for r in self.rows))

    @property
    def exceeds_limit(self) -> bool:
        return self.max_hours is not None and self.total_seconds > self.max_hours * 3600

    def table(self, by: tuple[str, ...] = ("kind", "name")):
        """A pandas DataFrame of passes and seconds grouped ``by`` (columns of :class:`ComponentCost`)."""
        import pandas as pd

        frame = pd.DataFrame([vars(r) for r in self.rows])
        if frame.empty:
            return frame
        grouped = frame.groupby(list(by), sort=False)[["forwards", "backwards", "seconds"]].sum().reset_index()
        grouped["share"] = grouped["seconds"] / max(grouped["seconds"].sum(), 1e-12)
        return grouped

    def __str__(self) -> str:
        table = self.table()
        lines = [f"{'component':<34} {'forward passes':>15} {'backward passes':>16} {'time':>10} {'share':>6}"]
        for row in table.itertuples():
            lines.append(f"{row.kind + ': ' + row.name:<34} {row.forwards:>15,.0f} {row.backwards:>16,.0f} "
                         f"{_duration(row.seconds):>10} {row.share:>6.1%}")
        lines.append(f"{'total':<34} {self.total_forwards:>15,.0f} {self.total_backwards:>16,.0f} "
                     f"{_duration(self.total_seconds):>10}")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        if self.exceeds_limit:
            lines.append(f"warning: the estimated {_duration(self.total_seconds)} exceeds the limit of "
                         f"{self.max_hours:g} h (limits.max_hours / --max-hours)")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _block_multiplicities(plan: Plan) -> dict[str, float]:
    """How often the engine calls each kind of thing for one model over the whole run (a fresh store)."""
    k, n_perturbations = len(plan.spec.severities), len(plan.spec.perturbations)
    clean_blocks = perturbed_blocks = forward_calls = perturbation_calls = 0
    if not n_perturbations:  # no regions: the engine computes nothing per sample
        return {"clean": 0, "perturbed": 0, "forward_calls": 0, "forward": 0, "perturbation_batches": 0}
    forward, block = block_sizes(len(plan.data), *plan.data.images.shape[-2:])
    for chunk in range(plan.n_chunks):
        part = plan.chunk_slice(chunk)
        n = part.stop - part.start
        clean_blocks += _n_blocks(n, block)
        perturbed_blocks += n_perturbations * _n_blocks(k * n, block)
        forward_calls += _n_blocks(n, forward) + n_perturbations * _n_blocks(k * n, forward)
        perturbation_calls += k * n / plan.spec.batch_size  # in units of full batches
    return {"clean": clean_blocks, "perturbed": perturbed_blocks, "forward_calls": forward_calls, "forward": forward,
            "perturbation_batches": perturbation_calls}


def estimate(spec: EvaluationSpec | str, *, data: ImageSet | None = None,
             models: Mapping[str, torch.nn.Module] | None = None, max_hours: float | None = None) -> CostEstimate:
    """Model passes and time per component of ``spec`` (see the module docstring), without running it.

    ``max_hours`` (default: the spec's ``limits.max_hours``) sets :attr:`CostEstimate.exceeds_limit`.
    """
    if not isinstance(spec, EvaluationSpec):
        spec = EvaluationSpec.from_yaml(spec)
    plan = Plan.from_spec(spec, data=data, models=models)
    limit = max_hours if max_hours is not None else dict(spec.limits).get("max_hours")
    times = _block_multiplicities(plan)
    method_components = [with_preset(spec.preset, "method", c) for c in spec.methods]
    metric_components = [with_preset(spec.preset, "metric", c) for c in plan._metric_components("sample")]
    rows: list[ComponentCost] = []
    calibration: dict[str, dict[str, float]] = {}
    for model_index, model_name in enumerate(plan.model_names):
        model = plan.create_model(model_index)
        prober = _Prober(plan, model, {})
        rates = calibrate(model, prober.images)
        prober.rates = rates
        calibration[model_name] = rates

        def add(kind: str, name: str, counts: np.ndarray, seconds: float, how: str) -> None:
            rows.append(ComponentCost(model_name, kind, name, float(counts[0]), float(counts[1]), float(seconds),
                                      how))

        forward = np.array([times["forward_calls"] * times["forward"], 0, times["forward_calls"], 0])
        add("predictions", "forward", forward, _pass_seconds(forward, rates), "calibrated")
        batch = min(plan.spec.batch_size, len(plan.data))
        for label, perturbation in zip(plan.perturbation_names, plan.perturbations):
            counts, seconds = prober.perturbation(perturbation, label, batch)
            factor = times["perturbation_batches"] * plan.spec.batch_size / batch
            add("perturbation", label, counts * factor, seconds * factor, "probed")
        for label, component in zip(plan.method_names, method_components):
            counts, seconds, how = prober.method(component)
            factor = times["clean"] + times["perturbed"]
            add("method", label, counts * factor, seconds * factor, how)
        for name, component, metric, scope, flags in zip(plan.metric_names, metric_components, plan.metrics,
                                                          plan.metric_scopes, plan.metric_methods):
            factor = times["clean"] + (times["perturbed"] if scope == "all" else 0)
            kind = "fisher" if name.startswith("fisher") else "metric"
            pairs = [(f"{name} × {label}", method_component)
                     for label, method_component, on in zip(plan.method_names, method_components, flags) if on
                     ] if metric.per_method else [(name, None)]
            for row_name, method_component in pairs:
                counts, seconds, how = prober.metric(component, method_component, "method" in metric.needs)
                add(kind, row_name, counts * factor, seconds * factor, how)
        model_components = [with_preset(spec.preset, "metric", c) for c in plan._metric_components("model")]
        for component, metric in zip(model_components, plan.model_metrics):
            counts, seconds, how, factor = prober.model_metric(component, metric)
            kind = "iaside" if metric.name == "iaside" else "model-metric"
            add(kind, metric.name, counts * factor, seconds * factor,
                f"{how} on {MODEL_METRIC_PROBE} samples, scaled to the samples used")
        del model, prober
    return CostEstimate(rows, calibration, limit, list(plan.notes), list(plan.warnings))


__all__ = ["ComponentCost", "CostEstimate", "PassCounter", "SCALE_PARAMS", "calibrate", "estimate"]
