"""Lipstick: chroma from the product, lightness detail from the lips, a finish, optional gloss."""

from __future__ import annotations

import math

import cv2
import numpy as np

from facetory_cam.looks.color import active_box, lab_to_rgb, rgb_to_lab
from facetory_cam.looks.context import Box, FaceContext
from facetory_cam.looks.schema import Lipstick

# How far the lips' mean lightness moves to the product's, per finish: matte covers most.
_LIGHTNESS = {"matte": 0.75, "satin": 0.6, "gloss": 0.5}
# Built-in shine of each finish, added to the layer's own gloss amount.
_SHINE = {"matte": 0.0, "satin": 0.25, "gloss": 0.7}
_LEVELS = (70.0, 85.0, 99.5)  # percentiles of the bare lips' lightness the finish and gloss follow


def render(ctx: FaceContext, s: Lipstick, strength: float) -> None:
    around = _lips_box(ctx)
    if around is None:
        return
    lips = cv2.add(ctx.mask_in("upper_lip", around), ctx.mask_in("lower_lip", around))
    np.minimum(lips, 1.0, out=lips)
    alpha = lips * np.float32(s.opacity * strength)
    inner = active_box(alpha)
    if inner is None:
        return
    a = alpha[inner]
    w = lips[inner]
    box = (
        slice(around[0].start + inner[0].start, around[0].start + inner[0].stop),
        slice(around[1].start + inner[1].start, around[1].start + inner[1].stop),
    )
    # Planes, not an interleaved image: every step below is a plain array operation.
    orig_l, chroma_a, chroma_b = cv2.split(rgb_to_lab(ctx.rgb[box]))
    light = orig_l.copy()
    target = ctx.color_lab(s.color.rgb)
    core = orig_l[w > 0.5]
    # the bare lips' lightness at the 70th, 85th and 99.5th percentile, read once
    p70, p85, p995 = _percentiles(core, _LEVELS) if core.size else (100.0, 100.0, 100.0)

    if s.finish == "matte":
        # A matte product scatters light: flatten the lips' own specular peaks.
        light -= np.maximum(orig_l - p85, 0.0) * 0.6 * a

    total = float(a.sum())
    mean_l = float((light * a).sum()) / total if total > 1e-6 else float(light.mean())
    light += a * np.float32((float(target[0]) - mean_l) * _LIGHTNESS[s.finish])
    chroma_a += (np.float32(target[1]) - chroma_a) * a
    chroma_b += (np.float32(target[2]) - chroma_b) * a

    shine = min(1.0, _SHINE[s.finish] + s.gloss) * strength
    if shine > 0 and core.size:
        # Specular lobe that follows the lips' real highlights: the brightest parts of the
        # bare lip get brighter and less saturated, like light on a wet surface.
        t = orig_l - np.float32(p70)
        t *= np.float32(1.0 / max(float(p995 - p70), 1e-3))
        np.clip(t, 0.0, 1.0, out=t)
        spec = t * t * (3.0 - 2.0 * t)
        spec *= spec
        spec *= w * np.float32(shine)
        light += spec * (100.0 - light) * np.float32(0.45)
        fade = 1.0 - 0.5 * spec
        chroma_a *= fade
        chroma_b *= fade
    ctx.rgb[box] = lab_to_rgb(cv2.merge([light, chroma_a, chroma_b]))


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile`` (linear interpolation) at a few percentiles, from one partial sort."""
    last = values.size - 1
    spots = [q / 100.0 * last for q in qs]
    below = [math.floor(p) for p in spots]
    ranks = sorted({r for b in below for r in (b, min(b + 1, last))})
    part = np.partition(values, ranks)
    out = []
    for p, b in zip(spots, below, strict=True):
        lo, hi = float(part[b]), float(part[min(b + 1, last)])
        out.append(lo + (hi - lo) * (p - b))
    return out


def _lips_box(ctx: FaceContext) -> Box | None:
    """The (rows, cols) box holding both lips' masks, or None when both are empty."""
    boxes = [b for b in (ctx.mask_bounds("upper_lip"), ctx.mask_bounds("lower_lip")) if b is not None]
    if not boxes:
        return None
    rows = slice(min(b[0].start for b in boxes), max(b[0].stop for b in boxes))
    cols = slice(min(b[1].start for b in boxes), max(b[1].stop for b in boxes))
    return rows, cols
