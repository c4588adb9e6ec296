"""Synthetic, schema-valid results cubes for tests, docs and benchmarks.

:func:`make_cube` builds a cube that *looks like* an evaluation's output without running any model: accuracy falls
with severity (more slowly for "robust" models), explanation similarity falls with severity, the clean slice
(severity 0) is identical for every perturbation, ``correct == (pred == label)``, ``confidence >= prob_true``,
SID/SRS follow the I-ASIDE definitions, and stored examples hold images and signed attribution maps. Values are
deterministic for a given ``seed``. Panels, figures and the accessor are tested against it; plugin authors can use it
to test code that consumes cubes.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any, Mapping

import numpy as np
import xarray as xr

from ..cube.schema import BASE_VARIABLES, EXAMPLE_VARIABLES, METHOD_DIMS, SAMPLE_DIMS, SCHEMA_VERSION

_MODEL_POOL = ("smallcnn-standard", "smallcnn-noiseaug", "tinyresnet-standard", "smallcnn-adversarial",
               "tinyresnet-noiseaug", "tinyvit-standard", "tinyresnet-adversarial", "tinyvit-noiseaug",
               "tinyvit-adversarial", "alexnet")
#: (name, family) — ordered so that the first few cover different families.
_PERTURBATION_POOL = (
    ("gaussian_noise", "noise"), ("defocus_blur", "blur"), ("contrast", "digital"), ("fog", "weather"),
    ("shot_noise", "noise"), ("motion_blur", "blur"), ("pixelate", "digital"), ("snow", "weather"),
    ("impulse_noise", "noise"), ("glass_blur", "blur"), ("jpeg_compression", "digital"), ("frost", "weather"),
    ("speckle_noise", "noise"), ("zoom_blur", "blur"), ("elastic_transform", "digital"), ("brightness", "weather"),
    ("gaussian_blur", "blur"), ("saturate", "digital"), ("spatter", "weather"), ("uniform_noise", "noise"),
    ("fgsm", "adversarial"), ("pgd_linf", "adversarial"), ("spectral_high", "spectral"),
    ("spectral_low", "spectral"), ("salt_pepper", "noise"),
)
_METHOD_POOL = ("saliency", "gradcam", "integrated_gradients", "rise", "smoothgrad", "gradcam_plusplus",
                "input_x_gradient", "deeplift", "occlusion", "layercam", "guided_backprop", "scorecam")
_CLASS_NAMES = ("circle", "square", "triangle", "cross", "ring", "star", "bar", "dot", "wave", "grid")

#: Metadata of the synthetic explanation metrics: (direction, category, long_name).
EXPLANATION_VARIABLES: dict[str, tuple[str, str, str]] = {
    "cosine": ("higher", "explanation-robustness", "cosine similarity of clean and perturbed attributions"),
    "consistency": ("higher", "explanation-robustness",
                    "similarity of clean and perturbed attributions when the prediction is unchanged"),
    "responsiveness": ("higher", "explanation-robustness",
                       "dissimilarity of clean and perturbed attributions when the prediction changes"),
    "deletion_auc": ("lower", "faithfulness", "area under the deletion curve"),
}
SRS_BETA = 0.75


def _names(pool: tuple, count: int, prefix: str) -> list:
    if count < 1:
        raise ValueError(f"make_cube needs at least one {prefix}, got {count}")
    return [pool[i] if i < len(pool) else (f"{prefix}-{i}" if isinstance(pool[0], str) else
                                           (f"{prefix}-{i}", "digital")) for i in range(count)]


def spectral_robustness_score(sid: np.ndarray, beta: float = SRS_BETA) -> np.ndarray:
    """I-ASIDE's SRS of SID vectors along the last axis: |<b̂, SID> − D| / |1 − D| with b_k = β^k."""
    n_bands = sid.shape[-1]
    weights = beta ** np.arange(n_bands, dtype=np.float64)
    unit = weights / np.linalg.norm(weights)
    reference = (weights.sum() / np.linalg.norm(weights)) / n_bands
    return np.abs(sid @ unit - reference) / abs(1.0 - reference)


def _example_images(labels: np.ndarray, families: list[str], n_severities: int, image_size: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clean images (a coloured disc per class on a soft gradient) and their perturbed versions.

    Returns ``(images, centres)`` with images float32 (perturbation, severity, example, channel, y, x) in [0, 1].
    """
    n_examples = labels.size
    grid = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    centres = rng.uniform(0.3, 0.7, size=(n_examples, 2)).astype(np.float32)
    clean = np.empty((n_examples, 3, image_size, image_size), np.float32)
    for index, label in enumerate(labels):
        colour = np.array([(label * 0.37) % 1.0, (label * 0.61 + 0.2) % 1.0, (label * 0.13 + 0.5) % 1.0],
                          np.float32)
        disc = ((yy - centres[index, 0]) ** 2 + (xx - centres[index, 1]) ** 2) < 0.06
        background = 0.25 + 0.3 * xx
        clean[index] = np.where(disc[None], colour[:, None, None], background[None])
    out = np.empty((len(families), n_severities, n_examples, 3, image_size, image_size), np.float32)
    for p_index, family in enumerate(families):
        for severity in range(n_severities):
            image = clean.copy()
            if severity and family in ("noise", "adversarial", "spectral"):
                image = image + rng.normal(0.0, 0.07 * severity, size=image.shape).astype(np.float32)
            elif severity and family == "blur":
                for _ in range(severity):
                    image = (image + np.roll(image, 1, -1) + np.roll(image, -1, -1) + np.roll(image, 1, -2)
                             + np.roll(image, -1, -2)) / 5.0
            elif severity:
                image = (image - 0.5) * (1.0 - 0.15 * severity) + 0.5 + 0.04 * severity
            out[p_index, severity] = np.clip(image, 0.0, 1.0)
    return out, centres


def make_cube(n_models: int = 2, n_perturbations: int = 3, n_methods: int = 2, n_samples: int = 20,
              n_examples: int = 2, image_size: int = 16, n_bands: int = 8, seed: int = 0,
              chunks: Mapping[str, int] | str | None = None, *, n_classes: int = 10) -> xr.Dataset:
    """A synthetic but schema-valid and plausible results cube.

    Dims ``model, perturbation, severity (0..5), method, sample, band, example, channel, y, x``. Variables: the base
    per-sample variables (``correct``, ``pred``, ``prob_true``, ``confidence``), explanation metrics (``cosine``,
    ``consistency``, ``responsiveness``, ``deletion_auc``; ``consistency`` is NaN where the prediction changed and
    ``responsiveness`` NaN where it did not), ``fisher_lmax`` per sample, I-ASIDE ``shapley``/``sid`` (model, band)
    and ``srs`` (model), and stored examples ``example_image``/``example_attribution``. ``chunks`` (e.g.
    ``{"sample": 250}``) returns a dask-backed cube.
    """
    if not 1 <= n_examples <= n_samples:
        raise ValueError(f"n_examples must lie in 1..n_samples ({n_samples}), got {n_examples}")
    if n_classes < 2 or n_classes > len(_CLASS_NAMES):
        raise ValueError(f"n_classes must lie in 2..{len(_CLASS_NAMES)}, got {n_classes}")
    rng = np.random.default_rng(seed)
    models = _names(_MODEL_POOL, n_models, "model")
    perturbations = _names(_PERTURBATION_POOL, n_perturbations, "perturbation")
    methods = _names(_METHOD_POOL, n_methods, "method")
    severities = np.arange(6, dtype=np.int64)
    n_sev = severities.size
    labels = rng.integers(0, n_classes, size=n_samples).astype(np.int64)
    chance = 1.0 / n_classes

    # Model, perturbation and method traits; one latent difficulty per (model, sample), shared across cells so
    # each sample's correctness can only get worse with severity.
    robustness = rng.uniform(0.6, 1.6, size=n_models)
    clean_accuracy = rng.uniform(0.82, 0.97, size=n_models)
    hardness = rng.uniform(0.12, 0.4, size=n_perturbations)
    method_fragility = rng.uniform(0.5, 1.5, size=n_methods)
    decay = np.exp(-hardness[None, :, None] * severities[None, None, :] / robustness[:, None, None])
    accuracy = chance + (clean_accuracy[:, None, None] - chance) * decay  # (model, perturbation, severity)
    difficulty = rng.uniform(size=(n_models, n_samples)).astype(np.float32)
    correct = difficulty[:, None, None, :] < accuracy[..., None]

    shape = (n_models, n_perturbations, n_sev, n_samples)
    offset = rng.integers(1, n_classes, size=shape)
    pred = np.where(correct, labels, (labels + offset) % n_classes).astype(np.int64)
    draw = rng.uniform(size=shape).astype(np.float32)
    fade = (1.0 - 0.06 * severities)[None, None, :, None].astype(np.float32)
    confidence = np.where(correct, (0.4 + 0.58 * draw) * fade, 0.3 + 0.5 * draw).astype(np.float32)
    share = rng.uniform(0.0, 0.95, size=shape).astype(np.float32)
    prob_true = np.where(correct, confidence, np.minimum(confidence, 1 - confidence) * share).astype(np.float32)
    for values in (pred, confidence, prob_true):
        values[:, 1:, 0] = values[:, :1, 0]  # the clean image does not depend on the perturbation

    # Explanation metrics: similarity falls with severity, faster for fragile methods and less robust models.
    loss = (hardness[None, :, None, None, None] * severities[None, None, :, None, None]
            * method_fragility[None, None, None, :, None] / robustness[:, None, None, None, None])
    method_shape = (n_models, n_perturbations, n_sev, n_methods, n_samples)
    jitter = rng.normal(0.0, 0.06, size=method_shape) * (severities > 0)[None, None, :, None, None]
    cosine = np.clip(1.0 - 0.55 * loss + jitter, -1.0, 1.0).astype(np.float32)
    changed = (pred != pred[:, :, :1, :])[:, :, :, None, :]
    changed = np.broadcast_to(changed, method_shape)
    consistency = np.where(changed, np.nan, cosine).astype(np.float32)
    responsiveness = np.where(changed, np.clip(1.0 - cosine + 0.2, 0.0, 2.0), np.nan).astype(np.float32)
    deletion_auc = np.clip(0.12 + 0.1 * method_fragility[None, None, None, :, None] + 0.05 * loss
                           + rng.normal(0.0, 0.03, size=method_shape), 0.0, 1.0).astype(np.float32)
    fisher = (rng.lognormal(0.0, 0.4, size=shape) * (2.0 / robustness[:, None, None, None])
              * (1.0 + 0.1 * severities[None, None, :, None])).astype(np.float32)

    per_sample = {"correct": correct, "pred": pred, "prob_true": prob_true, "confidence": confidence,
                  "fisher_lmax": fisher}
    per_method = {"cosine": cosine, "consistency": consistency, "responsiveness": responsiveness,
                  "deletion_auc": deletion_auc}
    for values in (*per_sample.values(), *per_method.values()):
        values[:, 1:, 0] = values[:, :1, 0]  # the clean image does not depend on the perturbation

    # I-ASIDE: robust models put more of their Shapley value on low-frequency bands.
    concentration = np.clip(0.35 + 0.35 * robustness, 0.3, 0.95)
    shapley = concentration[:, None] ** np.arange(n_bands)[None, :] + rng.uniform(0, 0.05, (n_models, n_bands))
    shapley = (shapley - 0.2).astype(np.float64)
    sid = shapley - shapley.min(axis=1, keepdims=True)
    sid /= sid.sum(axis=1, keepdims=True)
    srs = spectral_robustness_score(sid)

    example_ids = np.arange(n_examples, dtype=np.int64)
    families = [family for _, family in perturbations]
    images, centres = _example_images(labels[:n_examples], families, n_sev, image_size, rng)
    example_image = np.broadcast_to(np.round(images * 255).astype(np.uint8)[None],
                                    (n_models, *images.shape)).copy()
    grid = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    blob = np.exp(-((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2)
                  / 0.02)  # (example, y, x)
    noise_amplitude = np.clip(0.6 * loss[..., :1], 0.0, 2.0)  # (model, perturbation, severity, method, 1)
    attribution_noise = rng.normal(0.0, 1.0, size=(*method_shape[:4], n_examples, image_size, image_size))
    method_gain = np.linspace(1.0, 0.5, n_methods)[None, None, None, :, None, None, None]
    attribution = method_gain * blob[None, None, None, None] + noise_amplitude[..., None, None] * attribution_noise
    attribution[:, 1:, 0] = attribution[:, :1, 0]

    names = lambda values: np.array(values, dtype=object)  # noqa: E731 — variable-length strings for zarr 3
    coords = {
        "model": names(models),
        "perturbation": names([name for name, _ in perturbations]),
        "family": ("perturbation", names(families)),
        "severity": severities,
        "method": names(methods),
        "sample": np.arange(n_samples, dtype=np.int64),
        "label": ("sample", labels),
        "band": np.arange(n_bands, dtype=np.int64),
        "example": example_ids,
        "channel": names(["red", "green", "blue"]),
    }
    data_vars: dict[str, Any] = {}
    for name, values in per_sample.items():
        info = BASE_VARIABLES.get(name, {"long_name": "largest eigenvalue of the Fisher information of the inputs",
                                         "direction": "lower", "category": "model-robustness"})
        data_vars[name] = (SAMPLE_DIMS, values,
                           {k: info[k] for k in ("long_name", "direction", "category")})
    for name, values in per_method.items():
        direction, category, long_name = EXPLANATION_VARIABLES[name]
        data_vars[name] = (METHOD_DIMS, values, {"direction": direction, "category": category,
                                                 "long_name": long_name})
    spectral_attrs = {"category": "model-robustness"}
    data_vars["shapley"] = (("model", "band"), shapley.astype(np.float32),
                            {**spectral_attrs, "direction": "none", "long_name": "Shapley value of the band"})
    data_vars["sid"] = (("model", "band"), sid.astype(np.float32),
                        {**spectral_attrs, "direction": "none", "long_name": "spectral importance distribution"})
    data_vars["srs"] = (("model",), srs.astype(np.float32),
                        {**spectral_attrs, "direction": "higher", "long_name": "spectral robustness score",
                         "beta": SRS_BETA})
    data_vars["example_image"] = (EXAMPLE_VARIABLES["example_image"], example_image,
                                  {"direction": "none", "long_name": "stored example image (uint8)"})
    data_vars["example_attribution"] = (EXAMPLE_VARIABLES["example_attribution"], attribution.astype(np.float16),
                                        {"direction": "none", "long_name": "stored example attribution map"})
    ds = xr.Dataset(data_vars, coords=coords, attrs=_attrs(models, perturbations, methods, n_samples, n_examples,
                                                           seed, n_classes))
    if chunks is not None:
        ds = ds.chunk(chunks)
    return ds


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _attrs(models: list, perturbations: list, methods: list, n_samples: int, n_examples: int, seed: int,
           n_classes: int) -> dict[str, Any]:
    from .. import __version__

    spec = {"name": "synthetic", "models": models, "dataset": "synthetic", "n_samples": n_samples,
            "perturbations": [name for name, _ in perturbations], "severities": [1, 2, 3, 4, 5],
            "methods": methods, "metrics": list(EXPLANATION_VARIABLES) + ["fisher_lmax", "iaside"],
            "batch_size": 32, "seed": seed, "device": "cpu", "sample_chunk": None, "n_examples": n_examples,
            "extra": {}}
    return {
        "title": "synthetic cube from robustviz.testing.make_cube (no model was run)",
        "robustviz_version": __version__,
        "torch_version": _version("torch"),
        "captum_version": _version("captum"),
        "spec": json.dumps(spec, sort_keys=True),
        "seed": seed,
        "device": "cpu",
        "created": "2000-01-01T00:00:00+00:00",
        "schema_version": SCHEMA_VERSION,
        "class_names": json.dumps(list(_CLASS_NAMES[:n_classes])),
    }


__all__ = ["EXPLANATION_VARIABLES", "make_cube", "spectral_robustness_score"]
