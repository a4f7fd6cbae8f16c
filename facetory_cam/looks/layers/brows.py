"""Brows: tint the hairs, or fill the brow shape, keeping the hair texture.

``fill`` 0 weights the colour by how much darker than the skin between the hairs each
pixel is, so only hairs take it; 1 covers the brow shape evenly. Colour goes on as
per-channel gains (see ``transfer_gains``), so hairs stay darker than the skin between
them even under a full fill.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.layers._eyes import (
    INDEX,
    SIDES,
    Box,
    apply_gains,
    box_grid,
    face_points,
    luma_of,
    mask_pad,
    points_box,
    smoothstep,
    transfer_gains,
    weighted_rgb_mean,
)
from facetory_cam.looks.schema import Brows

_LIGHTNESS = 0.9  # how far the brow's lightness moves to the product's
_MIN_SPREAD = 0.05  # luma: sparse or very light brows still get a hair-to-skin scale
_FILL_EDGE = (0.2, 0.7)  # mask values over which a fill goes from nothing to full
_FILL_TEXTURE = 0.4  # share of a fill that follows the hairs
_HEAD = 0.55  # strength at the brow's head (by the nose), rising to 1 a third of the way along
_TAIL = 0.35  # and how much of it the tail's end loses, so the brow does not end bluntly


def render(ctx: FaceContext, s: Brows, strength: float) -> None:
    amount = float(s.opacity * strength)
    if amount <= 0.0:
        return
    target = ctx.color_lab(s.color.rgb).reshape(1, 3)
    fill = float(s.fill)
    pts = face_points(ctx)
    pad = mask_pad(ctx)
    todo: list[tuple[Box, np.ndarray]] = []
    means: list[np.ndarray] = []
    for side, name in SIDES:
        box = points_box(ctx.shape, pts[INDEX[name].brow_contour], pad)
        if box is None:
            continue
        w = ctx.mask_in(f"{name}_brow", box)
        sub = ctx.rgb[box]
        luma = luma_of(sub)
        core = luma[w > 0.5]
        n = core.size
        if n < 4:
            continue
        lo, hi = int(0.1 * (n - 1)), int(0.9 * (n - 1))
        part = np.partition(core, (lo, hi))
        hair_level, skin_level = float(part[lo]), float(part[hi])
        k = 1.0 / max(skin_level - hair_level, _MIN_SPREAD)
        hair = cv2.addWeighted(luma, -k, luma, 0.0, skin_level * k)
        np.clip(hair, 0.0, 1.0, out=hair)
        # Head (inner end) to tail along the brow: the head stays softer and the tail fades, as drawn.
        head, tail = pts[side.brow_upper[-1]], pts[side.brow_upper[0]]
        d = (tail - head) / max(float((tail - head) @ (tail - head)), 1e-6)
        x, y = box_grid(box, head)
        along = x * float(d[0]) + y * float(d[1])
        # A gentle strength gradient, so plain ramps do: rising to 1 by a third, falling past 0.8.
        taper = np.minimum(along * ((1.0 - _HEAD) / 0.35) + _HEAD, 1.0)
        np.minimum(taper, (1.0 + 0.8 * _TAIL / 0.25) - along * (_TAIL / 0.25), out=taper)
        np.maximum(taper, min(_HEAD, 1.0 - _TAIL), out=taper)
        # The mask's feathering suits hairs but is too soft for a filled shape: fill a crisper one,
        # still a little denser on the hairs so their texture shows through the fill.
        alpha = cv2.addWeighted(hair, fill * _FILL_TEXTURE, hair, 0.0, fill * (1.0 - _FILL_TEXTURE))
        alpha *= smoothstep(*_FILL_EDGE, w)
        alpha += cv2.multiply(w, hair, scale=1.0 - fill)
        alpha *= taper
        alpha *= np.float32(amount)
        mean = weighted_rgb_mean(sub, alpha)
        if mean is not None:
            todo.append((box, alpha))
            means.append(mean)
    if not todo:
        return
    gains = transfer_gains(np.stack(means), target, lightness=_LIGHTNESS)
    for (box, alpha), g in zip(todo, gains, strict=True):
        apply_gains(ctx.rgb, box, alpha, g, None)
