"""Iris colour: recolour the iris in Lab, sparing the pupil, highlights and (optionally) the limbal ring.

Lightness keeps its detail (a shift, not a replacement), so the iris pattern survives;
the pupil is left out by radius and reflections by brightness, which is what makes a
tinted iris look like an eye instead of a disc. Lid occlusion is already in the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.looks.color import lab_to_rgb, rgb_to_lab
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.layers._eyes import SIDES, box_grid, face_points, points_box, skin_light, smoothstep
from facetory_cam.looks.schema import IrisColor

# Radii as shares of the iris radius.
_PUPIL = (0.33, 0.48)  # coverage rises from the pupil's edge over this range
_RIM = (0.95, 1.12)  # and falls off here, so the mask's feathering never tints the white of the eye
_RING = (0.72, 0.98)  # the limbal ring, kept darker when asked
_RING_KEEP = 0.6  # share of the colour the ring holds back
_RING_DARKEN = 0.15  # and how much darker it gets (share of its lightness)
_LIGHTNESS = 0.6  # how far the iris's mean lightness moves to the product's
_HIGHLIGHT = (14.0, 30.0)  # L above the iris median from which reflections are spared, and fully spared
_MIN_RADIUS = 1.5  # px: a smaller iris is not worth painting


def render(ctx: FaceContext, s: IrisColor, strength: float) -> None:
    amount = float(s.opacity * strength)
    if amount <= 0.0:
        return
    target = ctx.color_lab(s.color.rgb).astype(np.float32)
    pts = face_points(ctx)
    _, lit = skin_light(ctx)
    for side, name in SIDES:
        centre = pts[side.iris_centre]
        radius = float(np.linalg.norm(pts[list(side.iris_ring)] - centre, axis=1).mean())
        if radius < _MIN_RADIUS:
            continue
        box = points_box(ctx.shape, centre[None], _RIM[1] * radius + 1.0)
        if box is None:
            continue
        w = ctx.mask_in(f"{name}_iris", box)
        x, y = box_grid(box, centre)
        d = np.sqrt(x * x + y * y)
        d *= 1.0 / radius
        lab = rgb_to_lab(ctx.rgb[box])
        light, a, b = cv2.split(lab)
        body = light[(w > 0.5) & (d > _PUPIL[1]) & (d < _RING[0])]
        if body.size < 3:
            continue
        median = float(np.partition(body, body.size // 2)[body.size // 2])
        spared = smoothstep(median + _HIGHLIGHT[0], median + _HIGHLIGHT[1], light)
        alpha = w * smoothstep(*_PUPIL, d)
        alpha *= 1.0 - smoothstep(*_RIM, d)
        alpha *= 1.0 - spared
        alpha *= amount
        total = float(alpha.sum())
        if total <= 1e-4:
            continue
        # The product colour is for an eye in the face's light; behind a tinted lens or in shade it
        # dims, and a darker iris carries less chroma, so a dark iris does not glow.
        mean_l = float((alpha * light).sum()) / total
        goal_l = mean_l + (float(target[0]) * lit[name] - mean_l) * _LIGHTNESS
        goal_ab = target[1:] * min(max(goal_l / max(float(target[0]), 1.0), 0.3), 1.0)
        cover = alpha
        if s.keep_limbal_ring:
            ring = smoothstep(*_RING, d)
            cover = alpha * (1.0 - _RING_KEEP * ring)
            light *= 1.0 - _RING_DARKEN * ring * alpha
        light += cover * (goal_l - mean_l)
        a += (float(goal_ab[0]) - a) * cover
        b += (float(goal_ab[1]) - b) * cover
        ctx.rgb[box] = lab_to_rgb(cv2.merge([light, a, b]))
