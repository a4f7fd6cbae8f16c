"""Foundation: the skin's colour moves towards a tone while its shading and texture stay.

Foundation changes the skin's albedo, and light multiplies albedo, so the layer is a
per-pixel colour *gain*: worked out on a low-resolution copy of the skin (the colour of
each small patch against its smooth surroundings) and multiplied into the full-size
ROI. Everything finer than a low-resolution pixel (pores, hairs, freckle edges) and
the face's shading pass through untouched, and the whole layer costs one small Lab
round trip plus a share of one multiply at full size (the skin layers' gains go in
together, see ``FaceContext.defer_gain``).

In Lab, chroma is taken relative to lightness (a/(L+16), b/(L+16)), which stays put
when the same surface is lit more or less: shadows keep their proportionate chroma
instead of being filled with the tone's flat colour, which is what turns a dark or
shaded skin grey or orange. Lightness moves by a ratio for the same reason.

The skin mask keeps well clear of the eyes, brows and lips; foundation goes right up to
them (a bare ring round the mouth would show), so its low-resolution weight is grown
into that gap and the features themselves are cut back out at full resolution.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facetory_cam.looks.color import lab_to_rgb, rgb_to_lab, shrink
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import Foundation
from facetory_cam.vision.regions import FACE_OVAL, LEFT, LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, RIGHT

_LIPS = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1]
# Each eye with its brow, and the lips: polygons (mesh indices) whose surroundings the foundation reaches into,
# and the masks cut back out at full resolution. Brows are not cut: the gain only tints the skin between
# the hairs, as foundation brushed over a brow does, while cutting them would leave pale skin in the brow.
_REACH_INTO = (LEFT.eye_contour + LEFT.brow_contour, RIGHT.eye_contour + RIGHT.brow_contour, _LIPS)
_REACH_ALL = np.asarray(sum(_REACH_INTO, ()), np.intp)  # all three, so their points come from one gather
_REACH_SPLIT = np.cumsum([len(p) for p in _REACH_INTO])[:-1]
_CUT = (LEFT.eye_contour, RIGHT.eye_contour, _LIPS)
_CUT_ALL = np.asarray(sum(_CUT, ()), np.intp)
_CUT_STARTS = np.cumsum([0] + [len(p) for p in _CUT[:-1]])
_CUT_NAMES: tuple[tuple[str, ...], ...] = (("left_eye",), ("right_eye",), ("upper_lip", "lower_lip", "mouth_inner"))
_OVAL = np.asarray(FACE_OVAL, np.intp)
_GAP = 0.075  # how far the skin mask stays from the features, fraction of the face (with its feathering)

_GRID = 0.025  # low-resolution pixel, as a fraction of the face size: the finest scale foundation evens
_SURROUND = 0.06  # sigma of the "local mean" the patches are evened towards, fraction of the face
# Share of the tone's lightness (as a ratio) taken at full coverage, when it is darker or lighter than the
# skin: a much lighter shade over deep skin is where foundation looks chalky, so that goes slower.
_DARKEN = 0.6
_LIGHTEN = 0.35
_DESATURATE = 0.35  # share of a chroma loss towards a greyer tone that is taken
_EVEN_CHROMA = 0.45  # at full coverage, this share of blotchy chroma (redness, sallow patches) is evened out
_EVEN_LIGHT = 0.2  # ... and this share of blotchy lightness (spots, under-eye shadow)
_GAIN_RANGE = (0.5, 2.0)  # guards the gain where the low-resolution image is almost black


def render(ctx: FaceContext, s: Foundation, strength: float) -> None:
    amount = float(s.coverage) * float(strength)
    if amount <= 0.0:
        return
    h, w = ctx.shape  # the ROI is the face's box, which the skin fills: no sub-box to look for
    step = max(1.0, _GRID * ctx.face_size)
    size = (max(1, round(w / step)), max(1, round(h / step)))
    # Bilinear sampling at twice the grid, then exact 2x2 averages: each low-resolution pixel averages a
    # quarter of the pixels under it, plenty for a colour that is evened over several grid pixels anyway.
    small = shrink(cv2.resize(ctx.rgb, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR), size)
    weight = cv2.max(ctx.mask_resized("skin", size), ctx.mask_resized("nose", size))
    total = float(weight.sum())
    if total <= 1e-3:
        return
    sx, sy = size[0] / w, size[1] / h
    features = np.zeros((size[1], size[0]), np.uint8)
    pts = (ctx.landmarks[_REACH_ALL, :2] + 0.5) * (sx, sy) - 0.5
    for poly in np.split(np.rint(pts * 16.0).astype(np.int32), _REACH_SPLIT):
        cv2.fillConvexPoly(features, cv2.convexHull(poly), 255, cv2.LINE_AA, 4)
    reach = max(1, round(_GAP * ctx.face_size / step))
    ring = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    # Only inside the face outline: the far eye of a turned head lies close to the background.
    face = np.zeros_like(features)
    oval = (ctx.landmarks[_OVAL, :2] + 0.5) * (sx, sy) - 0.5
    cv2.fillPoly(face, [np.rint(oval * 16.0).astype(np.int32)], 255, cv2.LINE_AA, 4)
    ring = np.multiply(cv2.min(ring, face), np.float32(1.0 / 255.0), dtype=np.float32)
    reach_weight = cv2.max(weight, ring)  # the features themselves are cut out again at full size

    light, a, b = cv2.split(rgb_to_lab(small))
    scale = 1.0 / (light + 16.0)  # chroma relative to lightness: a / (L + 16), b / (L + 16)
    a *= scale
    b *= scale
    # Local means over the skin only (normalised convolution), so hair and background do not leak in.
    sigma = max(0.5, _SURROUND * ctx.face_size / step)
    sums = cv2.GaussianBlur(cv2.merge([light * weight, a * weight, b * weight, weight]), (0, 0), sigma)
    base = sums[..., :3] / (sums[..., 3:] + 1e-4)
    mean_l = float((light * weight).sum()) / total

    tone = ctx.color_lab(s.tone.rgb)
    tone_l = float(tone[0]) + 16.0
    lighten = tone_l > mean_l + 16.0
    ratio = (tone_l / (mean_l + 16.0)) ** (amount * (_LIGHTEN if lighten else _DARKEN))
    keep_l = 1.0 - _EVEN_LIGHT * amount
    new_l = (base[..., 0] * (1.0 - keep_l) + light * keep_l + 16.0) * ratio

    # The local mean chroma moves towards the tone's (straight across the a/b plane, so near-grey skin
    # takes the tone's hue without swinging through others). It may gain colour freely but loses it only
    # slowly, since a greyer skin is what reads as ashy: the move is stretched to keep that much chroma.
    base_a, base_b = base[..., 1], base[..., 2]
    tone_a, tone_b = float(tone[1]) / tone_l, float(tone[2]) / tone_l
    mean_a = base_a + (tone_a - base_a) * amount
    mean_b = base_b + (tone_b - base_b) * amount
    chroma = np.hypot(base_a, base_b)
    pull = float(np.hypot(tone_a, tone_b)) - chroma
    floor = chroma + pull * np.where(pull > 0.0, amount, amount * _DESATURATE)
    stretch = np.maximum(floor / np.maximum(np.hypot(mean_a, mean_b), 1e-6), 1.0)
    mean_a *= stretch
    mean_b *= stretch
    keep_ab = 1.0 - _EVEN_CHROMA * amount  # blotchy chroma around the local mean is evened a little
    out = cv2.merge(
        [
            new_l - 16.0,
            (mean_a + (a - base_a) * keep_ab) * new_l,
            (mean_b + (b - base_b) * keep_ab) * new_l,
        ]
    )
    gain = lab_to_rgb(out) / np.maximum(small, 1e-3)
    np.clip(gain, *_GAIN_RANGE, out=gain)
    gain -= 1.0
    gain *= reach_weight[..., None]
    gain += 1.0  # exactly 1 off the skin: those pixels stay exactly as they were
    cuts = []
    for box, names in _cut_boxes(ctx):
        cut = ctx.mask_in(names[0], box)
        for name in names[1:]:
            cut = cv2.max(cut, ctx.mask_in(name, box))
        # Only the inner half of the features' soft edges is cut back (a ramp from mask 0.25 to 0.75):
        # foundation runs up to the lash and lip lines, and cutting the whole feathered rim would leave a
        # pale halo round them.
        keep = cut * np.float32(-2.0)
        keep += np.float32(1.5)
        cuts.append((box, np.clip(keep, 0.0, 1.0, out=keep)))
    ctx.defer_gain(gain, cuts)


def _cut_boxes(ctx: FaceContext) -> list[tuple[tuple[slice, slice], tuple[str, ...]]]:
    """ROI boxes round each eye and round the lips (their masks' feathering included)."""
    h, w = ctx.shape
    margin = math.ceil(ctx.feather) + 2  # past one feather sigma the masks are below 0.25: nothing is cut
    out: list[tuple[tuple[slice, slice], tuple[str, ...]]] = []
    pts = ctx.landmarks[_CUT_ALL, :2]
    lows, highs = np.minimum.reduceat(pts, _CUT_STARTS).tolist(), np.maximum.reduceat(pts, _CUT_STARTS).tolist()
    for (lx, ly), (hx, hy), names in zip(lows, highs, _CUT_NAMES, strict=True):
        x0, y0 = max(math.floor(lx) - margin, 0), max(math.floor(ly) - margin, 0)
        x1, y1 = min(math.ceil(hx) + margin + 1, w), min(math.ceil(hy) + margin + 1, h)
        if x1 > x0 and y1 > y0:
            out.append(((slice(y0, y1), slice(x0, x1)), names))
    return out
