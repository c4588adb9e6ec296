"""perturbation_grid: one row per (image, perturbation), one column per severity, images as the engine seeds them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustviz
from robustviz.figures import perturbation_grid  # the public path the issue names
from robustviz.rng import derive_seeds
from robustviz.validation import InputError


def test_grid_layout_titles_and_pixels():
    images = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    noise = robustviz.create("perturbation", "noise.uniform")
    fig = perturbation_grid(images, ["fog", noise], severities=(0, 2, 5), seed=3)
    axes = np.array(fig.axes).reshape(4, 3)
    assert [ax.get_title() for ax in axes[0]] == ["clean", "severity 2", "severity 5"]
    assert axes[0, 0].get_ylabel().startswith("fog") and axes[1, 0].get_ylabel().startswith("noise.uniform")
    assert "image 1" in axes[3, 0].get_ylabel()
    shown = axes[3, 1].get_images()[0].get_array()  # image 1, noise.uniform, severity 2
    expected = noise(images, 2, seeds=derive_seeds(3, torch.arange(2), "noise.uniform", 2))[1].permute(1, 2, 0)
    assert np.allclose(np.asarray(shown), expected.numpy())
    assert np.allclose(np.asarray(axes[0, 0].get_images()[0].get_array()), images[0].permute(1, 2, 0).numpy())


def test_grid_refuses_model_dependent_perturbations():
    with pytest.raises(InputError, match="model"):
        perturbation_grid(torch.rand(1, 3, 8, 8), "fgsm")
