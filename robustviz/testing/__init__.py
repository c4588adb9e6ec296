"""Public test helpers (like ``captum.testing``): plugin authors test against the same contracts robustviz does.

- :func:`assert_cube_valid` — schema check plus internal consistency of a cube;
- :func:`make_cube` — a synthetic, schema-valid cube for panel/figure tests;
- :class:`TinyCNN` — a minimal model following the model contract (``cam_layer``, ``class_names``);
- :func:`assert_perturbation_contract` — the Perturbation contract checked on any perturbation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from ..cube.schema import validate


def assert_cube_valid(ds: xr.Dataset, *, complete: bool = True) -> None:
    """Raise AssertionError unless ``ds`` follows the cube schema (and, if ``complete``, every region is written
    and the clean severity is identical across perturbations)."""
    try:
        validate(ds)
    except ValueError as error:
        raise AssertionError(str(error)) from error
    if complete:
        assert ds.rv.is_complete(), "not every region of the cube has been written"
        clean = ds["prob_true"].sel(severity=0).values
        assert np.allclose(clean, clean[:, :1], equal_nan=True), "severity 0 differs between perturbations"


class TinyCNN(torch.nn.Module):
    """A 2-layer CNN following the model contract: [0, 1] images in, logits out, ``cam_layer`` exposed."""

    def __init__(self, num_classes: int = 4, channels: int = 3, width: int = 8, seed: int = 0):
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(width, num_classes)
        torch.random.set_rng_state(generator_state)
        self.cam_layer = self.features[2]
        self.num_classes = num_classes
        self.class_names = [f"class{i}" for i in range(num_classes)]
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))


def assert_perturbation_contract(perturbation: Any, images: torch.Tensor, *, seed: int = 0,
                                 model: torch.nn.Module | None = None, labels: torch.Tensor | None = None) -> None:
    """Check purity, range, identity at severity 0, and batch-size independence of a perturbation."""
    from ..rng import derive_seeds

    seeds = derive_seeds(seed, range(images.shape[0]), perturbation.name)
    kwargs = {"model": model, "labels": labels}
    before = images.clone()
    assert torch.equal(perturbation(images, 0, seeds=seeds, **kwargs), images), "severity 0 must be the identity"
    for severity in perturbation.severities:
        whole = perturbation(images, severity, seeds=seeds, **kwargs)
        assert torch.equal(images, before), "the perturbation modified its input in place"
        assert whole.shape == images.shape and whole.dtype == images.dtype
        assert float(whole.min()) >= 0.0 and float(whole.max()) <= 1.0, "output leaves [0, 1]"
        single = torch.cat([perturbation(images[i:i + 1], severity, seeds=seeds[i:i + 1],
                                         model=model, labels=None if labels is None else labels[i:i + 1])
                            for i in range(images.shape[0])])
        assert torch.allclose(whole, single, atol=1e-6), f"severity {severity}: result depends on the batch"


def __getattr__(name: str) -> Any:
    if name == "make_cube":  # lazily: the synthetic cube builder pulls in dask
        from .cubes import make_cube

        return make_cube
    raise AttributeError(name)


__all__ = ["TinyCNN", "assert_cube_valid", "assert_perturbation_contract", "make_cube"]
