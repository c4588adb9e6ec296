"""The evaluator: spec → batched model/perturbation/method/metric loop → cube (in memory or in a zarr store).

Work is split into regions (model × perturbation × sample chunk). For each model and chunk the clean pass
(logits, attributions, severity-0 metrics) is computed once and reused for every perturbation. Every random draw is
keyed by (run seed, sample id, what, severity) through :mod:`robustviz.rng`, so results do not depend on the batch
size, on the order of regions, on resuming, or on which worker computed them.
"""

from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import xarray as xr

from .._malloc import restore_malloc_thresholds
from ..cube.template import make_template, materialize
from ..data.base import ImageSet
from ..metrics.base import MetricContext
from ..rng import derive_seeds
from ..spec import EvaluationSpec
from ..validation import InputError
from .checks import check_finite_logits, logits_of, model_errors
from .preflight import check_label_space, probe_models, record_warnings
from .plan import Plan
from .scoping import DegenerateMetricWarning
from .store import CubeStore, model_fingerprint

RegionKey = tuple[int, int, int]  # (model, perturbation, chunk)

#: Every call the engine makes into a model, method or metric sees a fixed number of samples, the *block* (the last
#: block is padded with copies of its first sample). BLAS/oneDNN kernels sum in an order that depends on the batch
#: shape: the same image gives logits ~1e-6 apart in batches of 1 and 64, and near-tied saliency values then reorder
#: insertion/deletion curves. With one fixed shape every sample's numbers are bit-identical whatever the spec's
#: ``batch_size``, sample chunking, resume point or worker. The block is :data:`BLOCK` for methods and metrics.
BLOCK = 8
#: Plain forward passes (the cube's predictions) use a larger block: cheap per image and, for an accuracy-only cube,
#: all the work. It is capped by :data:`FORWARD_PIXELS` (8 images at 224 px: a ResNet-50's largest activation then
#: stays under glibc's 32 MiB mmap threshold, see :mod:`robustviz._malloc`; larger batches gain no throughput).
FORWARD_BLOCK = 64
FORWARD_PIXELS = 8 * 224 * 224


def block_sizes(n_samples: int, height: int, width: int) -> tuple[int, int]:
    """(forward block, method/metric block) for a plan of ``n_samples`` images of ``height×width``.

    Both depend only on the dataset (never on ``batch_size`` or ``sample_chunk``), so invariance holds, and neither
    exceeds the number of samples: 8 images are never padded to 64.
    """
    forward = min(FORWARD_BLOCK, max(BLOCK, FORWARD_PIXELS // max(1, height * width)))
    return max(1, min(forward, n_samples)), max(1, min(BLOCK, n_samples))


def _padded_blocks(count: int, block: int = BLOCK) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(part, index)`` per block: ``index`` selects ``block`` rows (``part`` plus copies of its first row)."""
    for part in _batches(count, block):
        index = torch.arange(part.start, part.stop)
        if len(index) < block:
            index = torch.cat([index, index[:1].repeat(block - len(index))])
        yield part, index


def _n_blocks(count: int, block: int = BLOCK) -> int:
    return -(-count // block)


def region_steps(plan: Plan, chunk: int, *, with_clean: bool) -> int:
    """Progress steps of one region (the unit of the per-region progress bar): perturbation batches, forward
    blocks, method blocks and metric blocks; ``with_clean`` adds the chunk's clean pass when it is not cached."""
    n = plan.chunk_slice(chunk).stop - plan.chunk_slice(chunk).start
    k = len(plan.spec.severities)
    per_method = [sum(flags) if metric.per_method else 1 for metric, flags in zip(plan.metrics, plan.metric_methods)]
    clean_metric = sum(per_method)
    perturbed_metric = sum(c for c, scope in zip(per_method, plan.metric_scopes) if scope == "all")
    forward, block = block_sizes(len(plan.data), *plan.data.images.shape[-2:])
    steps = k + _n_blocks(k * n, forward)  # one step per severity's perturbation
    steps += _n_blocks(k * n, block) * (len(plan.methods) + perturbed_metric)
    if with_clean:
        steps += _n_blocks(n, forward) + _n_blocks(n, block) * (len(plan.methods) + clean_metric)
    return steps


def _take(value: Any, index: torch.Tensor, count: int) -> Any:
    """Rows ``index`` of per-sample tensors (first dim == count); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == count:
        return value[index.to(value.device)]
    return value


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
        self.forward_block, self.block = block_sizes(len(plan.data), *plan.data.images.shape[-2:])
        restore_malloc_thresholds()
        #: Called once per progress step (see :func:`region_steps`): a perturbation batch, a forward block, a
        #: method or metric block. The evaluator points it at the per-region progress bar.
        self.tick: Callable[[], None] = lambda: None

    def has_clean(self, model_index: int, chunk: int) -> bool:
        return self._model_index == model_index and chunk in self._clean

    # -- models and clean passes ---------------------------------------------------------------------------------
    def model(self, index: int) -> torch.nn.Module:
        if self._model_index != index:
            self._model, self._clean = None, {}
            self._model = self.plan.create_model(index)
            self._model_index = index
        assert self._model is not None
        return self._model

    def _forward(self, model: torch.nn.Module, images: torch.Tensor, sample_ids: torch.Tensor,
                 where: str = "the clean images") -> torch.Tensor:
        """Logits, computed in padded blocks of ``forward_block`` images (:func:`block_sizes`); every value must be
        finite."""
        blocks = []
        with model_errors(self.plan.model_names[self._model_index or 0], images):
            with torch.no_grad():
                for part, index in _padded_blocks(images.shape[0], self.forward_block):
                    rows = images[part] if len(index) == part.stop - part.start else images[index.to(images.device)]
                    output = logits_of(model, model(rows), self.plan.model_names[self._model_index or 0])
                    blocks.append(output[: part.stop - part.start].float())
                    self.tick()
        logits = torch.cat(blocks)
        check_finite_logits(logits, sample_ids, self.plan.model_names[self._model_index or 0], where)
        return logits

    def _method_seeds(self, sample_ids: torch.Tensor, label: str) -> torch.Tensor:
        """A method's per-sample seeds: the same for a sample's clean and perturbed images (e.g. RISE's masks)."""
        return derive_seeds(self.plan.spec.seed, sample_ids, "method", label)

    def _attribute(self, model: torch.nn.Module, images: torch.Tensor, target: torch.Tensor,
                   sample_ids: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for label, method in zip(self.plan.method_names, self.plan.methods):
            seeds = self._method_seeds(sample_ids, label)
            blocks = []
            for part, index in _padded_blocks(images.shape[0], self.block):
                blocks.append(method.attribute(model, *(_take(t, index, images.shape[0]) for t in (images, target)),
                                               seeds=seeds[index])[: part.stop - part.start])
                self.tick()
            maps.append(torch.cat(blocks))
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
            logits = self._forward(model, images, sample_ids)
            check_label_space(self.plan.model_names[model_index], model, logits, data)
            target = {"clean_pred": logits.argmax(1), "label": labels, "pred": logits.argmax(1)}[self.plan.target]
            attributions = self._attribute(model, images, target, sample_ids)
            clean = CleanPass(images, labels, sample_ids, masks, logits, target, attributions, {})
            clean.outputs = self._cells(model, clean, images, logits, attributions, "clean", [0])
            self._clean[chunk] = clean
        return self._clean[chunk]

    # -- cells: the severities of one (perturbation, chunk), batched together ------------------------------------
    def _cells(self, model: torch.nn.Module, clean: CleanPass, images: torch.Tensor, logits: torch.Tensor,
               attributions: list[torch.Tensor], perturbation: str, severities: list[int]) -> dict[str, np.ndarray]:
        """Per-sample outputs of ``len(severities)`` cells whose images are stacked severity-major (``k·n``).

        Every severity goes through the model, the methods and the metrics as one batch (small sample chunks would
        otherwise pay per-call overhead five times). Returned arrays are laid out ``severity × … × sample``.
        """
        plan = self.plan
        k, n = len(severities), len(clean.sample_ids)
        repeat = (lambda t: None if t is None else t.repeat(k, *([1] * (t.ndim - 1))))
        labels = repeat(clean.labels)
        probs = logits.softmax(1)
        pred = logits.argmax(1)
        flat: dict[str, np.ndarray] = {
            "correct": (pred == labels).cpu().numpy(),
            "pred": pred.cpu().numpy().astype(np.int64),
            "prob_true": probs.gather(1, labels[:, None])[:, 0].cpu().numpy().astype(np.float32),
            "confidence": probs.max(1).values.cpu().numpy().astype(np.float32),
        }
        target = logits.argmax(1) if plan.target == "pred" else repeat(clean.target)
        for j, (name, metric, scope) in enumerate(zip(plan.metric_names, plan.metrics, plan.metric_scopes)):
            if scope == "clean" and severities != [0]:
                shape = ((len(plan.methods), k * n) if metric.per_method else (k * n,)) + tuple(
                    len(values) for values in metric.value_coords.values())
                flat[name] = np.full(shape, np.nan, dtype=np.float32)
                continue
            # severity 0 is keyed "clean" so the clean cell is identical for every perturbation
            seeds = torch.cat([derive_seeds(plan.spec.seed, clean.sample_ids, "metric", name,
                                            "clean" if severity == 0 else perturbation, severity)
                               for severity in severities])
            base = MetricContext(model=model, images=images, clean_images=repeat(clean.images), labels=labels,
                                 logits=logits, clean_logits=repeat(clean.logits), masks=repeat(clean.masks),
                                 seeds=seeds, target=target, perturbation=perturbation,
                                 severity=severities[0] if k == 1 else -1)
            if metric.per_method:
                values = []
                for label, method, maps, clean_maps, computed in zip(plan.method_names, plan.methods, attributions,
                                                                     clean.attributions, plan.metric_methods[j]):
                    if not computed:  # scoped out: missing, never 0
                        values.append(np.full((k * n, *(len(v) for v in metric.value_coords.values())), np.nan,
                                              dtype=np.float32))
                        continue
                    base.method, base.attributions, base.clean_attributions = method, maps, repeat(clean_maps)
                    base.method_seeds = repeat(self._method_seeds(clean.sample_ids, label))
                    values.append(self._metric_batches(metric, base))
                flat[name] = np.stack(values)  # method × (k·n)
            else:
                flat[name] = self._metric_batches(metric, base)
        out = {}
        trailing = {name: len(metric.value_coords) for name, metric in zip(plan.metric_names, plan.metrics)}
        for name, values in flat.items():
            axis = values.ndim - 1 - trailing.get(name, 0)  # the (k·n) axis: last but the metric's value dims
            values = values.reshape(*values.shape[:axis], k, n, *values.shape[axis + 1:])
            out[name] = np.moveaxis(values, axis, 0)  # severity × [method ×] sample [× value dims]
        if plan.n_examples:
            e = plan.n_examples
            shown = images.reshape(k, n, *images.shape[1:])[:, :e]
            out["example_image"] = (shown * 255).round().to(torch.uint8).cpu().numpy()
            if plan.methods:
                out["example_attribution"] = np.stack([
                    maps.reshape(k, n, *maps.shape[2:])[:, :e].cpu().numpy().astype(np.float16)
                    for maps in attributions], axis=1)  # severity × method × example × H × W
        return out

    def _metric_batches(self, metric: Any, context: MetricContext) -> np.ndarray:
        count = context.images.shape[0]
        results = []
        for part, index in _padded_blocks(count, self.block):
            block = MetricContext(**{name: value if name == "model" else _take(value, index, count)
                                     for name, value in vars(context).items()})
            results.append(metric(block).cpu().numpy()[: part.stop - part.start])
            self.tick()
        return np.concatenate(results).astype(np.float32)

    # -- a whole region -------------------------------------------------------------------------------------------
    def region(self, model_index: int, perturbation_index: int, chunk: int) -> dict[str, np.ndarray]:
        """Arrays of one region, each laid out as its variable's dims without model and perturbation."""
        plan = self.plan
        model = self.model(model_index)
        clean = self.clean(model_index, chunk)
        label = plan.perturbation_names[perturbation_index]
        perturbation = plan.perturbations[perturbation_index]
        if not plan.severities:  # clean-only: the severity-0 pass is the whole region
            return {name: values for name, values in clean.outputs.items()
                    if chunk == 0 or not name.startswith("example_")}
        perturbed = []
        for severity in plan.severities:
            seeds = derive_seeds(plan.spec.seed, clean.sample_ids, "perturbation", label, severity)
            images = self._perturb(perturbation, model, clean, severity, seeds)
            self.tick()
            low, high = torch.aminmax(images)
            if not (float(low) >= 0.0 and float(high) <= 1.0):  # NaN fails both comparisons
                raise RuntimeError(f"perturbation {label!r} at severity {severity} produced NaN/inf "
                                   f"values; this is a bug in that perturbation")
            perturbed.append(images)
        images = torch.cat(perturbed)
        k = len(perturbed)
        logits = self._forward(model, images, clean.sample_ids.repeat(k),
                             f"the images of perturbation {label!r}")
        target = logits.argmax(1) if plan.target == "pred" else clean.target.repeat(k)
        attributions = self._attribute(model, images, target, clean.sample_ids.repeat(k))
        cells = self._cells(model, clean, images, logits, attributions, label, list(plan.severities))
        # severity 0 (the clean pass) first; examples are the first samples of chunk 0 only
        return {name: np.concatenate([clean.outputs[name], cells[name]]) for name in cells
                if chunk == 0 or not name.startswith("example_")}

    def _perturb(self, perturbation: Any, model: torch.nn.Module, clean: CleanPass, severity: int,
                 seeds: torch.Tensor) -> torch.Tensor:
        """One severity of a perturbation on the chunk. One that uses the model (an attack: its gradients go
        through the model) runs in the fixed padded blocks of the model calls, so its images do not depend on
        ``batch_size``; the others are per-sample and run in ``batch_size`` batches."""
        count = clean.images.shape[0]
        uses_model = bool(getattr(perturbation, "needs_model", False))
        blocks: list[tuple[slice, Any]] = list(_padded_blocks(count, self.block)) if uses_model else [
            (part, part) for part in _batches(count, self.plan.spec.batch_size)]
        device = clean.images.device
        out = []
        with model_errors(self.plan.model_names[self._model_index or 0], clean.images) if uses_model else nullcontext():
            for part, index in blocks:
                on_device = index if isinstance(index, slice) else index.to(device)
                images = perturbation(clean.images[on_device], severity, seeds=seeds[index], model=model,
                                      labels=clean.labels[on_device], sample_ids=clean.sample_ids[index])
                out.append(images[: part.stop - part.start])
        return torch.cat(out)

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


def _progress(total: int, enabled: bool, desc: str, *, unit: str = "region", position: int = 0,
              leave: bool = True):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit=unit, leave=leave, position=position)


def build_template(plan: Plan) -> xr.Dataset:
    data = plan.data
    example_ids = data.sample_ids[: plan.n_examples].tolist()
    return make_template(
        models=plan.model_names,
        perturbations=plan.perturbation_names,
        families=[getattr(p, "family", "") or "" for p in plan.perturbations],
        severities=plan.severities,
        sample_ids=data.sample_ids.tolist(), labels=data.labels.tolist(),
        methods=plan.method_names,
        variables=plan.variables(), sample_chunk=plan.sample_chunk, extra_coords=plan.extra_coords(),
        example_ids=example_ids, image_shape=tuple(data.images.shape[1:]) if plan.n_examples else None,
        attrs=plan.attrs())


def pending_regions(plan: Plan, done: np.ndarray | None) -> list[RegionKey]:
    keys = [(m, p, c) for m in range(len(plan.spec.models)) for c in range(plan.n_chunks)
            for p in range(len(plan.perturbations))]
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
    for message in plan.warnings:
        warnings.warn(message, DegenerateMetricWarning, stacklevel=2)
    template = build_template(plan)
    if client is not None:
        if store is None:
            raise InputError("a distributed evaluation needs a store that every worker can reach: pass store=PATH")
        from .distributed import evaluate_distributed

        cube = evaluate_distributed(plan, template, store, client, progress=progress, resume=resume,
                                    overwrite=overwrite, data=data, models=models)
        return record_warnings(plan, cube, CubeStore(store))
    if store is None:
        sink = _InMemoryCube(template)
        _run_regions(plan, sink, progress, on_region)
        return record_warnings(plan, sink.open(), None)
    probe_models(plan)  # a model that cannot run on this data must fail before the store exists
    with CubeStore.writing(store, template, overwrite=overwrite, resume=resume) as cube_store:
        _run_regions(plan, cube_store, progress, on_region)
        return record_warnings(plan, cube_store.open(), cube_store)  # attrs written under the writer lock


class _InMemoryCube:
    """The in-memory counterpart of :class:`CubeStore`'s writing interface (nothing done yet, filled in place)."""

    def __init__(self, template: xr.Dataset):
        self.cube = materialize(template)

    def done_mask(self) -> np.ndarray:
        return self.cube["done"].values.astype(bool)

    def model_done_mask(self) -> np.ndarray:
        return self.cube["model_done"].values.astype(bool)

    def write_model(self, model_index: int, arrays: Mapping[str, np.ndarray]) -> None:
        for name, values in arrays.items():
            self.cube[name].values[model_index, ...] = values
        self.cube["model_done"].values[model_index] = 1

    def write_region(self, model_index: int, perturbation_index: int, chunk: int, part: slice,
                     arrays: Mapping[str, np.ndarray]) -> None:
        for name, values in arrays.items():
            var = self.cube[name]
            index: list[Any] = [model_index, perturbation_index] + [slice(None)] * (var.ndim - 2)
            if "sample" in var.dims:
                index[var.dims.index("sample")] = part
            var.values[tuple(index)] = values
        self.cube["done"].values[model_index, perturbation_index, chunk] = 1

    def open(self) -> xr.Dataset:
        return self.cube


def _run_regions(plan: Plan, sink: "CubeStore | _InMemoryCube", progress: bool,
                 on_region: Callable[[RegionKey], None] | None) -> None:
    """Compute and write what ``sink`` has not got yet: model by model (one model in memory at a time), its
    model-level metrics first, then its regions."""
    computer = RegionComputer(plan)
    todo = pending_regions(plan, sink.done_mask())
    model_done = sink.model_done_mask()
    model_todo = [m for m in range(len(plan.spec.models)) if plan.model_metrics and not model_done[m]]
    with _progress(len(todo) + len(model_todo), progress, plan.spec.name) as bar, \
            _progress(0, progress, "", unit="step", position=1, leave=False) as inner:
        computer.tick = inner.update
        for model_index in range(len(plan.spec.models)):
            # a store must not mix two models' weights under one name; an in-memory cube only sees this run's
            if isinstance(sink, CubeStore) and (model_index in model_todo or any(k[0] == model_index for k in todo)):
                sink.check_model(model_index, plan.model_names[model_index],
                                 model_fingerprint(computer.model(model_index)))
            if model_index in model_todo:
                sink.write_model(model_index, computer.model_level(model_index))
                bar.update()
            for key in [k for k in todo if k[0] == model_index]:
                inner.reset(total=region_steps(plan, key[2], with_clean=not computer.has_clean(key[0], key[2])))
                inner.set_description(f"{plan.model_names[key[0]]} × {plan.perturbation_names[key[1]]}",
                                      refresh=False)
                sink.write_region(key[0], key[1], key[2], plan.chunk_slice(key[2]), computer.region(*key))
                bar.update()
                if on_region is not None:
                    on_region(key)


__all__ = ["CleanPass", "RegionComputer", "build_template", "evaluate", "pending_regions"]
