"""Contour and highlight: soft shade under the cheekbones, at the jaw and nose sides; light on top.

Both are soft strokes drawn along face-mesh points on a low-resolution canvas (one pixel
per 1.5 % of the face) and blurred, as a brush would lay them down. Shade is a multiply
with the contour colour and light is a soft light with the highlight colour; both are
per-pixel gains, so they are combined into one gain map, clipped to the skin, and
multiplied into the full-size ROI. A gain never flattens what is under it: pores,
stubble and the face's own shading come through.

Strokes are listed for the subject's right side (image left) and mirrored through the
face mesh's left/right point pairs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import Contour
from facetory_cam.vision.regions import LEFT, RIGHT, FaceSide

_GRID = 0.015  # canvas pixel as a fraction of the face size (the strokes are soft: a coarse canvas will do)
_SHIFT = 4  # fractional bits of polygon vertices given to OpenCV
_CONTOUR_GAIN = 0.75  # multiply opacity at contour 1
_HIGHLIGHT_GAIN = 1.0  # soft light opacity at highlight 1
_BRIDGE = 168  # mesh point between the eyes
_HIDDEN, _SEEN = 0.15, 0.35  # a side's strokes fade in between these shares of the eye-to-bridge spans


# A stroke: mesh points of the subject's right side, its width (fraction of the face) at the first
# and last point, and its weight.
_Stroke = tuple[tuple[int, ...], float, float, float]

_SHADE: tuple[_Stroke, ...] = (
    ((93, 147, 187, 207), 0.055, 0.025, 1.0),  # hollow under the cheekbone, ear towards the mouth corner
    ((132, 58, 172, 136, 150, 149, 176), 0.05, 0.015, 0.7),  # along the jaw, fading before the chin
)
_NOSE_SHADE: tuple[_Stroke, ...] = (((193, 122, 196, 3, 51), 0.016, 0.02, 0.6),)  # brow head down to the wing
_LIGHT: tuple[_Stroke, ...] = (
    ((118, 117, 116), 0.03, 0.018, 1.0),  # top of the cheekbone, under the outer eye
    ((225, 224, 223), 0.02, 0.022, 0.7),  # brow bone, under the arch and tail
)
_NOSE_LIGHT: tuple[_Stroke, ...] = (((168, 6, 197, 195, 5), 0.02, 0.014, 0.8),)  # down the bridge

# Subject's right -> left counterparts of the points above (pairs of the face mesh).
_MIRROR: dict[int, int] = {
    93: 323, 147: 376, 187: 411, 207: 427, 132: 361, 58: 288, 172: 397, 136: 365, 150: 379,
    149: 378, 176: 400, 193: 417, 122: 351, 196: 419, 3: 248, 51: 281, 118: 347, 117: 346,
    116: 345, 225: 445, 224: 444, 223: 443, 168: 168, 6: 6, 197: 197, 195: 195, 5: 5,
}  # fmt: skip


class _Brushes:
    """Every brush's strokes for both sides of the face, as flat index arrays, so all their outlines
    come from one set of array ops; each stroke is painted onto its own brush's canvas."""

    def __init__(self, brushes: tuple[tuple[_Stroke, ...], ...]) -> None:
        both: list[_Stroke] = []
        sides: list[int] = []  # 0 on the midline, 1 on the subject's right, 2 on the left
        groups: list[int] = []
        for group, strokes in enumerate(brushes):
            mine: list[tuple[_Stroke, int]] = []
            for idx, w0, w1, weight in strokes:
                mirrored = tuple(_MIRROR[i] for i in idx)
                if mirrored == idx:  # midline strokes are drawn once
                    mine.append(((idx, w0, w1, weight), 0))
                else:
                    mine += [((idx, w0, w1, weight), 1), ((mirrored, w0, w1, weight), 2)]
            mine.sort(key=lambda m: m[0][3])  # weakest first: the strongest wins overlaps
            both += [m[0] for m in mine]
            sides += [m[1] for m in mine]
            groups += [group] * len(mine)
        self.sides = sides
        self.groups = groups
        sizes = [len(st[0]) for st in both]
        starts = np.cumsum([0, *sizes[:-1]])
        self.index = np.concatenate([np.asarray(st[0], np.intp) for st in both])
        local = np.concatenate([np.arange(n) for n in sizes])
        last = np.repeat(starts + np.asarray(sizes) - 1, sizes)
        flat = np.arange(len(self.index))
        self.prev = np.maximum(flat - 1, np.repeat(starts, sizes))  # central differences, one-sided at the ends
        self.next = np.minimum(flat + 1, last)
        self.half = np.concatenate([np.linspace(st[1], st[2], len(st[0])) for st in both])[:, None] * 0.5
        cap = np.zeros(len(self.index))
        cap[starts] = -1.0  # round-ish caps: the end points are pushed out along the stroke
        cap[last[local == 0]] = 1.0
        self.cap = cap[:, None]
        # Each stroke's outline as indices into [left edge points, right edge points].
        n = len(self.index)
        self.outlines = [
            np.concatenate([np.arange(a, a + m), n + np.arange(a + m - 1, a - 1, -1)]) for a, m in zip(starts, sizes)
        ]
        self.values = [255.0 * st[3] for st in both]

    def paint(
        self, canvases: list[np.ndarray | None], pts: np.ndarray, scale: float, shown: tuple[float, float, float]
    ) -> None:
        """Fill every stroke as an anti-aliased polygon into its brush's 8-bit canvas (None: skipped),
        faded by its side's ``shown``. ``pts`` are the canvas positions of the points in ``index``."""
        p = pts
        tangent = p[self.next] - p[self.prev]
        tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
        normal = tangent[:, ::-1] * (1.0, -1.0)
        half = self.half * scale
        p = p + tangent * (half * self.cap)
        edges = np.rint(np.concatenate([p + normal * half, p - normal * half]) * (1 << _SHIFT)).astype(np.int32)
        for outline, value, side, group in zip(self.outlines, self.values, self.sides, self.groups):
            canvas = canvases[group]
            if canvas is not None and shown[side] > 0.0:  # one by one: overlapping polygons would cancel out
                cv2.fillPoly(canvas, [edges[outline]], round(value * shown[side]), cv2.LINE_AA, _SHIFT)


def _shown(ctx: FaceContext, side: FaceSide) -> float:
    """How much of one side of the face is seen: 1 facing the camera, 0 once the head turns it away.

    By that side's share of the two outer-eye-corner-to-bridge distances (0.5 when frontal). Strokes on
    a far side that is turning away would land on the nose or the silhouette, so they fade early.
    """
    (bx, by), (nx, ny), (fx, fy) = ctx.landmarks[[_BRIDGE, side.eye_upper[0], _other(side).eye_upper[0]], :2].tolist()
    near, far = math.hypot(nx - bx, ny - by), math.hypot(fx - bx, fy - by)
    t = min(max((near / max(near + far, 1e-6) - _HIDDEN) / (_SEEN - _HIDDEN), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _other(side: FaceSide) -> FaceSide:
    return LEFT if side is RIGHT else RIGHT


# Each brush with its blur (sigma, fraction of the face) and whether it shades or lights. The nose's
# strokes sit close together either side of the bridge, so they are blended far less, or the shade
# would wash over the bridge's light.
_BRUSHES: tuple[tuple[tuple[_Stroke, ...], float, bool], ...] = (
    (_SHADE, 0.03, True),
    (_NOSE_SHADE, 0.01, True),
    (_LIGHT, 0.022, False),
    (_NOSE_LIGHT, 0.008, False),
)
_ALL = _Brushes(tuple(b[0] for b in _BRUSHES))
_MEAN_CELLS = 16  # the skin's mean colour is taken on a grid about this many cells across


def render(ctx: FaceContext, s: Contour, strength: float) -> None:
    shade = float(s.contour) * float(strength) * _CONTOUR_GAIN
    light = float(s.highlight) * float(strength) * _HIGHLIGHT_GAIN
    if shade <= 0.0 and light <= 0.0:
        return
    skin = ctx.mask("skin")
    h, w = ctx.shape  # the ROI is the face's box, which the skin fills
    face = ctx.face_size
    step = max(1.0, _GRID * face)
    size = (max(1, round(w / step)), max(1, round(h / step)))
    sx, sy = size[0] / w, size[1] / h
    scale = face * 0.5 * (sx + sy)

    weight = cv2.resize(skin, size, interpolation=cv2.INTER_LINEAR)  # the mask is smooth: no need to average
    if float(weight.sum()) <= 1e-3:
        return
    # The skin's mean colour (for soft light) as it stands after the layers before: a mean needs few pixels.
    coarse = (max(1, min(size[0], _MEAN_CELLS)), max(1, round(min(size[0], _MEAN_CELLS) * size[1] / size[0])))
    few = cv2.resize(weight, coarse, interpolation=cv2.INTER_AREA).reshape(-1)
    skin_rgb = few @ ctx.small(coarse).reshape(-1, 3) / max(float(few.sum()), 1e-6)

    shown = (1.0, _shown(ctx, RIGHT), _shown(ctx, LEFT))
    canvases: list[np.ndarray | None] = [
        np.zeros((size[1], size[0]), np.uint8) if (shade if is_shade else light) > 0.0 else None
        for _, _, is_shade in _BRUSHES
    ]
    # Landmarks on the canvas (pixel centres line up with cv2.resize's).
    _ALL.paint(canvases, (ctx.landmarks[_ALL.index, :2] + 0.5) * (sx, sy) - 0.5, scale, shown)
    alphas: dict[bool, np.ndarray] = {}
    for canvas, (_, soft, is_shade) in zip(canvases, _BRUSHES, strict=True):
        if canvas is not None:  # OpenCV anti-aliases only 8-bit fills, but blurs them slowly
            blurred = cv2.GaussianBlur(canvas.astype(np.float32), (0, 0), max(0.5, soft * scale))
            alphas[is_shade] = blurred if is_shade not in alphas else cv2.add(alphas[is_shade], blurred)
    # Opacity per pixel, kept to the skin; exactly 0 (gain exactly 1) away from the strokes.
    # Multiply: gain c. Pegtop soft light: gain 2c + (1 - 2c)s, taken at the skin's mean colour.
    contour_rgb = np.asarray(s.contour_color.rgb, np.float32)
    highlight_rgb = np.asarray(s.highlight_color.rgb, np.float32)
    parts = (
        (True, shade, contour_rgb - 1.0),
        (False, light, 2.0 * highlight_rgb + (1.0 - 2.0 * highlight_rgb) * skin_rgb.astype(np.float32) - 1.0),
    )
    gain = None
    for is_shade, amount, per_channel in parts:
        if is_shade not in alphas:
            continue
        alpha = cv2.min(alphas[is_shade], 255.0)
        alpha *= weight
        part = cv2.merge([cv2.addWeighted(alpha, float(c) * amount / 255.0, alpha, 0.0, 1.0) for c in per_channel])
        gain = part if gain is None else cv2.multiply(gain, part, dst=gain)
    if gain is not None:
        ctx.defer_gain(gain)
