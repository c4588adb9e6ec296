"""Encoding helpers of the linked views and the report: JSON-safe numbers (NaN → null), short decimals, PNG data
URIs, colour tables, and JSON that is safe inside an HTML ``<script>``."""

from __future__ import annotations

import base64
import io
import json
import warnings
from typing import Any

import numpy as np


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN and 0 kept): short JSON without losing small
    magnitudes."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
        factor = 10.0 ** np.where(np.isfinite(exponent), digits - 1 - exponent, 0)
        rounded = np.round(values * factor) / factor
    return np.where(np.isfinite(values) & (values != 0), rounded, values)


def json_list(values: Any, digits: int | None = 6) -> list:
    """Nested lists with NaN/inf as ``None`` (JSON ``null``: missing, never 0)."""
    array = np.asarray(values, dtype=np.float64)
    if digits is not None:
        array = round_significant(array, digits)
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def png_data_uri(array: np.ndarray) -> str:
    """A uint8 (y, x) or (y, x, 3) array as a PNG data URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="png", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colour_table(name: str, n: int = 64) -> str:
    """A matplotlib colour map as ``n`` concatenated ``rrggbb`` hex colours (the front end interpolates)."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, n))
    return "".join(f"{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}" for r, g, b, _ in rgba)


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.nan_to_num(image.astype(np.float64)) * (255 if image.max() <= 1.0 else 1), 0, 255)
        image = image.astype(np.uint8)
    return image[..., 0] if image.shape[-1] == 1 else image


def _downsample(amap: np.ndarray, size: int) -> np.ndarray:
    """Block-mean ``amap`` to at most ``size`` pixels a side (integer factor; maps are smooth at that scale)."""
    factor = max(1, int(np.ceil(max(amap.shape) / size)))
    if factor == 1:
        return amap
    height, width = (amap.shape[0] // factor) * factor, (amap.shape[1] // factor) * factor
    return amap[:height, :width].reshape(height // factor, factor, width // factor, factor).mean((1, 3))


class _quiet:
    """Silence numpy's "mean of empty slice" warnings: an all-NaN cell is a missing cell, shown as missing."""

    def __enter__(self):
        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *args):
        return self._context.__exit__(*args)


def dumps_for_script(data: Any) -> str:
    """JSON safe inside an HTML ``<script>``: ``<``, ``>``, ``&`` and U+2028/9 escaped (``JSON.parse`` restores
    them), so no string in the data can close the script or open a tag."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


__all__ = ["colour_table", "dumps_for_script", "json_list", "png_data_uri", "round_significant"]
