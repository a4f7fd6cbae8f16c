"""Eyeshadow: one colour or a lid-to-crease gradient, multiplied in so the lid's texture shows.

Where the shadow reaches and how the two colours meet both follow a per-pixel height
above the upper lid, measured as a share of the lid-to-brow distance in the eye's own
axes, so the shape follows the lid's curve at any head roll. Colour is applied as
per-channel gains that carry the face's bare skin colour to the product's (see
``transfer_gains``): the lid's texture, shading and light survive, like pigment on skin.
"""

from __future__ import annotations

import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.layers._eyes import (
    INDEX,
    SIDES,
    Box,
    EyeFrame,
    SideIndex,
    apply_gains,
    box_grid,
    face_eye_frame,
    face_points,
    mask_pad,
    points_box,
    skin_light,
    smoothstep,
    transfer_gains,
    weighted_rgb_mean,
)
from facetory_cam.looks.schema import Eyeshadow

_BELOW_LID = (-0.12, -0.03)  # lift under the upper lid over which shadow fades out (the zone's rim)
_MIN_REACH = 0.15  # lift reached at extent 0 (a wash along the lash line)
_FULL_UNTIL = 0.55  # share of the reach at full strength before the fade towards the brow
_BLEND = (0.1, 0.8)  # share of the reach over which the lid colour turns into the crease colour
_LIGHTNESS = 0.85  # how far the lid's lightness moves to the product's
_MUTED_CHROMA = 40.0  # product chroma from which none of the skin's own chroma shows through
_STEPS = 128  # entries of the lid and brow lookup tables across the box
_LID = 9  # upper-lid points in SideIndex.lid_and_brow, before the brow's
_PROFILE_STEPS = 512  # entries of the strength and blend lookup tables over the lift
_UNIT = np.linspace(0.0, 1.0, _STEPS)


def lift(pts: np.ndarray, index: SideIndex, frame: EyeFrame, box: Box, reach: float) -> np.ndarray:
    """Per-pixel height above the upper lid over ``reach`` times the lid-to-brow distance.

    0 at the lid, 1 at ``reach`` of the way to the brow. The lid's height and the inverse gap are
    tabulated along the eye axis once, then looked up per pixel.
    """
    rows, cols = box
    ax, ay = float(frame.axis[0]), float(frame.axis[1])
    ix, iy = float(frame.inner[0]), float(frame.inner[1])
    span = [(x - ix) * ax + (y - iy) * ay for x in (cols.start, cols.stop) for y in (rows.start, rows.stop)]
    lo, hi = min(span), max(span)
    grid = _UNIT * (hi - lo) + lo
    # Both contours run outer -> inner, so reversed they rise along the axis, as interp needs.
    uv = (pts[index.lid_and_brow] - frame.inner) @ np.array([[ax, float(frame.up[0])], [ay, float(frame.up[1])]])
    lid, brow = uv[:_LID], uv[_LID:]
    lid_v = np.interp(grid, lid[:, 0], lid[:, 1])
    gap = np.maximum(np.interp(grid, brow[:, 0], brow[:, 1]) - lid_v, max(0.05 * frame.width, 1.0)) * reach
    scale = (1.0 / gap).astype(np.float32)
    offset = (-lid_v / gap).astype(np.float32)
    x, y = box_grid(box, frame.inner)
    step = (_STEPS - 1) / max(hi - lo, 1e-6)
    at = (x * float(frame.axis[0] * step) + (y * float(frame.axis[1] * step) + (0.5 - lo * step))).astype(np.int32)
    t = x * float(frame.up[0]) + y * float(frame.up[1])
    t *= scale.take(at, mode="clip")
    t += offset.take(at, mode="clip")
    return t


def _ramps(ctx: FaceContext, below: tuple[float, float]) -> np.ndarray:
    """Strength (before opacity) and crease blend over the lift table, kept by the renderer for the last extent."""
    kept = ctx.resources.get("eyeshadow ramps")
    if kept is not None and kept[0] == below:
        return kept[1]
    edges = np.array([[below[0], _FULL_UNTIL, _BLEND[0]], [below[1], 1.0, _BLEND[1]]], np.float32)
    ramps = smoothstep(
        0.0,
        1.0,
        (np.linspace(below[0], 1.0, _PROFILE_STEPS, dtype=np.float32)[:, None] - edges[0]) / (edges[1] - edges[0]),
    )
    out = np.stack([ramps[:, 0] - ramps[:, 1], ramps[:, 2]])
    ctx.resources["eyeshadow ramps"] = (below, out)
    return out


def render(ctx: FaceContext, s: Eyeshadow, strength: float) -> None:
    amount = float(s.opacity * strength)
    if amount <= 0.0:
        return
    crease = s.crease_color if s.crease_color is not None else s.color
    gradient = crease != s.color
    reach = _MIN_REACH + (1.0 - _MIN_REACH) * float(s.extent)
    below = (_BELOW_LID[0] / reach, _BELOW_LID[1] / reach)
    pts = face_points(ctx)
    pad = mask_pad(ctx)
    targets = np.stack([ctx.color_lab(s.color.rgb), ctx.color_lab(crease.rgb)])
    # Gains take the face's own skin to the product, so the lid keeps its light: a lid in shadow or
    # behind a tinted lens stays darker than the product's swatch, as real pigment would.
    skin, _ = skin_light(ctx)
    shared = (
        None if skin is None else transfer_gains(skin[None], targets, lightness=_LIGHTNESS, muted_chroma=_MUTED_CHROMA)
    )
    # Strength and crease blend as functions of the lift, tabulated once: per pixel they are a lookup.
    lo = below[0]
    ramps = _ramps(ctx, below)
    profile = ramps[0] * np.float32(amount)
    blend = profile * ramps[1]
    k = (_PROFILE_STEPS - 1) / (1.0 - lo)
    for side, name in SIDES:
        index = INDEX[name]
        # Only as high as the shadow reaches: lid points, and brow points pulled down towards them.
        pairs = pts[index.shadow_box].reshape(2, 5, 2)
        pairs[1] = pairs[0] + (pairs[1] - pairs[0]) * reach
        box = points_box(ctx.shape, pairs.reshape(10, 2), pad)
        if box is None:
            continue
        t = lift(pts, index, face_eye_frame(ctx, side), box, reach)
        t *= k
        t += 0.5 - lo * k
        at = t.astype(np.int32)
        zone = ctx.mask_in(f"{name}_eyeshadow", box)
        alpha = profile.take(at, mode="clip")
        alpha *= zone
        if shared is not None:
            gains = shared[0] if float(alpha.max()) > 0.0 else None
        else:  # no skin to sample (face cut by the frame): the lid's own mean stands in for it
            mean = weighted_rgb_mean(ctx.rgb[box], alpha)
            gains = None if mean is None else transfer_gains(mean[None], targets, lightness=_LIGHTNESS)[0]
        if gains is not None:
            blended = blend.take(at, mode="clip") * zone if gradient else None
            apply_gains(ctx.rgb, box, alpha, gains, blended)
