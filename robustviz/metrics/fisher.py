"""Fisher information of the model's predictive distribution with respect to its input.

For one image ``x`` (``D`` pixels) with logits ``z(x)`` (``K`` classes), softmax ``p`` and input Jacobian
``J = ∂z/∂x`` (``K×D``), the input-space Fisher information matrix is

    F = Jᵀ Σ J,    Σ = diag(p) − p pᵀ,

so that ``KL(p(x) ‖ p(x + δ)) ≈ ½ δᵀ F δ`` for small ``δ``. Its largest eigenvalue λmax(F) is the worst-case local
sensitivity of the output distribution to an input perturbation — larger is less robust (seed paper: "Measuring
Model Robustness via Fisher Information", arXiv:2606.04767). ``F`` has rank ≤ K − 1 (``Σ 1 = 0``).

Four ways to get λmax, all batched over independent samples (the model must be in eval mode):

- ``"exact"``: ``J`` from ``K`` backward passes (the gradient of ``Σ_n z_{n,k}`` w.r.t. the batch is every
  sample's row ``k``), then the nonzero spectrum of ``F`` equals that of the ``K×K`` matrix ``Rᵀ(J Jᵀ)R`` with
  ``Σ = R Rᵀ``, ``R = diag(√p) − p √pᵀ``. Cost: 1 forward + K backward passes; also gives trace and top-k spectrum.
- ``"power"``: power iteration on ``F v = Jᵀ(p ⊙ Jv − p (pᵀ Jv))`` with matrix-free ``Jv`` (double-backward
  trick, or ``torch.func.jvp`` with ``jvp="forward"``) and ``Jᵀu`` (backward through one shared forward graph);
  stops when every sample's residual ``‖Fv − λv‖ ≤ tol·λ``. Slow when λ₁ ≈ λ₂.
- ``"lanczos"``: Lanczos on the same products; exact after at most ``K`` iterations because rank F ≤ K − 1, and
  far faster than power iteration when the top eigenvalues are close. The matrix-free choice for large ``K``.
- ``"blackbox"``: ``J`` by central differences (``h = 1e-3``), 2·D forward passes per sample and no gradients — for
  models that cannot be differentiated.

Every function reports the number of model passes (forward, backward, JVP) it used.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from ..registry import register
from ..rng import derive_seeds, normal
from ..validation import InputError, check_images
from .base import Metric, MetricContext

MODES = ("auto", "exact", "lanczos", "power", "blackbox")
#: ``mode="auto"`` uses the exact K-backward method up to this many classes, Lanczos above.
AUTO_EXACT_MAX_CLASSES = 64


@dataclass
class FisherResult:
    """Per-sample Fisher quantities and what they cost."""

    values: torch.Tensor  # (N,) or (N, k), float64 on the images' device
    model_passes: int  # forward + backward + JVP evaluations of the model (each over the whole batch)
    iterations: int = 0  # power iterations (0 for the direct methods)


@contextmanager
def _autograd() -> Iterator[None]:
    """Gradients on, even when the caller (e.g. the engine) runs under ``torch.no_grad`` or ``inference_mode``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _check_model(model: torch.nn.Module, images: torch.Tensor) -> None:
    check_images(images, check_range=False)
    if getattr(model, "training", False):
        raise InputError("Fisher information treats samples independently and needs the model in eval mode "
                         "(BatchNorm in training mode mixes samples); call model.eval() first")


def input_jacobian(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Logits ``N×K`` and input Jacobians ``N×K×D`` (``D = C·H·W``) from one forward and ``K`` backward passes."""
    _check_model(model, images)
    with _autograd():
        inputs = images.detach().clone().requires_grad_(True)
        logits = model(inputs)
        n_classes = logits.shape[-1]
        rows = []
        for k in range(n_classes):
            (grad,) = torch.autograd.grad(logits[:, k].sum(), inputs, retain_graph=k < n_classes - 1)
            rows.append(grad.flatten(1))
    return logits.detach(), torch.stack(rows, 1), 1 + n_classes


def finite_difference_jacobian(model: torch.nn.Module, images: torch.Tensor, *, step: float = 1e-3,
                               batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Logits and input Jacobians by central differences ``(z(x + h e_d) − z(x − h e_d)) / 2h`` (forward passes
    only; ``2·D`` of them per sample, grouped into batches of ``batch_size`` images)."""
    _check_model(model, images)
    n_images = images.shape[0]
    dims = images[0].numel()
    passes = 1
    with torch.no_grad():
        logits = model(images)
        columns = torch.empty(n_images, dims, logits.shape[-1], dtype=logits.dtype, device=images.device)
        chunk = max(1, batch_size // 2)
        flat = images.flatten(1)
        for n in range(n_images):
            for start in range(0, dims, chunk):
                index = torch.arange(start, min(start + chunk, dims), device=images.device)
                shifted = flat[n].repeat(2 * index.numel(), 1)
                rows = torch.arange(index.numel(), device=images.device)
                shifted[rows, index] += step
                shifted[rows + index.numel(), index] -= step
                out = model(shifted.reshape(-1, *images.shape[1:]))
                passes += 1
                columns[n, index] = (out[: index.numel()] - out[index.numel():]) / (2 * step)
    return logits, columns.transpose(1, 2), passes


def _reduced_fisher(logits: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """``Rᵀ(J Jᵀ)R`` (``N×K×K``, float64): same nonzero eigenvalues as ``F = JᵀΣJ``."""
    probs = torch.softmax(logits.double(), dim=-1)
    root = probs.sqrt()
    factor = torch.diag_embed(root) - probs[:, :, None] * root[:, None, :]  # Σ = R Rᵀ (uses Σ_k p_k = 1)
    gram = jacobian.double() @ jacobian.double().transpose(1, 2)
    return factor.transpose(1, 2) @ gram @ factor


def _jacobian(model: torch.nn.Module, images: torch.Tensor, mode: str, step: float):
    if mode == "blackbox":
        return finite_difference_jacobian(model, images, step=step)
    return input_jacobian(model, images)


def fisher_spectrum(model: torch.nn.Module, images: torch.Tensor, *, k: int | None = None, mode: str = "exact",
                    step: float = 1e-3) -> FisherResult:
    """Top-``k`` eigenvalues of ``F`` per sample, descending (``N×k``; all ``K`` when ``k`` is None — at most
    ``K − 1`` of them are nonzero). ``mode`` is ``"exact"`` or ``"blackbox"``."""
    if mode not in ("exact", "blackbox"):
        raise InputError(f"fisher_spectrum: mode must be 'exact' or 'blackbox', got {mode!r}")
    logits, jacobian, passes = _jacobian(model, images, mode, step)
    eigenvalues = torch.linalg.eigvalsh(_reduced_fisher(logits, jacobian)).flip(-1).clamp_min(0.0)
    if k is not None:
        if k < 1:
            raise InputError(f"k must be ≥ 1, got {k}")
        eigenvalues = eigenvalues[:, :k]
    return FisherResult(eigenvalues, passes)


def fisher_trace(model: torch.nn.Module, images: torch.Tensor, *, mode: str = "exact",
                 step: float = 1e-3) -> FisherResult:
    """``trace(F) = Σ_k p_k ‖J_k‖² − ‖Σ_k p_k J_k‖²`` per sample (``mode`` "exact" or "blackbox")."""
    if mode not in ("exact", "blackbox"):
        raise InputError(f"fisher_trace: mode must be 'exact' or 'blackbox', got {mode!r}")
    logits, jacobian, passes = _jacobian(model, images, mode, step)
    reduced = _reduced_fisher(logits, jacobian)
    return FisherResult(reduced.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(0.0), passes)


JVP_MODES = ("double-backward", "forward")


class Linearisation:
    """``J v`` and ``Jᵀ u`` of a model at fixed inputs, sharing one forward pass (and its graph).

    ``Jᵀ u`` is one backward pass. ``J v`` is either the double-backward trick — differentiate the linear map
    ``u ↦ Jᵀu`` (built once with ``create_graph``) with respect to ``u``, one backward pass per product, no forward
    AD — or forward-mode AD (``torch.func.jvp``, one dual forward pass per product; its first use in a process loads
    torch's forward-AD decompositions, which takes seconds). :attr:`passes` counts model passes so far.
    """

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, jvp: str = "double-backward"):
        if jvp not in JVP_MODES:
            raise InputError(f"jvp must be one of {JVP_MODES}, got {jvp!r}")
        _check_model(model, images)
        self.model, self.jvp_mode = model, jvp
        with _autograd():
            self.inputs = images.detach().clone().requires_grad_(True)
            self.logits = model(self.inputs)
            self.passes = 1
            if jvp == "double-backward":
                self._cotangent = torch.zeros_like(self.logits, requires_grad=True)
                (self._transposed,) = torch.autograd.grad(self.logits, self.inputs, self._cotangent,
                                                          create_graph=True)
                self.passes += 1
        self.probs = torch.softmax(self.logits.detach(), dim=-1)

    def vjp(self, cotangent: torch.Tensor) -> torch.Tensor:
        """``Jᵀ u`` per sample (``u``: ``N×K``) → shaped like the images."""
        with _autograd():
            (out,) = torch.autograd.grad(self.logits, self.inputs, cotangent.to(self.logits.dtype), retain_graph=True)
        self.passes += 1
        return out.detach()

    def jvp(self, tangent: torch.Tensor) -> torch.Tensor:
        """``J v`` per sample (``v`` shaped like the images) → ``N×K``."""
        tangent = tangent.to(self.inputs.dtype)
        with _autograd():
            if self.jvp_mode == "forward":
                _, out = torch.func.jvp(self.model, (self.inputs.detach(),), (tangent,))
            else:
                (out,) = torch.autograd.grad(self._transposed, self._cotangent, tangent, retain_graph=True)
        self.passes += 1
        return out.detach()

    def fisher_product(self, vectors: torch.Tensor) -> torch.Tensor:
        """``F v = Jᵀ(p ⊙ Jv − p (pᵀ Jv))`` per sample."""
        return self.vjp(_sigma_times(self.probs, self.jvp(vectors)))


def fisher_vector_product(model: torch.nn.Module, images: torch.Tensor, vectors: torch.Tensor, *,
                          jvp: str = "double-backward") -> torch.Tensor:
    """``F v`` for one vector per sample (``vectors`` shaped like ``images``), from one JVP and one VJP."""
    if vectors.shape != images.shape:
        raise InputError(f"vectors must have the shape of images {tuple(images.shape)}, got {tuple(vectors.shape)}")
    return Linearisation(model, images, jvp).fisher_product(vectors)


def _sigma_times(probs: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    """``Σ u = p ⊙ u − p (pᵀ u)`` per sample."""
    return probs * tangent - probs * (probs * tangent).sum(-1, keepdim=True)


def power_iteration(model: torch.nn.Module, images: torch.Tensor, *, seeds: torch.Tensor | None = None,
                    max_iter: int = 100, tol: float = 1e-3, jvp: str = "double-backward") -> FisherResult:
    """λmax(F) per sample by power iteration with matrix-free products ``F v = Jᵀ Σ J v``.

    One forward pass (plus, for the default double-backward JVP, one backward building ``u ↦ Jᵀu``) is shared by
    all iterations; each iteration costs one JVP and one VJP. Iteration stops when every sample's relative residual
    ``‖Fv − λv‖/λ`` is below ``tol`` (the Rayleigh quotient's error is then of order ``tol²·λ²/gap``) or after
    ``max_iter`` iterations. The start vectors are Gaussian, drawn from ``seeds``.
    """
    operator = Linearisation(model, images, jvp)
    n_images = images.shape[0]
    if seeds is None:
        seeds = derive_seeds(0, torch.arange(n_images), "fisher-power")
    shape = images.shape
    vector = normal(seeds, shape[1:], images.device, torch.float64).flatten(1)
    vector = vector / vector.norm(dim=1, keepdim=True).clamp_min(1e-300)
    estimate = torch.zeros(n_images, dtype=torch.float64, device=images.device)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        product = operator.fisher_product(vector.to(images.dtype).view(shape)).flatten(1).double()
        estimate = (vector * product).sum(1)  # Rayleigh quotient (vector has unit norm)
        residual = (product - estimate[:, None] * vector).norm(dim=1)
        norm = product.norm(dim=1)
        if bool((residual <= tol * estimate.abs() + 1e-300).all()):
            break
        vector = product / norm.clamp_min(1e-300)[:, None]
    return FisherResult(estimate.clamp_min(0.0), operator.passes, iterations)


def lanczos(model: torch.nn.Module, images: torch.Tensor, *, seeds: torch.Tensor | None = None,
            max_iter: int = 100, tol: float = 1e-3, jvp: str = "double-backward") -> FisherResult:
    """λmax(F) per sample by Lanczos iteration (full reorthogonalisation) on the same matrix-free ``F v``.

    Power iteration converges like ``(λ₂/λ₁)^k`` and stalls when the top two eigenvalues are close (common: they
    differ by ~2 % on the tiny zoo models). Lanczos' Ritz value converges much faster and, since ``F`` has rank
    ≤ K − 1, is exact once the Krylov space reaches the range of ``F`` — after at most ``K`` iterations, each one
    JVP and one VJP. Stops when every sample's Ritz residual ``β_j |y_j|`` is ≤ ``tol·θ`` or its Krylov space is
    invariant. Memory: the basis holds ``iterations × N × D`` numbers.
    """
    operator = Linearisation(model, images, jvp)
    n_images, shape = images.shape[0], images.shape
    if seeds is None:
        seeds = derive_seeds(0, torch.arange(n_images), "fisher-lanczos")
    dtype = torch.promote_types(images.dtype, torch.float32)
    vector = normal(seeds, shape[1:], images.device, torch.float64).flatten(1)
    vector = (vector / vector.norm(dim=1, keepdim=True)).to(dtype)
    basis: list[torch.Tensor] = []
    alphas: list[torch.Tensor] = []
    betas: list[torch.Tensor] = []
    active = torch.ones(n_images, dtype=torch.bool, device=images.device)  # Krylov space not yet invariant
    estimate = torch.zeros(n_images, dtype=torch.float64, device=images.device)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        basis.append(vector)
        product = operator.fisher_product(vector.to(images.dtype).view(shape)).flatten(1).to(dtype)
        alphas.append((vector.double() * product.double()).sum(1))
        stacked = torch.stack(basis, 1)  # N×j×D
        for _ in range(2):  # classical Gram-Schmidt, twice, against the whole basis
            product = product - (stacked.transpose(1, 2) @ (stacked @ product[:, :, None]))[:, :, 0]
        beta = product.double().norm(dim=1)
        tridiagonal = torch.diag_embed(torch.stack(alphas, 1))
        if betas:
            off = torch.stack(betas, 1)
            tridiagonal = tridiagonal + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
        ritz_values, ritz_vectors = torch.linalg.eigh(tridiagonal)
        estimate = ritz_values[:, -1]
        scale = tridiagonal.abs().amax((1, 2)).clamp_min(1e-300)
        active = active & (beta > 1e-10 * scale)
        residual = torch.where(active, beta * ritz_vectors[:, -1, -1].abs(), torch.zeros_like(beta))
        if bool((residual <= tol * estimate.abs()).all()):
            break
        betas.append(torch.where(active, beta, torch.zeros_like(beta)))
        safe = torch.where(active, beta, torch.ones_like(beta))
        vector = torch.where(active[:, None], product / safe[:, None].to(dtype), torch.zeros_like(product))
    return FisherResult(estimate.clamp_min(0.0), operator.passes, iterations)


def count_classes(model: torch.nn.Module, images: torch.Tensor) -> int:
    """The model's number of classes: ``model.num_classes`` when set, else the width of one forward pass on one
    image (a model without the attribute — TorchScript, torch.export, a plain module — is not assumed small)."""
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        return declared
    with torch.no_grad():
        return int(model(images[:1]).shape[-1])


def fisher_lmax(model: torch.nn.Module, images: torch.Tensor, *, mode: str = "auto",
                seeds: torch.Tensor | None = None, max_iter: int = 100, tol: float = 1e-3,
                step: float = 1e-3, jvp: str = "double-backward", n_classes: int | None = None) -> FisherResult:
    """Largest eigenvalue of the input Fisher information per sample (see the module docstring for the modes;
    ``"auto"`` picks ``"exact"`` up to 64 classes and ``"lanczos"`` above). ``n_classes`` saves ``"auto"`` the
    look-up (:func:`count_classes`) when the caller knows it (e.g. from logits already computed)."""
    if mode not in MODES:
        raise InputError(f"fisher_lmax: mode must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        n_classes = n_classes if n_classes is not None else count_classes(model, images)
        mode = "exact" if n_classes <= AUTO_EXACT_MAX_CLASSES else "lanczos"
    if mode in ("power", "lanczos"):
        solver = power_iteration if mode == "power" else lanczos
        return solver(model, images, seeds=seeds, max_iter=max_iter, tol=tol, jvp=jvp)
    result = fisher_spectrum(model, images, k=1, mode=mode, step=step)
    return FisherResult(result.values[:, 0], result.model_passes)


class _FisherMetric(Metric):
    direction = "lower"
    category = "model-robustness"
    needs = frozenset({"model", "images"})

    def __init__(self, mode: str = "auto", max_iter: int = 100, tol: float = 1e-3, step: float = 1e-3,
                 jvp: str = "double-backward"):
        if mode not in MODES:
            raise InputError(f"{self.name}: mode must be one of {MODES}, got {mode!r}")
        if jvp not in JVP_MODES:
            raise InputError(f"{self.name}: jvp must be one of {JVP_MODES}, got {jvp!r}")
        self.mode, self.max_iter, self.tol, self.step, self.jvp = mode, max_iter, tol, step, jvp


@register("metric", "fisher_lmax")
class FisherLmax(_FisherMetric):
    """Largest eigenvalue of the input Fisher information (lower = locally more robust output distribution)."""

    name = "fisher_lmax"

    def compute(self, context: MetricContext) -> torch.Tensor:
        logits = getattr(context, "logits", None)
        n_classes = int(logits.shape[-1]) if isinstance(logits, torch.Tensor) and logits.ndim == 2 else None
        return fisher_lmax(context.model, context.images, mode=self.mode, seeds=context.seeds,
                           max_iter=self.max_iter, tol=self.tol, step=self.step, jvp=self.jvp,
                           n_classes=n_classes).values


@register("metric", "fisher_trace")
class FisherTrace(_FisherMetric):
    """Trace of the input Fisher information: the mean sensitivity over all input directions (lower = more
    robust)."""

    name = "fisher_trace"

    def __init__(self, mode: str = "exact", step: float = 1e-3):
        if mode not in ("exact", "blackbox"):
            raise InputError(f"fisher_trace: mode must be 'exact' or 'blackbox', got {mode!r}")
        super().__init__(mode, step=step)

    def compute(self, context: MetricContext) -> torch.Tensor:
        return fisher_trace(context.model, context.images, mode=self.mode, step=self.step).values


__all__ = ["JVP_MODES", "MODES", "FisherLmax", "FisherResult", "FisherTrace", "Linearisation", "count_classes",
           "finite_difference_jacobian", "fisher_lmax", "fisher_spectrum", "fisher_trace", "fisher_vector_product",
           "input_jacobian", "lanczos", "power_iteration"]
