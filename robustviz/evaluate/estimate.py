"""What a spec will cost before it runs: model passes and time per component (``robustviz run --dry-run``).

Counts come from the plan and from *probes*: each component is called once on one real block (the engine's
:data:`~robustviz.evaluate.engine.BLOCK` images of the dataset) of the real model while a :class:`PassCounter`
counts the images that go forward and backward through the model. The engine makes the same call on every block,
so probe × blocks is the run's count. A component whose cost grows with one parameter (RISE's ``n_masks``, IG's
``n_steps``, max-sensitivity's ``n_samples`` …, :data:`SCALE_PARAMS`) is probed at 1 and 2 (all such parameters
of a metric × method pair together, a bilinear fit from 4 probes) and extrapolated, which is exact for costs
affine in each parameter; the others are probed at their real settings.

Time: a probe's own wall time (what one block costs, including work outside the model) plus, for extrapolated
components, the extra passes at the model's calibrated cost per image (one forward and one forward + backward of a
block, timed here). Model-level analyses (I-ASIDE) are probed on :data:`MODEL_METRIC_PROBE` samples and scaled by
the samples they use. Not counted: loading the model and data, writing the store (small next to the model at 224 px).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from .. import registry
from ..data.base import ImageSet
from ..metrics.base import MetricContext
from ..rng import derive_seeds
from ..spec import Component, EvaluationSpec
from .engine import BLOCK, FORWARD_BLOCK, _n_blocks, _padded_blocks
from .plan import ENGINE_PARAMS, Plan, with_preset

def _causal_steps(step: int | None, size: tuple[int, int]) -> int:
    from ..metrics.faithfulness import default_step

    return math.ceil(size[0] * size[1] / (step or default_step(*size)))


def _causal_step(steps: int, size: tuple[int, int]) -> int:
    return math.ceil(size[0] * size[1] / steps)


@dataclass(frozen=True)
class Scale:
    """A parameter a component's cost is affine in, measured in ``units`` (masks, steps, draws): probed at 1 and
    2 units and extrapolated to the spec's value. ``to_units``/``from_units`` convert when the parameter itself
    is not the unit (insertion/deletion's ``step`` is pixels per step; its cost grows with the number of steps)."""

    param: str
    default: int | None
    to_units: Callable[[Any, tuple[int, int]], int] = lambda value, size: int(value)
    from_units: Callable[[int, tuple[int, int]], Any] = lambda units, size: units
    nodes: tuple[int, int] = (1, 2)  # the units probed
    applies: Callable[[Mapping[str, Any]], bool] = lambda params: True


SCALE_PARAMS = {
    ("method", "rise"): Scale("n_masks", 6000), ("method", "integrated_gradients"): Scale("n_steps", 32),
    ("method", "smoothgrad"): Scale("nt_samples", 16), ("method", "gradient_shap"): Scale("n_samples", 16),
    ("metric", "max_sensitivity"): Scale("n_samples", 10),
    ("metric", "max_sensitivity_quantus"): Scale("n_samples", 200),
    ("metric", "local_lipschitz"): Scale("n_samples", 200),
    ("metric", "deletion_auc"): Scale("step", None, _causal_steps, _causal_step),
    ("metric", "insertion_auc"): Scale("step", None, _causal_steps, _causal_step),
    # exact I-ASIDE: 2^M coalitions, probed with M = 1, 2 (2 and 4 coalitions)
    ("metric", "iaside"): Scale("n_bands", 8, lambda value, size: 2 ** int(value),
                                lambda units, size: int(units).bit_length() - 1, (2, 4),
                                lambda params: params.get("method", "exact") == "exact"),
}
#: Samples a model-level analysis is probed on (its cost is linear in the samples it uses).
MODEL_METRIC_PROBE = 2
KINDS = ("predictions", "perturbation", "method", "metric", "fisher", "iaside", "model-metric")


class PassCounter:
    """Counts the images (and calls) that go forward and backward through ``model`` while active.

    A forward hook adds each call's batch size; when the output carries a graph, a hook on it counts the backward
    pass that reaches it (``torch.autograd.grad`` or ``.backward``). Use as a context manager.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.forward_images = self.forward_calls = self.backward_images = self.backward_calls = 0
        self._handle: Any = None

    def _on_forward(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        first = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
        count = first.shape[0] if isinstance(first, torch.Tensor) and first.ndim else 1
        self.forward_calls += 1
        self.forward_images += count
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self._on_backward)

    def _on_backward(self, grad: torch.Tensor) -> None:
        self.backward_calls += 1
        self.backward_images += grad.shape[0] if grad.ndim else 1

    def counts(self) -> np.ndarray:
        return np.array([self.forward_images, self.backward_images, self.forward_calls, self.backward_calls], float)

    def __enter__(self) -> "PassCounter":
        self._handle = self.model.register_forward_hook(self._on_forward)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()


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


def _timed(function: Callable[[], Any], counter: PassCounter, *, repeat_below: float = 2.0
           ) -> tuple[np.ndarray, float]:
    """Counts and wall seconds of ``function()``; cheap calls run twice (the first may pay one-time setup)."""
    with counter, warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # probes at reduced settings (e.g. one I-ASIDE band) may warn
        before = counter.counts()
        started = time.perf_counter()
        function()
        seconds = time.perf_counter() - started
        counts = counter.counts() - before
        if seconds < repeat_below:
            started = time.perf_counter()
            function()
            seconds = min(seconds, time.perf_counter() - started)
    return counts, seconds


def _silent(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with warnings off: components built at reduced settings (one I-ASIDE band) may warn."""
    def call(*args: Any) -> Any:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return function(*args)

    return call


def calibrate(model: torch.nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Seconds per forward image/call and per backward image/call of ``model`` on real-shaped ``images``, from
    forward and forward + backward passes of 1 and ``len(images)`` images (best of two after a warm-up)."""
    def best(batch: torch.Tensor, backward: bool) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            if backward:
                inputs = batch.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    torch.autograd.grad(model(inputs).sum(), inputs)
            else:
                with torch.no_grad():
                    model(batch)
            times.append(time.perf_counter() - started)
        return min(times[1:])

    size = images.shape[0]
    forward_1, forward_n = best(images[:1], False), best(images, False)
    both_1, both_n = best(images[:1], True), best(images, True)
    per_image = max((forward_n - forward_1) / max(size - 1, 1), forward_n / size * 0.5)
    per_call = max(forward_1 - per_image, 0.0)
    backward_image = max((both_n - both_1) / max(size - 1, 1) - per_image, per_image * 0.5)
    backward_call = max(both_1 - forward_1 - backward_image, 0.0)
    return {"forward_image": per_image, "forward_call": per_call, "backward_image": backward_image,
            "backward_call": backward_call}


def _pass_seconds(counts: np.ndarray, rates: Mapping[str, float]) -> float:
    forward_images, backward_images, forward_calls, backward_calls = counts
    return float(forward_images * rates["forward_image"] + forward_calls * rates["forward_call"]
                 + backward_images * rates["backward_image"] + backward_calls * rates["backward_call"])


def _scaled(kind: str, component: Component, size: tuple[int, int]) -> tuple[str, int, tuple[int, int]] | None:
    """``(parameter, units at the spec's value, probed units)`` when the component is probed at two smaller
    values and extrapolated, else None."""
    scale = SCALE_PARAMS.get((kind, component.name))
    if scale is None or not scale.applies(component.kwargs):
        return None
    value = component.kwargs.get(scale.param, scale.default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        return None
    units = scale.to_units(value, size)
    return (scale.param, units, scale.nodes) if units > scale.nodes[1] else None


def _override(kind: str, component: Component, scaled: tuple[str, int] | None, units: int | None,
              size: tuple[int, int]) -> dict[str, Any]:
    if scaled is None or units is None:
        return {}
    return {scaled[0]: SCALE_PARAMS[(kind, component.name)].from_units(units, size)}


def _create(kind: str, component: Component, **overrides: Any) -> Any:
    engine_keys = ENGINE_PARAMS.get(kind, ())
    params = {k: v for k, v in component.kwargs.items() if k not in engine_keys}
    return registry.create(kind, component.name, **{**params, **overrides})


def _grid(factors: list[tuple[str, int, tuple[int, int]]]) -> Iterator[tuple[tuple[int, ...], float]]:
    """Probe points (two nodes per scaled parameter) and their multilinear-extrapolation weights at the real
    values (Lagrange weights: exact for costs affine in each parameter)."""
    for point in np.ndindex(*([2] * len(factors))):
        weight = 1.0
        for (_, value, (low, high)), index in zip(factors, point):
            weight *= (high - value) / (high - low) if index == 0 else (value - low) / (high - low)
        yield tuple(nodes[i] for (_, _, nodes), i in zip(factors, point)), weight


class _Prober:
    """Probes of one model on one block of clean images."""

    def __init__(self, plan: Plan, model: torch.nn.Module, rates: Mapping[str, float]):
        self.plan, self.model, self.rates = plan, model, rates
        data = plan.data
        index = next(_padded_blocks(len(data)))[1]
        self.images = data.images[index].to(plan.device)
        self.labels = data.labels[index].to(plan.device)
        self.sample_ids = data.sample_ids[index]
        self.masks = None if data.masks is None else data.masks[index].to(plan.device)
        self.counter = PassCounter(model)
        with torch.no_grad():
            self.logits = model(self.images).float()
        self.target = self.logits.argmax(1)
        self.size = tuple(self.images.shape[-2:])

    def _measure(self, run: Callable[[Any], Any], factors: list[tuple[str, int]],
                 prepare: Callable[[dict[str, int]], Any] = lambda overrides: overrides
                 ) -> tuple[np.ndarray, float, str]:
        """Counts and seconds of one engine call at the real parameter values (extrapolated when scaled);
        ``prepare(overrides)`` builds the call's inputs outside the timing and the counting."""
        prepare = _silent(prepare)
        if not factors:
            state = prepare({})
            counts, seconds = _timed(lambda: run(state), self.counter)
            return counts, seconds, "probed"
        total = np.zeros(4)
        base_seconds = base_counts = None
        for point, weight in _grid(factors):
            state = prepare(dict(zip([f[0] for f in factors], point)))
            counts, seconds = _timed(lambda: run(state), self.counter)
            total += weight * counts
            if base_seconds is None:
                base_seconds, base_counts = seconds, counts
        extra = _pass_seconds(total - base_counts, self.rates)
        how = "extrapolated: " + ", ".join(f"{name} {low}, {high} → {value} units"
                                           for name, value, (low, high) in factors)
        return total, base_seconds + extra, how

    def method(self, component: Component) -> tuple[np.ndarray, float, str]:
        scaled = _scaled("method", component, self.size)
        seeds = derive_seeds(self.plan.spec.seed, self.sample_ids, "method", component.label)

        def prepare(overrides: dict[str, int]) -> Any:
            units = overrides.get(scaled[0]) if scaled else None
            return _create("method", component, **_override("method", component, scaled, units, self.size))

        return self._measure(lambda method: method.attribute(self.model, self.images, self.target, seeds=seeds),
                             [scaled] if scaled else [], prepare)

    def metric(self, component: Component, method_component: Component | None, reruns: bool
               ) -> tuple[np.ndarray, float, str]:
        """``reruns``: the metric calls the method itself (its cost then scales with the method's)."""
        metric_scale = _scaled("metric", component, self.size)
        method_scale = _scaled("method", method_component, self.size) if method_component is not None else None
        factors = [(f"metric {metric_scale[0]}", *metric_scale[1:])] if metric_scale else []
        if method_scale and reruns:
            factors.append((f"method {method_scale[0]}", *method_scale[1:]))
        seeds = derive_seeds(self.plan.spec.seed, self.sample_ids, "metric", component.name, "clean", 0)

        def prepare(overrides: dict[str, int]) -> tuple[Any, MetricContext]:
            units = overrides.get(f"metric {metric_scale[0]}") if metric_scale else None
            metric = _create("metric", component, **_override("metric", component, metric_scale, units, self.size))
            context = MetricContext(model=self.model, images=self.images, clean_images=self.images,
                                    labels=self.labels, logits=self.logits, clean_logits=self.logits,
                                    masks=self.masks, seeds=seeds, target=self.target, perturbation="clean")
            if method_component is not None:
                # the maps' values do not change the metric's cost: a method not re-run is made at scale 1
                units = overrides.get(f"method {method_scale[0]}", method_scale[2][0]) if method_scale else None
                method = _create("method", method_component,
                                 **_override("method", method_component, method_scale, units, self.size))
                method_seeds = derive_seeds(self.plan.spec.seed, self.sample_ids, "method", method_component.label)
                maps = method.attribute(self.model, self.images, self.target, seeds=method_seeds)
                context.method, context.attributions, context.clean_attributions = method, maps, maps
                context.method_seeds = method_seeds
            return metric, context

        return self._measure(lambda state: state[0](state[1]), factors, prepare)

    def perturbation(self, perturbation: Any, label: str, batch: int) -> tuple[np.ndarray, float]:
        severities = self.plan.spec.severities
        severity = severities[len(severities) // 2]
        images = self.plan.data.images[:batch].to(self.plan.device)
        labels = self.plan.data.labels[:batch].to(self.plan.device)
        ids = self.plan.data.sample_ids[:batch]
        seeds = derive_seeds(self.plan.spec.seed, ids, "perturbation", label, severity)
        return _timed(lambda: perturbation(images, severity, seeds=seeds, model=self.model, labels=labels,
                                           sample_ids=ids), self.counter)

    def model_metric(self, component: Component, metric: Any) -> tuple[np.ndarray, float, str, float]:
        """Counts, seconds and how on :data:`MODEL_METRIC_PROBE` samples, and the factor to the samples the metric
        uses."""
        count = len(self.plan.data)
        used = min(count, getattr(metric, "n_samples", None) or count)
        probe = min(used, MODEL_METRIC_PROBE)
        images, labels = self.plan.data.images[:probe].to(self.plan.device), self.plan.data.labels[:probe]
        scaled = _scaled("metric", component, self.size)

        def prepare(overrides: dict[str, int]) -> Any:
            units = overrides.get(scaled[0]) if scaled else None
            return _create("metric", component, **_override("metric", component, scaled, units, self.size))

        counts, seconds, how = self._measure(
            lambda probed: probed.compute(self.model, images, labels.to(self.plan.device), seed=self.plan.spec.seed),
            [scaled] if scaled else [], prepare)
        return counts, seconds, how, used / probe


def _block_multiplicities(plan: Plan) -> dict[str, float]:
    """How often the engine calls each kind of thing for one model over the whole run (a fresh store)."""
    k, n_perturbations = len(plan.spec.severities), len(plan.spec.perturbations)
    clean_blocks = perturbed_blocks = forward_calls = perturbation_calls = 0
    if not n_perturbations:  # no regions: the engine computes nothing per sample
        return {"clean": 0, "perturbed": 0, "forward_calls": 0, "perturbation_batches": 0}
    for chunk in range(plan.n_chunks):
        part = plan.chunk_slice(chunk)
        n = part.stop - part.start
        clean_blocks += _n_blocks(n)
        perturbed_blocks += n_perturbations * _n_blocks(k * n)
        forward_calls += _n_blocks(n, FORWARD_BLOCK) + n_perturbations * _n_blocks(k * n, FORWARD_BLOCK)
        perturbation_calls += k * n / plan.spec.batch_size  # in units of full batches
    return {"clean": clean_blocks, "perturbed": perturbed_blocks, "forward_calls": forward_calls,
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

        forward = np.array([times["forward_calls"] * FORWARD_BLOCK, 0, times["forward_calls"], 0])
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
