"""Teeth whitening: less yellow and a little lighter, on the teeth and nothing else in the mouth.

Inside the mouth opening only the teeth are touched. They are told from the mouth's
dark cavity, tongue and gums by being among the mouth's brighter pixels (judged
against that mouth's own range of lightness, so dim or harshly lit frames work) and
by not being red (gums, tongue and lip edges have a high a*). Whitening lowers b*
(yellow) towards neutral and lifts L a little, by a ratio of the remaining headroom,
so a tooth's shading and the gaps between teeth survive.
"""

from __future__ import annotations

import math

import numpy as np

from facetory_cam.looks.color import lab_to_rgb, rgb_to_lab
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import TeethWhitening
from facetory_cam.vision.regions import LIPS_INNER_LOWER, LIPS_INNER_UPPER

_OPENING = np.asarray(LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1], np.intp)  # the opening, as one polygon
_NEXT = np.roll(np.arange(len(_OPENING)), -1)  # each vertex's successor round the polygon
_MIN_PIXELS = 12  # an opening smaller than this (closed mouth, tiny face) is left alone
_MIN_GAP = 0.01  # ... and so is one whose mean height is below this share of the face
_MIN_GAP_PX = 1.5  # ... or below this many pixels
_BRIGHT = (0.35, 0.65)  # teeth weight ramps up between these fractions of the mouth's lightness range
_DARKEST = 25.0  # percentile: the mouth's darker pixels never count as teeth
_RED = (10.0, 22.0)  # a* from which a pixel stops counting as teeth (gums, tongue, lip)
_YELLOW = 0.75  # share of b* above neutral removed at strength 1
_NEUTRAL_B = 2.0  # b* of white teeth (a trace of warmth; blue-white teeth look fake)
_LIFT = 0.18  # share of the lightness headroom (100 - L) added at strength 1
_MAX_LIFT = 8.0  # cap on the lightness lift, L units


def _ramp(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def render(ctx: FaceContext, s: TeethWhitening, strength: float) -> None:
    amount = float(s.strength) * float(strength)
    if amount <= 0.0:
        return
    # The opening's box from its landmarks (the mask is only anti-aliased there, never feathered).
    opening = ctx.landmarks[_OPENING, :2].astype(np.float64)
    x, y = opening[:, 0], opening[:, 1]
    area = 0.5 * abs(float(x @ y[_NEXT] - y @ x[_NEXT]))
    gap = area / max(float(np.ptp(x)), 1.0)  # the opening's mean height
    if area < _MIN_PIXELS or gap < max(_MIN_GAP_PX, _MIN_GAP * ctx.face_size):
        return  # closed, or a sliver: no teeth worth whitening, and a whitened line would show
    h, w = ctx.shape
    x0, y0 = (max(math.floor(v) - 1, 0) for v in opening.min(axis=0))
    x1, y1 = min(math.ceil(opening[:, 0].max()) + 2, w), min(math.ceil(opening[:, 1].max()) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    box = (slice(y0, y1), slice(x0, x1))
    m = ctx.mask_in("mouth_inner", box)
    inside = m > 0.5
    n = int(np.count_nonzero(inside))
    if n < _MIN_PIXELS:
        return
    sub = ctx.rgb[box]
    lab = rgb_to_lab(sub)
    light = lab[..., 0]
    values = np.sort(light[inside])
    lo, floor, hi = (float(values[min(n - 1, int(q * n))]) for q in (0.03, _DARKEST / 100.0, 0.98))
    t0 = max(lo + _BRIGHT[0] * (hi - lo), floor)
    t1 = max(lo + _BRIGHT[1] * (hi - lo), t0 + 3.0)
    teeth = _ramp(t0, t1, light) * (1.0 - _ramp(*_RED, lab[..., 1])) * m
    teeth *= np.float32(amount)
    if float(teeth.max()) <= 0.0:
        return
    lab[..., 2] -= np.maximum(lab[..., 2] - _NEUTRAL_B, 0.0) * (_YELLOW * teeth)
    lab[..., 0] += np.minimum((100.0 - light) * _LIFT, _MAX_LIFT) * teeth
    out = lab_to_rgb(lab)
    np.copyto(sub, out, where=(teeth > 0)[..., None])
