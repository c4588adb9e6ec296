"""Test-only components for the evaluator tests (registered under 'test_*' names) and spec builders."""

from __future__ import annotations

import os
import time

from robustviz import rng
from robustviz.perturbations.base import Perturbation
from robustviz.registry import REGISTRY
from robustviz.spec import EvaluationSpec


class NoiseForTests(Perturbation):
    """Additive Gaussian noise from the per-sample seeds (σ = 0.08 × severity)."""

    name = "test_noise"
    family = "noise"

    def apply(self, images, severity, *, seeds, model, labels):
        return images + 0.08 * severity * rng.normal(seeds, images.shape[1:], images.device)


class SlowNoiseForTests(NoiseForTests):
    """The same noise, slowed down so a subprocess can be killed half-way through a run."""

    name = "test_slow_noise"

    def apply(self, images, severity, *, seeds, model, labels):
        time.sleep(float(os.environ.get("ROBUSTVIZ_TEST_DELAY", "0.05")))
        return super().apply(images, severity, seeds=seeds, model=model, labels=labels)


REGISTRY.add("perturbation", "test_noise", NoiseForTests, replace=True)
REGISTRY.add("perturbation", "test_slow_noise", SlowNoiseForTests, replace=True)


def small_spec(**changes) -> EvaluationSpec:
    """A spec that exercises every part of the engine at test scale (two models, methods and metrics)."""
    data = dict(
        models=["smallcnn-standard", "tinyresnet-noise"],
        dataset={"name": "shapes", "image_size": 32},
        n_samples=10,
        perturbations=["test_noise", "lowpass"],
        severities=[1, 3, 5],
        methods=["saliency", "grad_cam", {"name": "rise", "n_masks": 16, "batch_masks": 16}],
        metrics=["cosine", "consistency", {"name": "deletion_auc", "step": 128}, "fisher_lmax"],
        batch_size=4, seed=7, device="cpu", n_examples=2,
    )
    data.update(changes)
    return EvaluationSpec.from_dict(data)


def _tiny_model(seed: int = 0):
    from robustviz.data import SHAPE_CLASSES
    from robustviz.testing import TinyCNN

    model = TinyCNN(num_classes=len(SHAPE_CLASSES), seed=seed)
    model.class_names = list(SHAPE_CLASSES)
    return model


REGISTRY.add("model", "test_tiny", _tiny_model, replace=True)


def crash_spec(**changes) -> EvaluationSpec:
    """Many small regions (2 models × 2 perturbations × 6 sample chunks) of cheap work."""
    data = dict(models=["test_tiny", {"name": "test_tiny", "seed": 1}], dataset={"name": "shapes", "image_size": 32},
                n_samples=12, sample_chunk=2, perturbations=["test_slow_noise", "test_noise"], severities=[1, 2],
                methods=["saliency"], metrics=["cosine"], batch_size=4, seed=3, device="cpu", n_examples=1)
    data.update(changes)
    return EvaluationSpec.from_dict(data)


class FailingNoiseForTests(NoiseForTests):
    """Raises at severity 2 on samples with id ≥ 4 when ROBUSTVIZ_TEST_FAIL=1 (a region that fails half-way)."""

    name = "test_failing_noise"
    needs_sample_ids = True

    def apply(self, images, severity, *, seeds, model, labels, sample_ids):
        if os.environ.get("ROBUSTVIZ_TEST_FAIL") == "1" and severity == 2 and int(sample_ids.max()) >= 4:
            raise RuntimeError("boom")
        return super().apply(images, severity, seeds=seeds, model=model, labels=labels)


REGISTRY.add("perturbation", "test_failing_noise", FailingNoiseForTests, replace=True)


def print_region_starts() -> None:
    """In an evaluation subprocess: print ``START <region key>`` as each region begins (the kill and signal tests
    read these lines to stop a run half-way)."""
    from robustviz.evaluate import engine

    original = engine.RegionComputer.region

    def region(self, *key):
        print("START", *key, flush=True)
        return original(self, *key)

    engine.RegionComputer.region = region


def read_region_events(process, stop_after: int | None, signum: int | None) -> list[tuple[str, tuple[int, ...]]]:
    """The START / DONE / FINISHED lines of ``process``'s stdout as (word, region key), other lines skipped;
    ``signum`` is sent (and reading stops) once ``stop_after`` regions are DONE."""
    events = []
    deadline = time.monotonic() + 300
    assert process.stdout is not None
    for line in process.stdout:
        if not line.startswith(("START", "DONE", "FINISHED")):
            continue
        word, *key = line.split()
        events.append((word, tuple(int(k) for k in key)))
        if stop_after is not None and sum(1 for w, _ in events if w == "DONE") >= stop_after:
            process.send_signal(signum)
            break
        assert time.monotonic() < deadline, "the evaluation subprocess hung"
    return events
