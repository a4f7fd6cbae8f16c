"""Blush: a soft flush of colour on the apples of the cheeks.

The blob is rebuilt from the same mesh points as the ``*_cheek`` masks so that
``size`` can scale it about its centre and ``lift`` can slide it up and out towards
the temple (or down towards the jaw). Its falloff is a smooth bell with no flat top:
a flush has no edge. The colour goes on with soft light, which tints the skin
towards the colour without covering it (shading and pores stay), with most of soft
light's change in lightness taken back out: what is left is a shift in hue and
saturation, which reads as warm blood under the skin rather than a chalky patch of
paint, on deep skin too. It is kept to the skin mask, so it never reaches the eye,
nostril or lip.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import Blush
from facetory_cam.vision.regions import LEFT, RIGHT, FaceSide

_ACROSS = 0.9  # semi-axis along the cheek / distance between the "across" points (as the cheek masks)
_DOWN = 0.8  # ... across the cheek / distance between the "down" points
_REACH = 1.15  # the bell fades out at this many semi-axes (the masks' blob is cut at 1)
_LIFT = 0.55  # centre moves this many "down" semi-axes at lift +-1
_LIFT_OUT = 0.6  # share of that move that goes sideways, towards the ear, as the cheekbone runs
_KEEP_LIGHT = 0.7  # share of soft light's change in luminance that is taken back out
_LUMA = np.array([[0.2126, 0.7152, 0.0722]], np.float32)


def _blob(ctx: FaceContext, side: FaceSide, s: Blush) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The blush's (rows, cols) box in the ROI and its soft bell there, or None if off the ROI."""
    pts = ctx.landmarks
    centre = pts[list(side.cheek_centre), :2].mean(axis=0)
    a_in, a_out = pts[list(side.cheek_across), :2]
    d_up, d_down = pts[list(side.cheek_down), :2]
    across = (a_out - a_in) * (_ACROSS / 2.0 * s.size)
    down = (d_down - d_up) * (_DOWN / 2.0 * s.size)
    det = float(across[0] * down[1] - across[1] * down[0])
    if abs(det) < 1e-6:
        return None
    out = across / max(float(np.hypot(*across)), 1e-9)
    centre = centre + s.lift * _LIFT * (_LIFT_OUT * out * float(np.hypot(*down)) - (1.0 - _LIFT_OUT) * down)

    reach = (np.abs(across) + np.abs(down)) * _REACH  # half-size of the box around the rotated ellipse
    h, w = ctx.shape
    x0, x1 = max(math.floor(centre[0] - reach[0]), 0), min(math.ceil(centre[0] + reach[0]) + 1, w)
    y0, y1 = max(math.floor(centre[1] - reach[1]), 0), min(math.ceil(centre[1] + reach[1]) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    # Coordinates (u, v) in units of the semi-axes (times the reach): the inverse of [across down].
    k = 1.0 / (det * _REACH)
    gx = np.arange(x0, x1, dtype=np.float32) - np.float32(centre[0])
    gy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(centre[1])
    u = np.float32(down[1] * k) * gx - np.float32(down[0] * k) * gy
    v = np.float32(-across[1] * k) * gx + np.float32(across[0] * k) * gy
    r2 = u * u
    r2 += v * v
    np.minimum(r2, 1.0, out=r2)
    bell = 1.0 - r2
    bell *= bell  # (1 - r^2)^2: densest at the centre, diffusing out to zero (with zero slope) at the rim
    return (slice(y0, y1), slice(x0, x1)), bell


def _flush(rgb: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float]) -> None:
    """Pegtop soft light of a flat colour at per-pixel opacity, in place, mostly keeping the lightness.

    Soft light is s + a (2c - 1) s (1 - s) per channel. On its own it also lightens or darkens, which on
    deep skin turns a pink into a chalky patch; dividing most of the luminance change back out leaves
    the shift in hue and saturation that reads as colour in the skin.
    """
    lift = cv2.merge([alpha * np.float32(2.0 * c - 1.0) for c in colour])
    out = rgb + cv2.multiply(cv2.multiply(rgb, 1.0 - rgb), lift)
    y0 = cv2.transform(rgb, _LUMA)
    y1 = cv2.transform(out, _LUMA)
    keep = np.power(np.maximum(y0, 1e-4) / np.maximum(y1, 1e-4), np.float32(_KEEP_LIGHT))
    np.clip(cv2.multiply(out, cv2.merge([keep, keep, keep])), 0.0, 1.0, out=rgb)


def render(ctx: FaceContext, s: Blush, strength: float) -> None:
    amount = float(s.opacity) * float(strength)
    if amount <= 0.0:
        return
    colour = s.color.rgb
    skin = ctx.mask("skin")
    for side, name in ((LEFT, "left_cheek"), (RIGHT, "right_cheek")):
        shown = float(ctx.mask(name).max())  # the masks fade the far cheek of a turned head
        if shown <= 0.0:
            continue
        blob = _blob(ctx, side, s)
        if blob is None:
            continue
        box, bell = blob
        bell *= skin[box]
        bell *= np.float32(amount * min(1.0, shown))
        _flush(ctx.rgb[box], bell, colour)
