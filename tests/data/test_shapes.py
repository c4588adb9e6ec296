"""The procedural shapes dataset: determinism, splits, balance, sizes, masks and geometry (against analytic areas
and scikit-image's region properties)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.measure import regionprops

import robustviz
from robustviz.data import SHAPE_CLASSES, ImageSet, make_shapes, render_shape
from robustviz.data.shapes import render, shape_seeds
from robustviz.validation import InputError


def test_same_seed_same_images_and_other_seed_differs():
    first, second = make_shapes(24, seed=3), make_shapes(24, seed=3)
    assert torch.equal(first.images, second.images) and torch.equal(first.masks, second.masks)
    other = make_shapes(24, seed=4)
    assert not torch.equal(first.images, other.images)


def test_sample_does_not_depend_on_n_or_start():
    small, large = make_shapes(10), make_shapes(40)
    assert torch.equal(small.images, large.images[:10])
    middle = make_shapes(10, start=20)
    assert torch.equal(middle.images, large.images[20:30])
    assert torch.equal(middle.sample_ids, torch.arange(20, 30))


def test_splits_do_not_share_images():
    fingerprints = {}
    for split in ("train", "val", "test"):
        images = make_shapes(200, image_size=32, split=split).images
        fingerprints[split] = {image.numpy().tobytes() for image in images}
        assert len(fingerprints[split]) == 200  # no duplicates inside a split either
    assert not fingerprints["train"] & fingerprints["test"]
    assert not fingerprints["train"] & fingerprints["val"]
    assert not fingerprints["val"] & fingerprints["test"]


def test_classes_are_balanced():
    data = make_shapes(8 * 12)
    counts = torch.bincount(data.labels, minlength=len(SHAPE_CLASSES))
    assert counts.tolist() == [12] * len(SHAPE_CLASSES)
    assert data.class_names == list(SHAPE_CLASSES) and len(SHAPE_CLASSES) >= 8


@pytest.mark.parametrize("size", [32, 64, 224])
def test_sizes_dtype_range(size):
    data = make_shapes(8, image_size=size)
    assert isinstance(data, ImageSet)
    assert data.images.shape == (8, 3, size, size) and data.images.dtype == torch.float32
    assert data.masks.shape == (8, 1, size, size) and data.masks.dtype == torch.bool
    assert float(data.images.min()) >= 0.0 and float(data.images.max()) <= 1.0
    assert bool(data.masks.flatten(1).any(1).all())  # every image shows its object


def test_same_scene_at_every_size():
    """Scenes live in normalised coordinates: the 224 px mask, area-downsampled to 32 px, matches the 32 px mask."""
    large, small = make_shapes(16, image_size=224), make_shapes(16, image_size=32)
    downsampled = F.interpolate(large.masks.float(), size=(32, 32), mode="area") > 0.5
    intersection = (downsampled & small.masks).flatten(1).sum(1).float()
    union = (downsampled | small.masks).flatten(1).sum(1).float()
    assert float((intersection / union).min()) > 0.8


def test_masks_mark_the_object_and_only_the_object():
    labels = torch.arange(64) % len(SHAPE_CLASSES)
    images, masks, background = render(labels, shape_seeds(torch.arange(64)), 64, return_background=True)
    difference = (images - background).abs().amax(1, keepdim=True)
    # inside the mask the object's colour is blended with weight >= 0.5 and differs clearly from the background
    assert float(difference[masks].min()) > 0.1
    # two pixels away from the mask the image is exactly the background (the anti-aliasing ramp is half a pixel
    # wide, but a star's tip narrower than a pixel can tint pixels next to the last pixel centre it covers)
    near_object = F.max_pool2d(masks.float(), 5, stride=1, padding=2) > 0
    assert float(difference[~near_object].max()) == 0.0


def _unit_areas():
    """Areas of the unit-frame shapes (object radius 1), from their defining geometry."""
    return {
        "circle": math.pi * 0.9 ** 2,
        "square": 2.0,  # circumradius 1: side sqrt 2
        "triangle": 3 * math.sqrt(3) / 4,  # circumradius 1
        "cross": 2 * (1.9 * 0.6) - 0.6 * 0.6,
        "ring": math.pi * (0.92 ** 2 - 0.48 ** 2),
    }


def test_mask_areas_match_analytic_areas():
    """Same seeds → same radius/position/rotation for every class, so area ratios are ratios of unit areas."""
    seeds = shape_seeds(torch.arange(12), seed=7)
    areas = {}
    for name in _unit_areas():
        labels = torch.full((12,), SHAPE_CLASSES.index(name))
        _, masks = render(labels, seeds, 224)
        areas[name] = masks.flatten(1).sum(1).double()
    expected = _unit_areas()
    for name in expected:
        ratio = areas[name] / areas["square"]
        assert torch.allclose(ratio, torch.full_like(ratio, expected[name] / expected["square"]), rtol=0.03), name


def test_shape_topology_and_convexity_with_skimage_regionprops():
    """Independent geometry check: ring has a hole (Euler number 0); convex shapes are solid, star/cross/crescent
    are not."""
    for name in SHAPE_CLASSES:
        data = render_shape(name, 6, image_size=160)
        for mask in data.masks[:, 0].numpy():
            (props,) = regionprops(mask.astype(np.uint8))
            assert props.euler_number == (0 if name == "ring" else 1), name
            if name in ("circle", "square", "triangle"):
                assert props.solidity > 0.93, name  # pixelated convex shapes
            if name in ("star", "cross", "crescent"):
                assert props.solidity < 0.8, name


def test_render_shape_gives_requested_class_and_validates():
    data = render_shape("star", 5, image_size=32, seed=1)
    assert data.labels.tolist() == [SHAPE_CLASSES.index("star")] * 5
    assert torch.equal(data.images, render_shape(3, 5, image_size=32, seed=1).images)
    with pytest.raises(InputError, match="unknown shape class"):
        render_shape("hexagram", 2)
    with pytest.raises(InputError, match="must lie in"):
        render_shape(99, 2)


def test_registry_entry_matches_make_shapes():
    data = robustviz.registry.create("dataset", "shapes", n_samples=12, image_size=32, seed=2, split="val")
    reference = make_shapes(12, image_size=32, seed=2, split="val")
    assert torch.equal(data.images, reference.images) and torch.equal(data.labels, reference.labels)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 4, "split": "training"}, "unknown shapes split"),
    ({"n": -1}, "non-negative"),
    ({"n": 4, "image_size": 4}, "image_size"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_shapes(**kwargs)
