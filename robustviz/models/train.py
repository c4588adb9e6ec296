"""Reproduce the shipped zoo weights: train every zoo model on the shapes dataset (``robustviz train-zoo``).

Training draws a fresh block of shapes images every epoch (epoch ``e`` uses train-split samples
``e·n_train .. (e+1)·n_train - 1``), so there is no fixed training set to overfit; every model sees the same images
in its own shuffled order. Two regimes:

- ``standard``: clean images;
- ``noise``: Gaussian-noise augmentation, ``x + σ·ε`` clamped to [0, 1], ``σ ~ U[0, noise_max]`` per image.

Everything is seeded from ``seed`` (model initialisation, shuffling, noise), and the epochs loop outside the models,
so each epoch's images are rendered once for all models. Held-out accuracy is measured on the test split.

This module imports :mod:`robustviz.data` (its training data) — the one place where ``models/`` uses ``data/``;
the import is local to :func:`train_zoo` so ``import robustviz.models`` never loads it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .. import rng
from ..validation import InputError
from .zoo import ZOO_ARCHITECTURE_KWARGS, ZOO_ARCHITECTURES, ZOO_MEAN, ZOO_REGIMES, ZOO_STD, build_architecture


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_zoo` (recorded in ``manifest.json``)."""

    epochs: int = 12
    vit_epoch_scale: float = 2.5  # the ViT learns more slowly: it trains round(epochs × scale) epochs
    n_train: int = 4000
    n_test: int = 1000
    n_val: int = 0  # > 0: log validation-split accuracy after every epoch (monitoring only)
    image_size: int = 64
    batch_size: int = 64
    learning_rate: float = 3e-3
    vit_learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    noise_max: float = 0.2
    seed: int = 0
    threads: int = 2  # CPU threads; results are bit-identical only for the same count (shipped: 1)
    architectures: tuple[str, ...] = ZOO_ARCHITECTURES
    regimes: tuple[str, ...] = ZOO_REGIMES
    save_dtype: str = "float16"
    eval_noise_sigmas: tuple[float, ...] = field(default=(0.1, 0.2))


def _model_seed(seed: int, name: str) -> int:
    return rng.key_hash(int(seed), "zoo-train", name) & ((1 << 62) - 1)


def _add_noise(images: torch.Tensor, noise_max: float, generator: torch.Generator) -> torch.Tensor:
    sigma = torch.rand(images.shape[0], 1, 1, 1, generator=generator) * noise_max
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)


def _normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(ZOO_MEAN).reshape(1, -1, 1, 1)
    std = torch.tensor(ZOO_STD).reshape(1, -1, 1, 1)
    return (images - mean) / std


@torch.no_grad()
def evaluate_accuracy(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      noise_sigma: float = 0.0, seed: int = 0, batch_size: int = 250) -> float:
    """Accuracy of an unwrapped zoo network on [0, 1] images (optionally with Gaussian noise of fixed σ)."""
    network.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size]
        if noise_sigma > 0:
            seeds = rng.derive_seeds(seed, torch.arange(start, start + batch.shape[0]), "zoo-eval-noise", noise_sigma)
            batch = (batch + noise_sigma * rng.normal(seeds, batch.shape[1:])).clamp(0, 1)
        predictions = network(_normalise(batch)).argmax(1)
        correct += int((predictions == labels[start:start + batch.shape[0]]).sum())
    return correct / images.shape[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_zoo(out_dir: str | Path, epochs: int | None = None, seed: int = 0, progress: bool = True,
              names: Sequence[str] | None = None, log: Callable[[str], None] = print, **overrides) -> dict[str, float]:
    """Train the zoo models and write ``<name>.pt`` (state dicts) and ``manifest.json`` to ``out_dir``.

    ``names`` selects models (default: all of :data:`~robustviz.models.zoo.ZOO_NAMES`); ``overrides`` are
    :class:`TrainConfig` fields (e.g. ``n_train=64`` for a smoke test). Returns ``{name: held-out accuracy}``.
    """
    from ..data.shapes import SHAPE_CLASSES, make_shapes  # training data; see the module docstring

    unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown training options {sorted(unknown)}; valid: {sorted(TrainConfig.__dataclass_fields__)}")
    config = TrainConfig(seed=seed, **({"epochs": epochs} if epochs is not None else {}), **overrides)
    if config.epochs < 1 or config.n_train < 1 or config.n_test < 1:
        raise InputError(f"epochs, n_train and n_test must be >= 1, got {config.epochs}, {config.n_train}, "
                         f"{config.n_test}")
    all_names = [f"{arch}-{regime}" for arch in config.architectures for regime in config.regimes]
    names = list(all_names if names is None else names)
    bad = [name for name in names if name.split("-")[0] not in ZOO_ARCHITECTURE_KWARGS
           or name.split("-")[-1] not in ZOO_REGIMES]
    if bad:
        raise InputError(f"unknown zoo model names {bad}; choose from {all_names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    try:
        steps_per_epoch = -(-config.n_train // config.batch_size)
        model_epochs = {name: max(1, round(config.epochs * config.vit_epoch_scale))
                        if name.startswith("tinyvit") else config.epochs for name in names}
        networks, optimisers, schedulers, generators = {}, {}, {}, {}
        for name in names:
            architecture = name.split("-")[0]
            torch.manual_seed(_model_seed(config.seed, name))
            kwargs = dict(ZOO_ARCHITECTURE_KWARGS[architecture])
            if architecture == "tinyvit":  # position embeddings live on the training grid
                kwargs["image_size"] = config.image_size
            network = build_architecture(architecture, num_classes=len(SHAPE_CLASSES), **kwargs)
            rate = config.vit_learning_rate if architecture == "tinyvit" else config.learning_rate
            optimiser = torch.optim.AdamW(network.parameters(), lr=rate, weight_decay=config.weight_decay)
            networks[name], optimisers[name] = network, optimiser
            schedulers[name] = torch.optim.lr_scheduler.OneCycleLR(
                optimiser, max_lr=rate, total_steps=model_epochs[name] * steps_per_epoch, pct_start=0.15)
            generators[name] = torch.Generator().manual_seed(_model_seed(config.seed, name) + 1)

        validation = make_shapes(config.n_val, config.image_size, seed=config.seed, split="val") \
            if config.n_val > 0 else None
        for epoch in range(max(model_epochs.values())):
            train = make_shapes(config.n_train, config.image_size, seed=config.seed, split="train",
                                start=epoch * config.n_train)
            for name in (name for name in names if epoch < model_epochs[name]):
                network, generator = networks[name], generators[name]
                network.train()
                order = torch.randperm(config.n_train, generator=generator)
                total_loss = 0.0
                for step in range(steps_per_epoch):
                    index = order[step * config.batch_size:(step + 1) * config.batch_size]
                    images = train.images[index]
                    if name.endswith("-noise"):
                        images = _add_noise(images, config.noise_max, generator)
                    loss = F.cross_entropy(network(_normalise(images)), train.labels[index])
                    optimisers[name].zero_grad(set_to_none=True)
                    loss.backward()
                    optimisers[name].step()
                    schedulers[name].step()
                    total_loss += float(loss.detach()) * index.numel()
                if progress:
                    message = f"epoch {epoch + 1}/{model_epochs[name]} {name}: loss {total_loss / config.n_train:.4f}"
                    if validation is not None:
                        message += f", val accuracy {evaluate_accuracy(network, validation.images, validation.labels):.3f}"
                    log(f"{message} ({time.perf_counter() - started:.0f} s)")

        test = make_shapes(config.n_test, config.image_size, seed=config.seed, split="test")
        accuracies, manifest_models = {}, {}
        for name in names:
            network = networks[name].eval()
            dtype = getattr(torch, config.save_dtype)
            state = {key: value.to(dtype) if value.is_floating_point() else value
                     for key, value in network.state_dict().items()}
            path = out_dir / f"{name}.pt"
            torch.save(state, path)
            network.load_state_dict(state)  # evaluate the weights as shipped (rounded to save_dtype)
            accuracy = evaluate_accuracy(network, test.images, test.labels)
            noisy = {str(sigma): evaluate_accuracy(network, test.images, test.labels, sigma, config.seed)
                     for sigma in config.eval_noise_sigmas}
            accuracies[name] = accuracy
            architecture = name.split("-")[0]
            manifest_models[name] = {
                "file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
                "architecture": architecture, "architecture_kwargs": ZOO_ARCHITECTURE_KWARGS[architecture],
                "regime": name.split("-")[-1], "epochs": model_epochs[name], "parameters": sum(p.numel() for p in network.parameters()),
                "test_accuracy": accuracy, "test_accuracy_gaussian_noise": noisy,
            }
            if progress:
                log(f"{name}: held-out accuracy {accuracy:.4f}; with noise {noisy}")
        manifest = {
            "dataset": "shapes", "class_names": list(SHAPE_CLASSES), "mean": list(ZOO_MEAN), "std": list(ZOO_STD),
            "training": {**asdict(config), "train_seconds": round(time.perf_counter() - started, 1),
                         "torch": torch.__version__},
            "evaluation": {"split": "test", "n_test": config.n_test, "image_size": config.image_size},
            "models": manifest_models,
        }
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return accuracies
    finally:
        torch.set_num_threads(previous_threads)


__all__ = ["TrainConfig", "evaluate_accuracy", "train_zoo"]
