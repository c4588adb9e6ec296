"""Insertion/deletion AUCs against a line-by-line reimplementation of RISE's CausalMetric (evaluation.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

import robustviz
from robustviz.metrics.base import MetricContext
from robustviz.metrics.faithfulness import scaled_blur


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4)).eval()
    with torch.no_grad():
        model[-1].weight.mul_(6.0)
    return model


# ---- RISE's evaluation.py, kept line by line (numpy indexing, one image, one forward per step) -------------------
def gkern(klen, nsig):
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    kern[0, 0] = k
    kern[1, 1] = k
    kern[2, 2] = k
    return torch.from_numpy(kern.astype("float32"))


def rise_auc(arr):
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


class CausalMetric:
    def __init__(self, model, mode, step, substrate_fn, HW):
        assert mode in ["del", "ins"]
        self.model, self.mode, self.step, self.substrate_fn, self.HW = model, mode, step, substrate_fn, HW

    def single_run(self, img_tensor, explanation, c):
        """``c``: the class predicted on the clean image (RISE takes the argmax on img_tensor)."""
        HW = self.HW
        n_steps = (HW + self.step - 1) // self.step
        if self.mode == "del":
            start = img_tensor.clone()
            finish = self.substrate_fn(img_tensor)
        elif self.mode == "ins":
            start = self.substrate_fn(img_tensor)
            finish = img_tensor.clone()
        scores = np.empty(n_steps + 1)
        salient_order = np.flip(np.argsort(explanation.reshape(-1, HW), axis=1), axis=-1)
        for i in range(n_steps + 1):
            with torch.no_grad():
                pred = self.model(start)
            scores[i] = pred[0, c]
            if i < n_steps:
                coords = salient_order[:, self.step * i:self.step * (i + 1)]
                start_np = start.numpy().reshape(1, 3, HW)
                start_np[0, :, coords] = finish.numpy().reshape(1, 3, HW)[0, :, coords]
                start = torch.from_numpy(start_np.reshape(img_tensor.shape))
        return rise_auc(scores)
# -----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blur", [(11, 5.0), None])
def test_insertion_and_deletion_match_rise_causal_metric(blur):
    model = tiny_classifier()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=generator)
    saliency = torch.rand(2, 1, 32, 32, generator=generator)  # continuous: no ties in the pixel order
    clean_images = torch.rand(2, 3, 32, 32, generator=generator)
    clean_logits = model(clean_images).detach()
    klen, ksig = blur if blur else scaled_blur(32)
    kern = gkern(klen, ksig)
    softmax_model = nn.Sequential(model, nn.Softmax(dim=1))
    step = int(np.ceil(32 * 32 / 224))
    context = MetricContext(model=model, images=images, attributions=saliency, clean_logits=clean_logits)
    params = {"kernel_size": blur[0], "sigma": blur[1]} if blur else {}
    deletion = robustviz.create("metric", "deletion_auc", batch_size=100, **params)(context)
    insertion = robustviz.create("metric", "insertion_auc", batch_size=100, **params)(context)
    for index in (range(2) if blur else (1,)):  # the scaled-blur case checks one sample (speed)
        c = int(clean_logits[index].argmax())
        image = images[index:index + 1].clone()
        explanation = saliency[index, 0].numpy()
        expected_del = CausalMetric(softmax_model, "del", step, torch.zeros_like, 32 * 32).single_run(
            image, explanation, c)
        expected_ins = CausalMetric(softmax_model, "ins", step,
                                    lambda x: nn.functional.conv2d(x, kern, padding=klen // 2), 32 * 32).single_run(
            image, explanation, c)
        assert float(deletion[index]) == pytest.approx(expected_del, abs=1e-5)
        assert float(insertion[index]) == pytest.approx(expected_ins, abs=1e-5)


def test_batching_does_not_change_the_auc():
    model = tiny_classifier()
    generator = torch.Generator().manual_seed(1)
    images, saliency = torch.rand(3, 3, 16, 16, generator=generator), torch.rand(3, 1, 16, 16, generator=generator)
    context = MetricContext(model=model, images=images, attributions=saliency, clean_logits=model(images).detach())
    small = robustviz.create("metric", "deletion_auc", batch_size=7, step=3)(context)
    large = robustviz.create("metric", "deletion_auc", batch_size=1000, step=3)(context)
    torch.testing.assert_close(small, large)
    metric = robustviz.create("metric", "insertion_auc")
    assert metric.direction == "higher" and robustviz.create("metric", "deletion_auc").direction == "lower"


def test_scaled_blur_rule():
    assert scaled_blur(224) == (11, 5.0)
    assert scaled_blur(448) == (23, 10.0)
    kernel_size, sigma = scaled_blur(32)
    assert kernel_size == 3 and sigma == pytest.approx(5 * 32 / 224)
