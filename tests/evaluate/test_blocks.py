"""Compute blocks never exceed the work; allocator thresholds; the plain-torch ResNets used by the benchmarks."""

import sys

import pytest
import torch

import robustviz as rv
from robustviz._batching import PASS_PIXELS, images_per_pass
from robustviz._malloc import restore_malloc_thresholds
from robustviz.evaluate.engine import BLOCK, FORWARD_BLOCK, block_sizes
from robustviz.testing import TinyCNN
from robustviz.testing.resnets import resnet18, resnet50


def test_block_sizes_follow_the_dataset_not_the_batch_size():
    assert block_sizes(8, 224, 224) == (8, 8)
    assert block_sizes(3, 32, 32) == (3, 3)
    assert block_sizes(1000, 32, 32) == (FORWARD_BLOCK, BLOCK)
    assert block_sizes(1000, 224, 224) == (8, BLOCK)
    assert block_sizes(1000, 112, 112) == (32, BLOCK)


def test_a_small_run_is_not_padded():
    """Every forward the engine makes on a 5-image spec sees 5 images (a block of 64 would pad each one 12×)."""
    seen = []
    model = TinyCNN(num_classes=4, seed=0)
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[0]))
    data = rv.ImageSet(torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
                       torch.tensor([0, 1, 2, 3, 0]), ["a", "b", "c", "d"])
    spec = rv.EvaluationSpec(models=["mine"], perturbations=["brightness"], severities=[1, 2], n_samples=5,
                             dataset="mine", batch_size=2)
    cube = rv.evaluate(spec, data=data, models={"mine": model}, progress=False)
    assert seen and set(seen) == {5}
    assert cube["pred"].shape[-1] == 5


def test_images_per_pass_caps_pixels_not_small_images():
    assert images_per_pass(256, 32, 32) == 256
    assert images_per_pass(256, 224, 224) == PASS_PIXELS // (224 * 224) == 8
    assert images_per_pass(4, 224, 224) == 4
    assert images_per_pass(64, 4000, 4000) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_thresholds_apply_once_and_can_be_declined(monkeypatch):
    assert restore_malloc_thresholds(force=True) is True
    assert restore_malloc_thresholds() is True
    monkeypatch.setenv("ROBUSTVIZ_MALLOC", "default")
    assert restore_malloc_thresholds(force=True) is False
    monkeypatch.delenv("ROBUSTVIZ_MALLOC")
    assert restore_malloc_thresholds(force=True) is True


def test_resnets_have_torchvisions_parameter_counts():
    """11,689,512 and 25,557,032 parameters: the counts torchvision publishes for resnet18 / resnet50."""
    assert sum(p.numel() for p in resnet18().parameters()) == 11_689_512
    model = resnet50(num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 - 2048 * 990 - 990
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 10)
    assert model.cam_layer is model.layer4
