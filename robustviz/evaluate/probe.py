"""Probes for the cost estimate: count a component's model passes on one block of the real model, and time it.

:class:`PassCounter` hooks a model and counts the images that go forward and backward through it. A component whose
cost grows with one parameter (:data:`SCALE_PARAMS`) is probed at two small values of it and extrapolated (exact for
costs affine in each parameter); the others are probed as the spec sets them. See :mod:`robustviz.evaluate.estimate`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from .. import registry
from ..metrics.base import MetricContext
from ..rng import derive_seeds
from ..spec import Component
from .engine import _padded_blocks, block_sizes
from .plan import ENGINE_PARAMS, Plan

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
    forward and forward + backward passes of 1 and ``len(images)`` images (best of two)."""
    def best(batch: torch.Tensor, backward: bool) -> float:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            if backward:
                inputs = batch.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    torch.autograd.grad(model(inputs).sum(), inputs)
            else:
                with torch.no_grad():
                    model(batch)
            times.append(time.perf_counter() - started)
        return min(times)  # the first run may pay one-time setup

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
        index = next(_padded_blocks(len(data), block_sizes(len(data), *data.images.shape[-2:])[1]))[1]
        self.images = data.images[index].to(plan.device)
        self.labels = data.labels[index].to(plan.device)
        self.sample_ids = data.sample_ids[index]
        self.masks = None if data.masks is None else data.masks[index].to(plan.device)
        self.counter = PassCounter(model)
        with torch.no_grad():
            self.logits = model(self.images).float()
        self.target = self.logits.argmax(1)
        self.size = tuple(self.images.shape[-2:])
        self._maps: dict[Any, torch.Tensor] = {}

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
                key = (method_component, units)  # the same maps serve every metric of this method
                if key not in self._maps:
                    self._maps[key] = method.attribute(self.model, self.images, self.target, seeds=method_seeds)
                maps = self._maps[key]
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


__all__ = ["MODEL_METRIC_PROBE", "PassCounter", "SCALE_PARAMS", "Scale", "calibrate"]
