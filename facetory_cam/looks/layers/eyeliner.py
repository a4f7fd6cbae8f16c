"""Eyeliner: a tapered, anti-aliased line on the upper lash line, with an optional wing."""

from __future__ import annotations

import math

import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.layers._eyes import (
    LINER_GROWTH,
    LINER_INNER,
    SIDES,
    darken,
    face_eye_frame,
    face_lids,
    off_eyeball,
    smoothstep,
    soft_coverage,
)
from facetory_cam.looks.schema import Eyeliner

_START = (0.02, 0.3)
_BELOW = 0.15  # share of the line below the lid contour: it covers the lash margin, not the eyeball
_WING_JOIN = 0.8  # where the wing's upper edge leaves the liner's upper edge
_NORMAL_SHARE = 0.25  # the rest of the colour is multiplied in, so skin texture shows through
_MIN_WING = 0.5  # px: a shorter wing is not drawn
_UPPER = tuple((side, True) for side, _ in SIDES)


def render(ctx: FaceContext, s: Eyeliner, strength: float) -> None:
    amount = float(s.opacity * strength)
    thick = float(s.thickness * ctx.face_size)
    if amount <= 0.0 or thick <= 0.0:
        return
    color = np.asarray(s.color.rgb, np.float32)
    sigma = min(max(0.22 * thick, 0.35), 1.5)
    wing = float(s.wing_length * ctx.face_size)
    winged = wing >= _MIN_WING
    lines = face_lids(ctx, _UPPER)
    width = thick * smoothstep(*_START, lines.s) * (LINER_INNER + LINER_GROWTH * lines.s**1.5)
    if not winged:  # round the line off at the outer corner
        width *= np.maximum(np.sqrt(np.clip((1.0 - lines.s) / 0.08, 0.0, 1.0)), 0.3)
    polys = lines.band(width * _BELOW, width * (1.0 - _BELOW))
    n = lines.s.shape[1]
    angle = math.radians(s.wing_angle)
    shapes = []
    for i, (side, _) in enumerate(SIDES):
        poly = polys[i]
        if winged:
            # Classic flick: the lower edge runs on from the outer corner and the upper edge leaves
            # the liner part-way along the lid, both meeting at the tip.
            frame = face_eye_frame(ctx, side)
            tip = frame.outer + wing * (math.cos(angle) * frame.axis + math.sin(angle) * frame.up)
            keep = np.flatnonzero(lines.s[i] <= _WING_JOIN)
            poly = np.concatenate([poly[:n], tip[None], poly[2 * n - 1 - keep[::-1]]])
        shapes.append(poly)
    # Both eyes in one box: twice the pixels of one eye's box or so, but half the calls, which cost more.
    painted = soft_coverage(ctx.shape, shapes, sigma)
    if painted is None:
        return
    box, cover = painted
    cover *= off_eyeball(ctx, [name for _, name in SIDES], box)
    cover *= np.float32(amount)
    darken(ctx.rgb, box, cover, color, _NORMAL_SHARE)
