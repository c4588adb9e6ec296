"""Input Fisher information: exact, power-iteration and black-box λmax against an explicit JᵀΣJ."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustviz
from robustviz.metrics import MetricContext
from robustviz.metrics.fisher import (fisher_lmax, fisher_spectrum, fisher_trace, fisher_vector_product, lanczos,
                                      power_iteration)
from robustviz.registry import RegistryError
from robustviz.rng import derive_seeds
from robustviz.validation import InputError

from ._models import ScaledCNN


def fisher_cnn(num_classes: int = 5, smooth: bool = False) -> ScaledCNN:
    """BatchNorm (eval mode keeps samples independent), Tanh and Softplus; ``smooth``: average pooling, so no
    kinks for finite differences."""
    pool = nn.AvgPool2d(2) if smooth else nn.MaxPool2d(2)
    features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Tanh(), pool,
                             nn.Conv2d(6, 8, 3, padding=1), nn.Softplus())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes))
    return ScaledCNN(features, head, num_classes, 3.0)


def tiny_model(num_classes: int = 5, dtype: torch.dtype = torch.float64, seed: int = 0,
               smooth: bool = False) -> ScaledCNN:
    torch.manual_seed(seed)
    model = fisher_cnn(num_classes, smooth)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model.features[1].running_mean.uniform_(-0.2, 0.2)
        model.features[1].running_var.uniform_(0.5, 2.0)
    return model.to(dtype).eval()


def images_for(n: int = 3, size: int = 8, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(dtype)


def reference_fisher(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """F = JᵀΣJ built explicitly (D×D) from torch.autograd.functional.jacobian for one image."""
    logits_of = lambda x: model(x[None])[0]  # noqa: E731
    jacobian = torch.autograd.functional.jacobian(logits_of, image).reshape(model.num_classes, -1).double()
    probs = torch.softmax(logits_of(image).double(), dim=-1).detach()
    sigma = torch.diag(probs) - torch.outer(probs, probs)
    return jacobian.T @ sigma @ jacobian


def test_exact_lmax_trace_and_spectrum_equal_explicit_fisher():
    model, images = tiny_model(), images_for(n=2)
    spectrum = fisher_spectrum(model, images).values
    lmax = fisher_lmax(model, images, mode="exact")
    trace = fisher_trace(model, images).values
    assert lmax.model_passes == 1 + model.num_classes
    for index in range(images.shape[0]):
        fisher = reference_fisher(model, images[index])
        eigenvalues = torch.linalg.eigvalsh(fisher).flip(0)
        torch.testing.assert_close(lmax.values[index], eigenvalues[0], rtol=1e-5, atol=0)
        torch.testing.assert_close(spectrum[index, :-1], eigenvalues[: model.num_classes - 1], rtol=1e-5, atol=0)
        torch.testing.assert_close(trace[index], fisher.trace(), rtol=1e-5, atol=0)


def test_rank_is_at_most_classes_minus_one():
    model, images = tiny_model(num_classes=4), images_for(n=2)
    fisher = reference_fisher(model, images[0])
    eigenvalues = torch.linalg.eigvalsh(fisher)
    assert int((eigenvalues > 1e-9 * eigenvalues.max()).sum()) <= model.num_classes - 1
    spectrum = fisher_spectrum(model, images).values
    assert spectrum.shape == (2, 4)
    assert bool((spectrum[:, -1] <= 1e-10 * spectrum[:, 0]).all())  # the K-th eigenvalue is zero


def test_power_iteration_matches_exact_with_fewer_passes_than_reference():
    model, images = tiny_model(num_classes=6), images_for(n=3)
    exact = fisher_lmax(model, images, mode="exact").values
    power = power_iteration(model, images, seeds=derive_seeds(0, range(3), "power"))
    torch.testing.assert_close(power.values, exact, rtol=1e-4, atol=0)
    reference_passes = 1 + 2 * 100  # the reference code: 100 Rayleigh-quotient iterations of one JVP + one VJP
    assert power.model_passes < reference_passes
    assert power.model_passes == 2 + 2 * power.iterations  # forward + building u ↦ Jᵀu, then JVP + VJP


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # torch's forward-AD setup
def test_lanczos_is_exact_within_k_iterations_and_forward_jvp_agrees():
    model, images = tiny_model(num_classes=4), images_for(n=3)
    exact = fisher_lmax(model, images, mode="exact").values
    result = lanczos(model, images, seeds=derive_seeds(0, range(3), "lanczos"), tol=1e-8)
    torch.testing.assert_close(result.values, exact, rtol=1e-7, atol=0)
    assert result.iterations <= model.num_classes  # rank F ≤ K − 1: the Krylov space is invariant by step K
    assert result.model_passes == 2 + 2 * result.iterations
    direction = torch.randn(images.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(fisher_vector_product(model, images, direction, jvp="forward"),
                               fisher_vector_product(model, images, direction), rtol=1e-9, atol=1e-14)


def test_fisher_vector_product_and_kl_quadratic_form():
    model, images = tiny_model(), images_for(n=2)
    direction = torch.randn(images.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    product = fisher_vector_product(model, images, direction)
    references = [reference_fisher(model, images[index]) for index in range(2)]
    for index, fisher in enumerate(references):
        torch.testing.assert_close(product[index].flatten(), fisher @ direction[index].flatten(), rtol=1e-6,
                                   atol=1e-12)
    # KL(p(x) ‖ p(x + δ)) ≈ ½ δᵀFδ for δ in the range of F (elsewhere the quadratic term vanishes), with the
    # relative error shrinking linearly in ‖δ‖.
    in_range = torch.stack([(fisher @ direction[i].flatten()).view_as(direction[i])
                            for i, fisher in enumerate(references)])
    in_range = in_range / in_range.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    errors = []
    for scale in (1e-3, 1e-4):
        delta = scale * in_range
        with torch.no_grad():
            log_p = torch.log_softmax(model(images), dim=-1)
            log_q = torch.log_softmax(model(images + delta), dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        quadratic = torch.stack([0.5 * delta[i].flatten() @ fisher @ delta[i].flatten()
                                 for i, fisher in enumerate(references)])
        errors.append(((kl - quadratic) / quadratic).abs().max().item())
    assert errors[1] < 5e-3 and errors[1] < errors[0] / 5


def test_blackbox_central_differences_match_exact():
    model, images = tiny_model(smooth=True), images_for(n=2)
    exact = fisher_spectrum(model, images, k=2).values
    blackbox = fisher_spectrum(model, images, k=2, mode="blackbox")
    torch.testing.assert_close(blackbox.values, exact, rtol=1e-5, atol=0)
    assert blackbox.model_passes > 2 * images[0].numel() / 1024  # forward passes only, many of them


def test_works_when_the_caller_disabled_gradients():
    model, images = tiny_model(), images_for(n=2)
    expected = fisher_lmax(model, images, mode="exact").values
    with torch.inference_mode():
        frozen = images.clone()
        torch.testing.assert_close(fisher_lmax(model, frozen, mode="exact").values, expected)
        torch.testing.assert_close(fisher_lmax(model, frozen, mode="lanczos").values, expected, rtol=1e-6, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(fisher_trace(model, images).values, fisher_trace(model, images).values)
        torch.testing.assert_close(fisher_lmax(model, images, mode="power").values, expected, rtol=1e-4, atol=0)


def test_per_sample_results_do_not_depend_on_the_batch():
    model, images = tiny_model(), images_for(n=4)
    together = fisher_lmax(model, images, mode="exact").values
    alone = torch.cat([fisher_lmax(model, images[i:i + 1], mode="exact").values for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=0)


def test_float32_model_power_and_exact_agree():
    model, images = tiny_model(dtype=torch.float32), images_for(n=3, dtype=torch.float32, size=16)
    exact = fisher_lmax(model, images, mode="exact").values
    power = fisher_lmax(model, images, mode="power", seeds=derive_seeds(1, range(3), "p")).values
    torch.testing.assert_close(power, exact, rtol=1e-3, atol=0)


def test_registered_metrics_compute_per_sample_scores():
    model, images = tiny_model(dtype=torch.float32), images_for(n=3, dtype=torch.float32)
    lmax_metric = robustviz.create("metric", "fisher_lmax")
    trace_metric = robustviz.create("metric", "fisher_trace")
    assert lmax_metric.direction == "lower" and lmax_metric.category == "model-robustness"
    assert {"model", "images"} <= set(lmax_metric.needs) and not lmax_metric.per_method
    context = MetricContext(model=model, images=images, seeds=derive_seeds(0, range(3), "fisher"))
    scores = lmax_metric(context)
    assert scores.shape == (3,)
    torch.testing.assert_close(scores, fisher_lmax(model, images, mode="exact").values.float())
    traces = trace_metric(context)
    assert bool((traces >= scores - 1e-6).all())  # trace ≥ λmax for a PSD matrix
    with pytest.raises(ValueError, match="needs"):
        lmax_metric(MetricContext(images=images))


def test_zoo_model_lanczos_if_available():
    try:
        model = robustviz.create("model", "smallcnn-standard", pretrained=False)
    except (RegistryError, ImportError, TypeError) as error:
        pytest.skip(f"zoo model not available: {error}")
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    exact = fisher_lmax(model, images, mode="exact")
    krylov = fisher_lmax(model, images, mode="lanczos", seeds=derive_seeds(0, range(2), "zoo"))
    assert exact.model_passes == 1 + model.num_classes
    assert krylov.model_passes <= 2 + 2 * model.num_classes
    torch.testing.assert_close(krylov.values, exact.values, rtol=1e-4, atol=0)


def test_bad_inputs_are_clear_errors():
    model, images = tiny_model(), images_for(n=2)
    with pytest.raises(InputError, match="eval mode"):
        fisher_lmax(model.train(), images)
    model.eval()
    with pytest.raises(InputError, match="mode must be one of"):
        fisher_lmax(model, images, mode="arnoldi")
    with pytest.raises(InputError, match="mode must be 'exact' or 'blackbox'"):
        robustviz.create("metric", "fisher_trace", mode="power")
    with pytest.raises(InputError, match="shape of images"):
        fisher_vector_product(model, images, torch.zeros(2, 3))


def test_auto_mode_counts_classes_with_one_forward_when_the_model_does_not_say():
    """Issue 16: a 100-class model without ``num_classes`` used to get the exact method (101 passes)."""
    from robustviz.metrics.fisher import count_classes

    model = tiny_model(num_classes=70)  # above the 64-class limit of the exact method
    del model.num_classes
    images = images_for(2)
    calls = []
    handle = model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    try:
        assert count_classes(model, images) == 70 and calls == [1]  # one forward of one image
    finally:
        handle.remove()
    auto = fisher_lmax(model, images, mode="auto", seeds=derive_seeds(0, [0, 1]), max_iter=12)
    lanczos_result = fisher_lmax(model, images, mode="lanczos", seeds=derive_seeds(0, [0, 1]), max_iter=12)
    assert torch.equal(auto.values, lanczos_result.values) and auto.model_passes == lanczos_result.model_passes
    assert auto.model_passes < 70
    small = tiny_model(num_classes=5)
    del small.num_classes
    exact = fisher_lmax(small, images, mode="exact")
    assert torch.equal(fisher_lmax(small, images, mode="auto").values, exact.values)
    # the metric takes K from the logits the engine already computed: no extra forward
    context = MetricContext(model=model, images=images, logits=model(images).detach(),
                            seeds=derive_seeds(0, [0, 1]))
    calls.clear()
    handle = model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    try:
        values = robustviz.create("metric", "fisher_lmax", max_iter=12)(context)
    finally:
        handle.remove()
    assert 1 not in calls and torch.allclose(values.double(), auto.values.double(), rtol=1e-5)
