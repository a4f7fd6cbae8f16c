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
# Each side's cheek points in one gather: its centre points, then across (in, out) and down (up, down).
_POINTS = {
    id(side): np.asarray(side.cheek_centre + side.cheek_across + side.cheek_down, np.intp) for side in (LEFT, RIGHT)
}


def _blob(ctx: FaceContext, side: FaceSide, s: Blush) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The blush's (rows, cols) box in the ROI and its soft bell there, or None if off the ROI."""
    n = len(side.cheek_centre)
    pts = ctx.landmarks[_POINTS[id(side)], :2].tolist()
    a_in, a_out, d_up, d_down = pts[n:]
    cx, cy = sum(p[0] for p in pts[:n]) / n, sum(p[1] for p in pts[:n]) / n
    k_across, k_down = _ACROSS / 2.0 * s.size, _DOWN / 2.0 * s.size
    ax, ay = (a_out[0] - a_in[0]) * k_across, (a_out[1] - a_in[1]) * k_across
    dx, dy = (d_down[0] - d_up[0]) * k_down, (d_down[1] - d_up[1]) * k_down
    det = ax * dy - ay * dx
    if abs(det) < 1e-6:
        return None
    along = math.hypot(ax, ay)
    down_len = math.hypot(dx, dy)
    ox, oy = ax / max(along, 1e-9), ay / max(along, 1e-9)
    move = s.lift * _LIFT
    cx += move * (_LIFT_OUT * ox * down_len - (1.0 - _LIFT_OUT) * dx)
    cy += move * (_LIFT_OUT * oy * down_len - (1.0 - _LIFT_OUT) * dy)

    rx, ry = (abs(ax) + abs(dx)) * _REACH, (abs(ay) + abs(dy)) * _REACH  # half-size of the box round the ellipse
    h, w = ctx.shape
    x0, x1 = max(math.floor(cx - rx), 0), min(math.ceil(cx + rx) + 1, w)
    y0, y1 = max(math.floor(cy - ry), 0), min(math.ceil(cy + ry) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    # Coordinates (u, v) in units of the semi-axes (times the reach): the inverse of [across down], and
    # r^2 = u^2 + v^2 as a quadratic form in x and y.
    k = 1.0 / (det * _REACH)
    ux, uy, vx, vy = dy * k, -dx * k, -ay * k, ax * k
    gx = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
    gy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    r2 = (np.float32(2.0 * (ux * uy + vx * vy)) * gy) * gx
    r2 += np.float32(ux * ux + vx * vx) * (gx * gx)
    r2 += np.float32(uy * uy + vy * vy) * (gy * gy)
    np.minimum(r2, 1.0, out=r2)
    bell = np.subtract(np.float32(1.0), r2, out=r2)
    bell *= bell  # (1 - r^2)^2: densest at the centre, diffusing out to zero (with zero slope) at the rim
    return (slice(y0, y1), slice(x0, x1)), bell


def _flush(rgb: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float]) -> None:
    """Pegtop soft light of a flat colour at per-pixel opacity, in place, mostly keeping the lightness.

    Soft light is s + a (2c - 1) s (1 - s) per channel. On its own it also lightens or darkens, which on
    deep skin turns a pink into a chalky patch; dividing most of the luminance change back out leaves
    the shift in hue and saturation that reads as colour in the skin.
    """
    # OpenCV throughout: numpy is slow at broadcasting over three channels.
    lift = cv2.merge([alpha * np.float32(2.0 * c - 1.0) for c in colour])
    change = cv2.multiply(cv2.multiply(rgb, cv2.subtract((1.0, 1.0, 1.0, 0.0), rgb)), lift)
    before = cv2.transform(rgb, _LUMA)
    after = cv2.transform(change, _LUMA)  # luminance is linear: the change's, added to the old one
    after += before
    np.maximum(before, 1e-4, out=before)
    np.maximum(after, 1e-4, out=after)
    keep = cv2.pow(cv2.divide(before, after), _KEEP_LIGHT)
    cv2.add(rgb, change, dst=rgb)
    cv2.multiply(rgb, cv2.merge([keep, keep, keep]), dst=rgb)
    cv2.threshold(rgb, 1.0, 1.0, cv2.THRESH_TRUNC, dst=rgb)
    cv2.threshold(rgb, 0.0, 0.0, cv2.THRESH_TOZERO, dst=rgb)


def render(ctx: FaceContext, s: Blush, strength: float) -> None:
    amount = float(s.opacity) * float(strength)
    if amount <= 0.0:
        return
    colour = s.color.rgb
    skin = ctx.mask("skin")
    for side, name in ((LEFT, "left"), (RIGHT, "right")):
        shown = ctx.masks.shown(name)  # the far cheek of a turned head fades, as the cheek masks do
        if shown <= 0.0:
            continue
        blob = _blob(ctx, side, s)
        if blob is None:
            continue
        box, bell = blob
        bell *= skin[box]
        bell *= np.float32(amount * min(1.0, shown))
        _flush(ctx.rgb[box], bell, colour)
