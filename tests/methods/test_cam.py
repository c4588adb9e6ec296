"""CAM variants against explicit, slow reference computations (hooks + each paper's formula, loops over channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import robustviz
from robustviz.validation import InputError

EPS = 1e-7


def reference_activations_and_gradients(model, image, target, layer):
    """One image: activations K×h×w and d logit_target / d activations via a forward hook + tensor hook."""
    store = {}

    def forward_hook(module, inputs, output):
        store["A"] = output
        output.register_hook(lambda grad: store.__setitem__("G", grad))

    handle = layer.register_forward_hook(forward_hook)
    try:
        logits = model(image[None].clone().requires_grad_(True))
        logits[0, target].backward()
    finally:
        handle.remove()
    model.zero_grad(set_to_none=True)
    return store["A"][0].detach().double().numpy(), store["G"][0].double().numpy(), logits[0, target].item()


def reference_ablation_scores(model, image, target, layer, channels):
    scores = []
    for k in range(channels):
        def hook(module, inputs, output, k=k):
            output = output.clone()
            output[:, k] = 0
            return output
        handle = layer.register_forward_hook(hook)
        try:
            with torch.no_grad():
                scores.append(model(image[None])[0, target].item())
        finally:
            handle.remove()
    return np.array(scores)


def reference_cam(name, model, image, target):
    layer = model.cam_layer
    A, G, score = reference_activations_and_gradients(model, image, target, layer)
    K, h, w = A.shape
    cam = np.zeros((h, w))
    if name == "grad_cam_ours":
        for k in range(K):
            cam += G[k].mean() * A[k]
    elif name == "gradcam_plus_plus":
        for k in range(K):
            weight = 0.0
            for i in range(h):
                for j in range(w):
                    g = G[k, i, j]
                    if g != 0:
                        alpha = g**2 / (2 * g**2 + A[k].sum() * g**3 + EPS)
                        weight += alpha * max(g, 0.0)
            cam += weight * A[k]
    elif name == "xgrad_cam":
        for k in range(K):
            cam += (A[k] / (A[k].sum() + EPS) * G[k]).sum() * A[k]
    elif name == "hires_cam":
        for k in range(K):
            cam += G[k] * A[k]
    elif name == "layer_cam":
        for k in range(K):
            cam += np.maximum(G[k], 0) * A[k]
    elif name == "eigen_cam":
        matrix = A.reshape(K, h * w).T
        _, _, vt = np.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vt[0]
        if np.corrcoef(projection, A.sum(0).reshape(-1))[0, 1] < 0:
            projection = -projection
        cam = projection.reshape(h, w)
    elif name == "ablation_cam":
        ablated = reference_ablation_scores(model, image, target, layer, K)
        for k in range(K):
            cam += (score - ablated[k]) / score * A[k]
    cam = np.maximum(cam, 0)
    upsampled = F.interpolate(torch.from_numpy(cam)[None, None], size=image.shape[-2:], mode="bilinear",
                              align_corners=False)
    return upsampled[0, 0].numpy()


CAMS = ["grad_cam_ours", "gradcam_plus_plus", "xgrad_cam", "hires_cam", "layer_cam", "eigen_cam", "ablation_cam"]


@pytest.mark.parametrize("name", CAMS)
def test_cam_matches_reference(name, tiny_model, batch):
    images, targets, seeds = batch
    params = {"batch_channels": 5} if name == "ablation_cam" else {}
    maps = robustviz.create("method", name, **params).attribute(tiny_model, images, targets, seeds=seeds)
    assert maps.shape == (3, 1, 32, 32)
    for index in range(len(images)):
        expected = reference_cam(name, tiny_model, images[index], int(targets[index]))
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, atol=1e-5 * scale, rtol=1e-5)
        assert np.abs(expected).max() > 0  # the comparison is not between two zero maps


def test_cam_variants_differ_on_a_nonlinear_head(tiny_model, batch):
    images, targets, seeds = batch
    maps = {name: robustviz.create("method", name).attribute(tiny_model, images, targets, seeds=seeds)
            for name in ("grad_cam_ours", "hires_cam", "layer_cam")}
    assert not torch.allclose(maps["grad_cam_ours"], maps["hires_cam"])
    assert not torch.allclose(maps["hires_cam"], maps["layer_cam"])


@pytest.mark.parametrize("name", CAMS)
def test_cam_removes_hooks_keeps_no_grads_and_is_batch_independent(name, zoo_model, batch):
    images, targets, seeds = batch
    images = F.interpolate(images, size=64)  # the zoo's SmallCNN has output stride 8
    together = _check_batch_independent_and_clean(robustviz.create("method", name), zoo_model, images, targets, seeds)
    assert not together.requires_grad


def _check_batch_independent_and_clean(method, model, images, targets, seeds) -> torch.Tensor:
    """Sample 1 alone gets its map from the batch; no hooks left on the model, no gradients on its parameters."""
    together = method.attribute(model, images, targets, seeds=seeds)
    alone = method.attribute(model, images[1:2], targets[1:2], seeds=seeds[1:2])
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-4)
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks
    assert all(parameter.grad is None and parameter.requires_grad for parameter in model.parameters())
    return together


def test_grad_cam_ours_matches_captum_grad_cam(tiny_model, batch):
    images, targets, seeds = batch
    ours = robustviz.create("method", "grad_cam_ours").attribute(tiny_model, images, targets, seeds=seeds)
    captum = robustviz.create("method", "grad_cam").attribute(tiny_model, images, targets, seeds=seeds)
    torch.testing.assert_close(ours, captum, atol=1e-6, rtol=1e-5)


def test_cam_layer_argument_and_missing_layer(tiny_model, batch):
    images, targets, seeds = batch
    by_name = robustviz.create("method", "layer_cam", layer="features.3").attribute(tiny_model, images, targets,
                                                                                   seeds=seeds)
    default = robustviz.create("method", "layer_cam").attribute(tiny_model, images, targets, seeds=seeds)
    torch.testing.assert_close(by_name, default)
    bare = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    bare(images)
    with pytest.raises(InputError, match="cam_layer"):
        robustviz.create("method", "grad_cam_ours").attribute(bare, images, targets, seeds=seeds)
    with pytest.raises(InputError, match="no submodule"):
        robustviz.create("method", "grad_cam_ours", layer="nope").attribute(tiny_model, images, targets, seeds=seeds)


# --- Score-CAM, EigenGrad-CAM and the smoothing options: explicit loops, scipy upsampling, numpy SVD ------------

def _upsample_corners_aligned(channel: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling with corners aligned (pytorch-grad-cam's UpsamplingBilinear2d), via scipy."""
    from scipy import ndimage

    return ndimage.zoom(channel, size / channel.shape[0], order=1, grid_mode=False, mode="nearest")


def _finish(cam: np.ndarray, size: int, relu: bool = True) -> np.ndarray:
    cam = np.maximum(cam, 0) if relu else cam
    return F.interpolate(torch.from_numpy(cam)[None, None], size=(size, size), mode="bilinear",
                         align_corners=False)[0, 0].numpy()


def _signed_first_component(weighted: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's get_2d_projection (centred SVD), sign chosen to correlate with the channel sum."""
    K, h, w = weighted.shape
    matrix = weighted.reshape(K, h * w).T
    matrix = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(matrix, full_matrices=True)
    projection = matrix @ vt[0]
    if np.corrcoef(projection, weighted.sum(0).reshape(-1))[0, 1] < 0:
        projection = -projection
    return projection.reshape(h, w)


def reference_score_cam(model, image, target, weights="softmax", relu=True):
    A, _, _ = reference_activations_and_gradients(model, image, target, model.cam_layer)
    size = image.shape[-1]
    scores = []
    for k in range(A.shape[0]):  # one masked forward pass per channel
        mask = _upsample_corners_aligned(A[k], size)
        mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
        with torch.no_grad():
            out = model((image * torch.from_numpy(mask).float())[None])[0]
        scores.append(float(out.softmax(0)[target] if weights == "confidence" else out[target]))
    scores = np.array(scores)
    if weights == "softmax":
        channel_weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    else:
        with torch.no_grad():
            baseline = float(model(torch.zeros_like(image)[None])[0].softmax(0)[target])
        channel_weights = scores - baseline
    return _finish(sum(channel_weights[k] * A[k] for k in range(A.shape[0])), size, relu)


@pytest.mark.parametrize("weights, relu", [("softmax", True), ("confidence", False)])
def test_score_cam_matches_the_per_channel_loop(weights, relu, tiny_model, batch):
    images, targets, seeds = batch
    maps = robustviz.create("method", "score_cam", weights=weights, relu=relu, batch_masks=7).attribute(
        tiny_model, images, targets, seeds=seeds)
    for index in range(len(images)):
        expected = reference_score_cam(tiny_model, images[index], int(targets[index]), weights, relu)
        assert np.abs(expected).max() > 0  # not a comparison of zero maps
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)


def test_eigengrad_cam_matches_numpy_svd(tiny_model, batch):
    images, targets, seeds = batch
    maps = robustviz.create("method", "eigengrad_cam").attribute(tiny_model, images, targets, seeds=seeds)
    for index in range(len(images)):
        A, G, _ = reference_activations_and_gradients(tiny_model, images[index], int(targets[index]),
                                                      tiny_model.cam_layer)
        expected = _finish(_signed_first_component(G * A), 32)
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)


@pytest.mark.parametrize("name", ["grad_cam_ours", "layer_cam"])
def test_eigen_smooth_is_the_first_component_of_the_weighted_activations(name, tiny_model, batch):
    images, targets, seeds = batch
    maps = robustviz.create("method", name, eigen_smooth=True).attribute(tiny_model, images, targets, seeds=seeds)
    plain = robustviz.create("method", name).attribute(tiny_model, images, targets, seeds=seeds)
    assert not torch.allclose(maps, plain)
    for index in range(len(images)):
        A, G, _ = reference_activations_and_gradients(tiny_model, images[index], int(targets[index]),
                                                      tiny_model.cam_layer)
        weighted = G.mean(axis=(1, 2))[:, None, None] * A if name == "grad_cam_ours" else np.maximum(G, 0) * A
        expected = _finish(_signed_first_component(weighted), 32)
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)


def test_aug_smooth_averages_six_flipped_and_scaled_copies(tiny_model, batch):
    images, targets, seeds = batch
    maps = robustviz.create("method", "hires_cam", aug_smooth=True).attribute(tiny_model, images, targets,
                                                                              seeds=seeds)
    for index in range(len(images)):
        copies = []
        for flip in (False, True):
            for factor in (0.9, 1.0, 1.1):
                augmented = (images[index] * factor).clamp(0, 1)
                augmented = augmented.flip(-1) if flip else augmented
                cam = reference_cam("hires_cam", tiny_model, augmented, int(targets[index]))
                copies.append(cam[:, ::-1] if flip else cam)
        expected = np.mean(copies, axis=0)
        np.testing.assert_allclose(maps[index, 0].numpy(), expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)


@pytest.mark.parametrize("name, params", [("score_cam", {"batch_masks": 5}), ("eigengrad_cam", {}),
                                          ("grad_cam_ours", {"aug_smooth": True, "eigen_smooth": True})])
def test_new_cams_are_batch_independent_and_clean_up(name, params, zoo_model, batch):
    images, targets, seeds = batch
    images = F.interpolate(images, size=64)
    _check_batch_independent_and_clean(robustviz.create("method", name, **params), zoo_model, images, targets, seeds)


def test_score_cam_rejects_bad_parameters():
    with pytest.raises(InputError, match="weights"):
        robustviz.create("method", "score_cam", weights="nope")
    with pytest.raises(InputError, match="batch_masks"):
        robustviz.create("method", "score_cam", batch_masks=0)


@pytest.mark.parametrize("name", ["grad_cam", "grad_cam_ours", "gradcam_plus_plus", "layer_cam", "eigengrad_cam"])
def test_cam_layer_followed_by_an_inplace_relu(name, batch):
    """torchvision's blocks end in ``ReLU(inplace=True)``: the CAM of a conv layer read before it must be the same
    as with an out-of-place ReLU (the captured activations are the conv's, not the ReLU's)."""

    class Net(torch.nn.Sequential):
        @property
        def cam_layer(self) -> torch.nn.Module:
            return self[0]

    def build(inplace: bool) -> torch.nn.Module:
        torch.manual_seed(3)
        return Net(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(inplace=inplace),
                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 5)).eval()

    images, target, seeds = batch
    method = robustviz.create("method", name)
    reference = method.attribute(build(False), images, target, seeds=seeds)
    inplace = method.attribute(build(True), images, target, seeds=seeds)
    assert reference.abs().sum() > 0
    torch.testing.assert_close(inplace, reference)
