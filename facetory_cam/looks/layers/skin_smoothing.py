"""Skin smoothing by frequency separation: blotches go, pores and edges stay.

The skin is split into bands. Fine detail (pores, hairs, freckle edges: below about
1 % of the face) is never touched, which is what keeps the result from looking like
plastic. The rest comes from a low-resolution copy of the skin (one pixel per 1 % of
the face); an edge-preserving guided filter on that small copy separates the smooth
base from the mid-frequency blotchiness (redness, uneven patches, small bumps), and a
``strength`` share of the blotchiness is divided out of the full-size ROI as a
low-resolution gain, so the fine detail riding on it is kept. The guided filter keeps
real edges (nostrils, hairline, the jaw's silhouette, folds) in the base, so they are
not blurred; a higher strength also raises its edge threshold, evening deeper
unevenness. The skin mask already leaves out eyes, brows and lips. All filtering
happens on the small copy: a few box filters on ~10k pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import SkinSmoothing

_GRID = 0.01  # low-resolution pixel as a fraction of the face: the blotch removal is worked out at this scale
_FINE = 0.008  # sigma of the split between fine detail and the rest, fraction of the face
_RADIUS = 0.06  # guided filter window radius, fraction of the face: about the largest blotch that is evened
# Guided filter eps is this contrast squared, from strength 0 to 1: contrasts well above it count as edges
# and are kept, so a stronger setting also evens deeper unevenness.
_EDGE = (0.04, 0.15)
_REMOVE = 0.95  # share of the blotchiness removed at strength 1 (a trace left reads as real skin)
_GAIN_RANGE = (0.5, 2.0)  # guards the gain where the low-resolution image is almost black
# Share of the smoothing held back on the nose: its highlights and the shadows round the nostrils are
# its shape, at the same scale and contrast as blotches, and evening them flattens the nose.
_NOSE_KEEP = 0.6
_SUBSAMPLE = 2  # the guided filter's coefficients are worked out at this fraction of the grid


def _guided(guide: np.ndarray, src: np.ndarray, weight: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of a 3-channel image with a grey guide, over the skin only.

    Every window mean is weighted by the skin mask (a normalised box filter), so hair, background,
    eyes and lips next to the skin do not leak into its base: otherwise every skin edge would count
    as "blotch" and be flattened. As in He and Sun's fast guided filter, the linear coefficients are
    worked out on a copy of half the size and only their (smooth) window means are brought back up:
    the output still follows the full-size guide, so edges stay as crisp, for a quarter of the work.
    """
    h, w = guide.shape
    if radius >= 2 * _SUBSAMPLE and min(h, w) >= 4 * _SUBSAMPLE:
        size = (w // _SUBSAMPLE, h // _SUBSAMPLE)
        g, p, wt = (cv2.resize(x, size, interpolation=cv2.INTER_LINEAR) for x in (guide, src, weight))
        radius = round(radius / _SUBSAMPLE)
    else:
        g, p, wt = guide, src, weight
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    g3 = cv2.merge([g, g, g])
    w3 = cv2.merge([wt, wt, wt])
    # Window sums of the weight and of the weighted guide and its square, in one 3-channel pass.
    sums = box(cv2.merge([wt, wt * g, wt * g * g]))
    norm = 1.0 / (sums[..., 0] + 1e-4)
    mean_i = sums[..., 1] * norm
    var_i = sums[..., 2] * norm - mean_i * mean_i
    var_i += eps
    norm3, mean_i3, var_i3 = (cv2.merge([x, x, x]) for x in (norm, mean_i, var_i))
    wp = cv2.multiply(p, w3)
    mean_p = cv2.multiply(box(wp), norm3)
    a = cv2.divide(cv2.multiply(box(cv2.multiply(wp, g3)), norm3) - cv2.multiply(mean_p, mean_i3), var_i3)
    b = mean_p - cv2.multiply(a, mean_i3)
    mean_a = cv2.multiply(box(cv2.multiply(a, w3)), norm3)
    mean_b = cv2.multiply(box(cv2.multiply(b, w3)), norm3)
    if g is not guide:
        mean_a, mean_b = (cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR) for x in (mean_a, mean_b))
    return cv2.multiply(mean_a, cv2.merge([guide, guide, guide])) + mean_b


def render(ctx: FaceContext, s: SkinSmoothing, strength: float) -> None:
    level = float(s.strength) * float(strength)
    amount = level * _REMOVE
    if amount <= 0.0:
        return
    h, w = ctx.shape  # the ROI is the face's box, which the skin fills
    step = max(1.0, _GRID * ctx.face_size)
    size = (max(1, round(w / step)), max(1, round(h / step)))
    weight = cv2.resize(ctx.mask("skin"), size, interpolation=cv2.INTER_LINEAR)  # smooth: no need to average
    if float(weight.max()) <= 1e-3:
        return
    nose = ctx.mask_resized("nose", size)
    small = ctx.small(size)
    # Averaging over the grid is a low-pass of sigma ~0.29 step; make up the rest to the split's sigma.
    fine = np.sqrt(max(0.0, (_FINE * ctx.face_size) ** 2 - (0.29 * step) ** 2)) / step
    if fine > 0.25:
        small = cv2.GaussianBlur(small, (0, 0), fine)

    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    radius = max(1, round(_RADIUS * ctx.face_size / step))
    edge = _EDGE[0] + (_EDGE[1] - _EDGE[0]) * level
    base = _guided(grey, small, weight, radius, edge * edge)
    # Removing a share of (small - base) is a gain of 1 - share * (small - base) / small at low resolution:
    # the fine detail riding on it is scaled, never replaced. Low-resolution pixels on the rim of the skin
    # mix skin with what is beyond it, so the mask is squared there: the rim itself is barely touched.
    weight *= weight * amount
    weight *= 1.0 - _NOSE_KEEP * nose
    gain = cv2.divide(small - base, np.maximum(small, 1e-3))
    gain = 1.0 - cv2.multiply(gain, cv2.merge([weight, weight, weight]))
    np.clip(gain, *_GAIN_RANGE, out=gain)
    ctx.defer_gain(gain)
