"""How many images one forward pass of a method or metric takes: a count, capped by a pixel budget.

RISE, insertion/deletion and I-ASIDE expand each sample into hundreds to thousands of model inputs. Their
``batch_masks``/``batch_size`` settings were tuned on 32–64 px images, where 512 images are 6 MB; at 224 px the
same count makes activation tensors of gigabytes (a ResNet-50's first stage: 512×64×112×112 floats = 1.6 GB) while
throughput on a CPU stops growing near 8–16 images. Tensors above glibc's 32 MiB mmap threshold are also mapped and
faulted in afresh on every pass: with 64 images of 224 px per pass, 28 % of CPU time went to the kernel
(``benchmarks/workload_224.py``). :func:`images_per_pass` keeps the setting at small sizes and caps it at
:data:`PASS_PIXELS` (8 images of 224², whose largest ResNet-50 activation is 26 MB) so memory is bounded by a
fixed number of pixels, not by the setting. The cap depends only on the image size, so results stay independent
of the spec's ``batch_size``.
"""

from __future__ import annotations

#: Pixels (per channel) one forward pass of an expanding method or metric may hold: 8 images of 224×224.
PASS_PIXELS = 8 * 224 * 224


def images_per_pass(limit: int, height: int, width: int) -> int:
    """``limit`` images, or fewer if they exceed :data:`PASS_PIXELS` (at least one)."""
    return max(1, min(int(limit), PASS_PIXELS // max(1, int(height) * int(width))))


__all__ = ["PASS_PIXELS", "images_per_pass"]
