"""Metrics: per-sample scores (``Metric``) and model-level analyses (``ModelMetric``)."""

from .._optional import import_submodules
from .base import CATEGORIES, NEEDS, Metric, MetricContext, ModelMetric

import_submodules(__name__, ("model", "explanation", "faithfulness", "sensitivity", "localisation", "fisher",
                             "spectral", "complexity", "calibration", "faithfulness_extra", "sanity", "aggatt"))

__all__ = ["CATEGORIES", "NEEDS", "Metric", "MetricContext", "ModelMetric"]
