"""The evaluator: spec → batched model/perturbation/method/metric loop → cube (in memory or in a zarr store).

Work is split into regions (model × perturbation × sample chunk). For each model and chunk the clean pass
(logits, attributions, severity-0 metrics) is computed once and reused for every perturbation. Every random draw is
keyed by (run seed, sample id, what, severity) through :mod:`robustviz.rng`, so results do not depend on the batch
size, on the order of regions, on resuming, or on which worker computed them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import xarray as xr

from ..cube.template import make_template, materialize
from ..data.base import ImageSet
from ..metrics.base import MetricContext
from ..rng import derive_seeds
from ..spec import EvaluationSpec
from ..validation import InputError
from .plan import Plan
from .store import CubeStore

RegionKey = tuple[int, int, int]  # (model, perturbation, chunk)


@dataclass
class CleanPass:
    """What the unperturbed samples of one (model, chunk) give: reused for every perturbation and severity 0."""

    images: torch.Tensor
    labels: torch.Tensor
    sample_ids: torch.Tensor
    masks: torch.Tensor | None
    logits: torch.Tensor
    target: torch.Tensor
    attributions: list[torch.Tensor]  # one N×1×H×W per method
    outputs: dict[str, np.ndarray]  # severity-0 values of every per-sample variable, without severity axis


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class RegionComputer:
    """Computes regions of one plan; holds the current model and its clean passes (one model at a time)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._model_index: int | None = None
        self._model: torch.nn.Module | None = None
        self._clean: dict[int, CleanPass] = {}

    # -- models and clean passes ---------------------------------------------------------------------------------
    def model(self, index: int) -> torch.nn.Module:
        if self._model_index != index:
            self._model, self._clean = None, {}
            self._model = self.plan.create_model(index)
            self._model_index = index
        assert self._model is not None
        return self._model

    def _forward(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        size = self.plan.spec.batch_size
        try:
            with torch.no_grad():
                return torch.cat([model(images[part]).float() for part in _batches(images.shape[0], size)])
        except RuntimeError as error:
            name = self.plan.model_names[self._model_index or 0]
            channels = images.shape[1]
            raise InputError(f"model {name!r} failed on images of shape {tuple(images.shape[1:])} "
                             f"({channels} channel{'s' if channels != 1 else ''}): {error}. Check that the "
                             f"dataset's channels and image size match what the model expects") from error

    def _attribute(self, model: torch.nn.Module, images: torch.Tensor, target: torch.Tensor,
                   sample_ids: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for component, method in zip(self.plan.spec.methods, self.plan.methods):
            seeds = derive_seeds(self.plan.spec.seed, sample_ids, "method", component.label)
            maps.append(torch.cat([
                method.attribute(model, images[part], target[part], seeds=seeds[part])
                for part in _batches(images.shape[0], self.plan.spec.batch_size)]))
        return maps

    def clean(self, model_index: int, chunk: int) -> CleanPass:
        model = self.model(model_index)
        if chunk not in self._clean:
            part = self.plan.chunk_slice(chunk)
            data = self.plan.data
            device = self.plan.device
            images = data.images[part].to(device)
            labels = data.labels[part].to(device)
            sample_ids = data.sample_ids[part]
            masks = None if data.masks is None else data.masks[part].to(device)
            logits = self._forward(model, images)
            if logits.ndim != 2 or logits.shape[1] != len(data.class_names):
                raise InputError(f"model {self.plan.model_names[model_index]!r} returned logits of shape "
                                 f"{tuple(logits.shape)}; expected (N, {len(data.class_names)}) for dataset "
                                 f"{self.plan.spec.dataset.label!r}")
            target = {"clean_pred": logits.argmax(1), "label": labels, "pred": logits.argmax(1)}[self.plan.target]
            attributions = self._attribute(model, images, target, sample_ids)
            clean = CleanPass(images, labels, sample_ids, masks, logits, target, attributions, {})
            clean.outputs = self._cell(model, clean, images, logits, attributions, "clean", 0)
            self._clean[chunk] = clean
        return self._clean[chunk]

    # -- one cell: a (perturbation, severity) of a chunk ---------------------------------------------------------
    def _cell(self, model: torch.nn.Module, clean: CleanPass, images: torch.Tensor, logits: torch.Tensor,
              attributions: list[torch.Tensor], perturbation: str, severity: int) -> dict[str, np.ndarray]:
        plan = self.plan
        probs = logits.softmax(1)
        pred = logits.argmax(1)
        out: dict[str, np.ndarray] = {
            "correct": (pred == clean.labels).cpu().numpy(),
            "pred": pred.cpu().numpy().astype(np.int64),
            "prob_true": probs.gather(1, clean.labels[:, None])[:, 0].cpu().numpy().astype(np.float32),
            "confidence": probs.max(1).values.cpu().numpy().astype(np.float32),
        }
        metric_components = [c for c in plan.spec.metrics if c.name not in {m.name for m in plan.model_metrics}]
        for component, metric in zip(metric_components, plan.metrics):
            key = "clean" if severity == 0 else perturbation
            seeds = derive_seeds(plan.spec.seed, clean.sample_ids, "metric", component.label, key, severity)
            base = MetricContext(model=model, images=images, clean_images=clean.images, labels=clean.labels,
                                 logits=logits, clean_logits=clean.logits, masks=clean.masks, seeds=seeds,
                                 target=clean.target, perturbation=perturbation, severity=severity)
            if metric.per_method:
                values = []
                for method, maps, clean_maps in zip(plan.methods, attributions, clean.attributions):
                    base.method, base.attributions, base.clean_attributions = method, maps, clean_maps
                    values.append(self._metric_batches(metric, base))
                out[component.label] = np.stack(values)  # method × sample
            else:
                out[component.label] = self._metric_batches(metric, base)
        if plan.n_examples:
            n = plan.n_examples
            out["example_image"] = (images[:n] * 255).round().to(torch.uint8).cpu().numpy()
            if plan.methods:
                out["example_attribution"] = np.stack([m[:n, 0].cpu().numpy().astype(np.float16)
                                                       for m in attributions])
        return out

    def _metric_batches(self, metric: Any, context: MetricContext) -> np.ndarray:
        size = self.plan.spec.batch_size
        results = []
        for part in _batches(context.images.shape[0], size):
            sliced = MetricContext(**{
                name: (value[part] if isinstance(value, torch.Tensor) and value.ndim and
                       value.shape[0] == context.images.shape[0] and name != "model" else value)
                for name, value in vars(context).items()})
            results.append(metric(sliced).cpu().numpy())
        return np.concatenate(results).astype(np.float32)

    # -- a whole region -------------------------------------------------------------------------------------------
    def region(self, model_index: int, perturbation_index: int, chunk: int) -> dict[str, np.ndarray]:
        """Arrays of one region, each laid out as its variable's dims without model and perturbation."""
        plan = self.plan
        model = self.model(model_index)
        clean = self.clean(model_index, chunk)
        component = plan.spec.perturbations[perturbation_index]
        perturbation = plan.perturbations[perturbation_index]
        cells = [clean.outputs]
        for severity in plan.spec.severities:
            seeds = derive_seeds(plan.spec.seed, clean.sample_ids, "perturbation", component.label, severity)
            perturbed = torch.cat([
                perturbation(clean.images[part], severity, seeds=seeds[part], model=model,
                             labels=clean.labels[part], sample_ids=clean.sample_ids[part])
                for part in _batches(clean.images.shape[0], plan.spec.batch_size)])
            if not bool(torch.isfinite(perturbed).all()):
                raise RuntimeError(f"perturbation {component.label!r} at severity {severity} produced NaN/inf "
                                   f"values; this is a bug in that perturbation")
            logits = self._forward(model, perturbed)
            target = logits.argmax(1) if plan.target == "pred" else clean.target
            attributions = self._attribute(model, perturbed, target, clean.sample_ids)
            cells.append(self._cell(model, clean, perturbed, logits, attributions, component.label, severity))
        # severity first; examples are the first samples of chunk 0 only
        return {name: np.stack([cell[name] for cell in cells]) for name in cells[0]
                if chunk == 0 or not name.startswith("example_")}

    def model_level(self, model_index: int) -> dict[str, np.ndarray]:
        plan = self.plan
        model = self.model(model_index)
        data = plan.data
        out: dict[str, np.ndarray] = {}
        for metric in plan.model_metrics:
            results = metric.compute(model, data.images.to(plan.device), data.labels.to(plan.device),
                                     seed=plan.spec.seed)
            for name, dims in metric.variables.items():
                if name not in results:
                    raise RuntimeError(f"model metric {metric.name!r} did not return its variable {name!r}")
                values = np.asarray(results[name][1], dtype=np.float64)
                out[name] = values
        return out


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="region", leave=True)


def build_template(plan: Plan) -> xr.Dataset:
    data = plan.data
    example_ids = data.sample_ids[: plan.n_examples].tolist()
    return make_template(
        models=plan.model_names,
        perturbations=[c.label for c in plan.spec.perturbations],
        families=[getattr(p, "family", "") or "" for p in plan.perturbations],
        severities=plan.spec.severities,
        sample_ids=data.sample_ids.tolist(), labels=data.labels.tolist(),
        methods=[c.label for c in plan.spec.methods],
        variables=plan.variables(), sample_chunk=plan.sample_chunk, extra_coords=plan.extra_coords(),
        example_ids=example_ids, image_shape=tuple(data.images.shape[1:]) if plan.n_examples else None,
        attrs=plan.attrs())


def pending_regions(plan: Plan, done: np.ndarray | None) -> list[RegionKey]:
    keys = [(m, p, c) for m in range(len(plan.spec.models)) for c in range(plan.n_chunks)
            for p in range(len(plan.spec.perturbations))]
    return [key for key in keys if done is None or not done[key]]


def evaluate(spec: EvaluationSpec | str | os.PathLike[str], store: str | os.PathLike[str] | None = None, *,
             client: Any = None, progress: bool = True, resume: bool = True, overwrite: bool = False,
             data: ImageSet | None = None, models: Mapping[str, torch.nn.Module] | None = None,
             on_region: Callable[[RegionKey], None] | None = None) -> xr.Dataset:
    """Evaluate ``spec`` and return the cube.

    With ``store`` (a directory path), results are written region by region to zarr and a rerun with the same spec
    resumes where it stopped; the returned Dataset is then lazily backed by the store. ``client`` (a
    ``dask.distributed.Client``) turns regions into tasks on its workers. ``data``/``models`` pass objects the
    registry does not know (your own tensors or ``nn.Module``s, named as in the spec). ``on_region`` is called with
    ``(model, perturbation, chunk)`` after each region is written.
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = EvaluationSpec.from_yaml(Path(spec))
    plan = Plan.from_spec(spec, data=data, models=models)
    template = build_template(plan)
    if client is not None:
        if store is None:
            raise InputError("a distributed evaluation needs a store that every worker can reach: pass store=PATH")
        from .distributed import evaluate_distributed

        return evaluate_distributed(plan, template, store, client, progress=progress, resume=resume,
                                    overwrite=overwrite, data=data, models=models)
    if store is None:
        return _evaluate_in_memory(plan, template, progress, on_region)
    cube_store = CubeStore.create_or_open(store, template, overwrite=overwrite, resume=resume)
    computer = RegionComputer(plan)
    done = cube_store.done_mask()
    todo = pending_regions(plan, done)
    model_todo = [m for m in range(len(plan.spec.models)) if plan.model_metrics
                  and not cube_store.model_done_mask()[m]]
    with _progress(len(todo) + len(model_todo), progress, plan.spec.name) as bar:
        for model_index in range(len(plan.spec.models)):
            if model_index in model_todo:
                cube_store.write_model(model_index, computer.model_level(model_index))
                bar.update()
            for key in [k for k in todo if k[0] == model_index]:
                arrays = computer.region(*key)
                cube_store.write_region(key[0], key[1], key[2], plan.chunk_slice(key[2]), arrays)
                bar.update()
                if on_region is not None:
                    on_region(key)
    return cube_store.open()


def _evaluate_in_memory(plan: Plan, template: xr.Dataset, progress: bool,
                        on_region: Callable[[RegionKey], None] | None) -> xr.Dataset:
    cube = materialize(template)
    computer = RegionComputer(plan)
    todo = pending_regions(plan, None)
    n_models = len(plan.spec.models)
    with _progress(len(todo) + (n_models if plan.model_metrics else 0), progress, plan.spec.name) as bar:
        for model_index in range(n_models):
            if plan.model_metrics:
                for name, values in computer.model_level(model_index).items():
                    cube[name].values[model_index, ...] = values
                cube["model_done"].values[model_index] = 1
                bar.update()
            for key in [k for k in todo if k[0] == model_index]:
                arrays = computer.region(*key)
                part = plan.chunk_slice(key[2])
                for name, values in arrays.items():
                    var = cube[name]
                    index: list[Any] = [key[0], key[1]] + [slice(None)] * (var.ndim - 2)
                    if "sample" in var.dims:
                        index[var.dims.index("sample")] = part
                    var.values[tuple(index)] = values
                cube["done"].values[key] = 1
                bar.update()
                if on_region is not None:
                    on_region(key)
    return cube


__all__ = ["CleanPass", "RegionComputer", "build_template", "evaluate", "pending_regions"]
