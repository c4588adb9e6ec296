"""ImageNet-C weather corruptions: snow, frost, fog, brightness (+ the extra spatter), batched in torch.

Formulas (x in [0, 1], constants c from :mod:`._corruption_base`, results clipped to [0, 1]):

- snow: flakes L = N(loc, scale) zoomed ×zoom, zeroed below ``threshold``, motion-blurred (θ ~ U(−135°, −45°)),
  quantised to 8 bits; x' = blend·x + (1 − blend)·max(x, 1.5·gray(x) + 0.5); out = x' + L + rot180(L);
- frost: image_weight·x + frost_weight·F with a procedural frost layer F (:func:`._textures.frost_texture`);
- fog: (x + s·P)·m/(m + s), P a diamond-square plasma fractal with roughness ``decay``, m = max(x);
- brightness: HSV value V ← clip(V + c) (hue and saturation kept);
- spatter (water, severities 1–3): ripples from the edges of a thresholded smooth Gaussian field, tinted pale
  turquoise; (mud, severities 4–5): the thresholded field, blurred, replaces the image with brown.
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import register
from . import _ops
from ._corruption_base import Corruption
from ._sampling import next_power_of_two, normal_like, plasma_fractal, uniform_like
from ._textures import canny, equalize_hist, frost_texture, truncated_distance

_EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
_WATER = (175 / 255.0, 238 / 255.0, 238 / 255.0)
_MUD = (63 / 255.0, 42 / 255.0, 20 / 255.0)


def _normal_layer(images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any], name: str) -> torch.Tensor:
    """``loc + scale·z`` with ``z ~ N(0, 1)`` per pixel, one N×1×H×W field (snow flakes, spatter liquid)."""
    return constants["loc"] + constants["scale"] * normal_like(seeds, images[:, :1], name)


@register("perturbation", "snow")
class Snow(Corruption):
    """Falling snow: streaked flakes over a brightened, greyed image."""

    name = "snow"
    family = "weather"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        layer = _normal_layer(images, seeds, constants, self.name)
        layer = _ops.clipped_zoom(layer, max(1.0, constants["zoom"]))
        layer = torch.where(layer < constants["threshold"], torch.zeros_like(layer), layer).clamp(0.0, 1.0)
        angles = uniform_like(seeds, seeds.reshape(-1, 1), "snow-angle").reshape(-1) * 90.0 - 135.0
        layer = _ops.motion_blur(layer, constants["radius"], constants["sigma"], angles)
        layer = torch.round(layer * 255.0) / 255.0
        blend = constants["blend"]
        grey = _ops.rgb_to_gray(images) * 1.5 + 0.5
        base = blend * images + (1.0 - blend) * torch.maximum(images, grey)
        return base + layer + torch.flip(layer, dims=(-2, -1))


@register("perturbation", "frost")
class Frost(Corruption):
    """Frost on a window: a procedural ice-crystal layer blended over the image."""

    name = "frost"
    family = "weather"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        layer = frost_texture(seeds, images.shape[-2], images.shape[-1], images.device)
        return constants["image_weight"] * images + constants["frost_weight"] * layer


@register("perturbation", "fog")
class Fog(Corruption):
    """Fog: a plasma fractal added to the image, rescaled by the image maximum."""

    name = "fog"
    family = "weather"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        height, width = images.shape[-2:]
        mapsize = next_power_of_two(max(height, width, 3))
        fractal = plasma_fractal(seeds, mapsize, constants["decay"], images.device)[:, None, :height, :width]
        strength = constants["strength"]
        peak = images.amax(dim=(1, 2, 3), keepdim=True)
        return (images + strength * fractal) * peak / (peak + strength)


@register("perturbation", "brightness")
class Brightness(Corruption):
    """Brightness: HSV value raised by 0.1 … 0.5."""

    name = "brightness"
    family = "weather"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        return _ops.hsv_value_shift(images, constants["shift"])


@register("perturbation", "spatter")
class Spatter(Corruption):
    """Spatter: water droplets (severities 1–3) or mud (4–5) on the lens."""

    name = "spatter"
    family = "weather"

    def corrupt(self, images: torch.Tensor, seeds: torch.Tensor, constants: dict[str, Any]) -> torch.Tensor:
        liquid = _normal_layer(images, seeds, constants, self.name)
        liquid = _ops.gaussian_blur(liquid, constants["sigma"])
        liquid = torch.where(liquid < constants["threshold"], torch.zeros_like(liquid), liquid)
        if constants["mud"]:
            mask = (liquid > constants["threshold"]).to(images.dtype)
            mask = _ops.gaussian_blur(mask, constants["intensity"])
            mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
            colour = torch.tensor(_MUD, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
            return images * (1.0 - mask) + colour * mask
        level = torch.floor(liquid.clamp(0.0, 1.0) * 255.0)
        edges = canny(level[:, 0])
        distance = truncated_distance(edges, 20).unsqueeze(1)
        distance = torch.floor(_ops.box_blur3(distance))
        distance = equalize_hist(distance[:, 0]).unsqueeze(1).to(images.dtype)
        distance = _ops.filter2d(distance, _EMBOSS, "mirror").round().clamp(0.0, 255.0)
        distance = torch.round(_ops.box_blur3(distance))  # OpenCV's 8-bit blur rounds
        ripples = liquid * distance
        ripples = ripples / ripples.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * constants["intensity"]
        colour = torch.tensor(_WATER, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
        return images + ripples * colour


__all__ = ["Brightness", "Fog", "Frost", "Snow", "Spatter"]
