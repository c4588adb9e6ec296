import pytest
import torch

from robustviz.validation import InputError, check_images, check_labels


@pytest.mark.parametrize("images, message", [
    (torch.rand(3, 8, 8), "4 dimensions.*unsqueeze"),
    (torch.full((1, 3, 4, 4), float("nan")), "NaN"),
    (torch.rand(1, 3, 4, 4) * 255, r"\[0, 1\].*divide by 255"),
    (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "floating point"),
    ([[1.0]], "torch.Tensor"),
])
def test_bad_images(images, message):
    with pytest.raises(InputError, match=message):
        check_images(images)


def test_channels_last_hint():
    with pytest.raises(InputError, match="permute"):
        check_images(torch.rand(2, 8, 8, 3), channels=3)


def test_good_images_pass_through():
    images = torch.rand(2, 3, 4, 4)
    assert check_images(images, channels=3) is images


def test_labels():
    assert check_labels([0, 1], 2).dtype == torch.int64
    with pytest.raises(InputError, match="one label per image"):
        check_labels([0, 1, 2], 2)
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        check_labels([0, 3], 2, num_classes=3)
    with pytest.raises(InputError, match="integer"):
        check_labels([0.5, 1.0], 2)
