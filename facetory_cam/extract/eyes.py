"""Eye makeup: eyeshadow (colours and extent), eyeliner (thickness, wing), mascara.

Eyeshadow. The renderer (looks/layers/eyeshadow.py) multiplies the lid by per-channel gains that
carry the face's skin to the product colour, with a strength that is full from the lash line to
about half the shadow's reach and fades out by the reach, the reach set by ``extent`` as a share
of the lid-to-brow distance. So the photo is read in the same coordinates: every pixel between
lid and brow gets its height above the lid as a share of the lid-to-brow gap, the lid is cut into
height bands, and each band's colour is divided by what a bare lid of this face would show there
(the skin under the eye times the bare lid's usual shading at that height, measured on bare
faces, times this person's own lid brightness, which the bands above the shadow pin). The
result, band by band, is ``1 + strength(height) * (gain - 1)``: the shape of the strength gives
the extent (the renderer's own profile, checked against the renderer by a test), its size and
direction the colour, and a change of direction from the lid to the crease a second colour.
Lashes, liner and brow hairs are the darkest pixels of a band and are trimmed away, as are the
brightest (highlight, glitter, glasses reflections).

Opacity and colour of a gain are one product in the renderer's output (a stronger colour at
lower opacity paints the same lid), so the opacity is set to a well-covering product's (raised
when the colour could not be reached) and the colour solved for it with the renderer.

Bare lids differ between people by about 15 % in brightness and a few percent in colour, which
is as much as a light shadow changes them: only shadows clearly past that are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facetory_cam.extract.baseline import Baseline
from facetory_cam.extract.estimate import LayerEstimate, logistic
from facetory_cam.extract.forward import Forward, hex_of_lab, hex_of_rgb, lab_of, solve_lab
from facetory_cam.extract.view import FaceView
from facetory_cam.looks.layers import _eyes as _liner
from facetory_cam.looks.layers import eyeshadow as _shadow
from facetory_cam.looks.schema import Eyeliner, Eyeshadow, Layers, Mascara
from facetory_cam.vision.regions import LEFT, RIGHT, FaceSide

__all__ = ["EyeBands", "band_strength", "estimate_eyeliner", "estimate_eyeshadow", "estimate_mascara", "eye_bands"]

Box = tuple[slice, slice]
SIDES: tuple[tuple[FaceSide, str], ...] = ((LEFT, "left"), (RIGHT, "right"))
# Height bands above the lid, as shares of the lid-to-brow gap.
BANDS = np.array([0.0, 0.1, 0.2, 0.32, 0.44, 0.56, 0.68, 0.8, 0.92], np.float32)
_UNDER_EYE = {"left": (340, 346, 347, 348, 349), "right": (111, 117, 118, 119, 120)}
# A bare lid's colour at each band over the skin under the eye (sRGB ratios), on bare MT faces.
_BARE_LID = np.array(
    [
        [0.519, 0.434, 0.444],
        [0.630, 0.594, 0.594],
        [0.732, 0.684, 0.680],
        [0.765, 0.706, 0.680],
        [0.823, 0.774, 0.740],
        [0.847, 0.806, 0.771],
        [0.830, 0.789, 0.757],
        [0.799, 0.755, 0.724],
    ],
    np.float32,
)
_BRIGHTNESS = np.geomspace(0.75, 1.33, 11)  # a bare lid's brightness over the table's, tried per face
_BRIGHTNESS_SPREAD = 0.13  # log-spread of that brightness between people
_NOISE = 0.03  # spread of a band's colour ratio about the fit that is noise (the bare table's chroma spread)
_LUMA_NOISE = 0.08  # ... and of its brightness, after the lid's own brightness is taken out
# Brightness and two colour-opponent axes of an RGB ratio change (orthonormal columns).
_OPPONENT = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(2), 1 / np.sqrt(6)],
        [1 / np.sqrt(3), 0.0, -2 / np.sqrt(6)],
        [1 / np.sqrt(3), -1 / np.sqrt(2), 1 / np.sqrt(6)],
    ]
)
_LUMA_SPREAD = 0.16  # spread of a bare lid's brightness over the under-eye skin, between people
_CHROMA_SPREAD = 0.04  # ... and of its colour (channel ratios about their mean)
# Evidence (in bare-lid spreads) at which a shadow is as likely there as not: bare lids reach 3 spreads.
_EVIDENCE_AT_HALF = 3.5
_LINER_AT_HALF = 3.0
_MASCARA_AT_HALF = 4.0  # a squint or a smile darkens the lower lash line as much as mascara
_EXTENTS = np.linspace(0.0, 1.0, 11)
_CREASE_DIFFERENCE = 0.25  # gain difference from which a second colour is worth keeping
_OPACITY = 0.9  # a well-covering shadow's opacity; opacity and colour are one product in the rendered lid
_DARK_TRIM = 25.0  # percent of each band's darkest pixels left out: lashes, liner, brow hairs
_BRIGHT_TRIM = 95.0


@dataclass(frozen=True)
class EyeBands:
    """Mean colour of each height band of both lids, and the colour of the skin under each eye (sRGB 0..1)."""

    colour: np.ndarray  # (2, bands, 3), NaN where a band has too few pixels
    count: np.ndarray  # (2, bands)
    under_eye: np.ndarray  # (2, 3)
    heights: list[np.ndarray]  # per eye: height of each pixel of its box (for maps), ROI boxes below
    boxes: list[tuple[slice, slice] | None]
    keep: list[np.ndarray]  # per eye: which box pixels are lid skin (not eye, brow, outside the corners)


def _lid_geometry(pts: np.ndarray, side: FaceSide, shape: tuple[int, int]) -> tuple[Box, np.ndarray, np.ndarray] | None:
    """The box round one eye's lid-to-brow area, each pixel's height above the lid and its place along the eye."""
    upper = pts[list(side.eye_upper)]  # outer -> inner corner
    brow = pts[list(side.brow_lower)]  # tail -> head
    outer, inner = upper[0], upper[-1]
    axis = outer - inner
    width = float(math.hypot(*axis))
    if width < 2.0:
        return None
    axis = axis / width
    up = np.array([axis[1], -axis[0]])
    if float((brow.mean(axis=0) - inner) @ up) < 0.0:
        up = -up
    every = np.concatenate([upper, brow])
    h, w = shape
    x0, y0 = max(0, math.floor(every[:, 0].min()) - 2), max(0, math.floor(every[:, 1].min()) - 2)
    x1, y1 = min(w, math.ceil(every[:, 0].max()) + 3), min(h, math.ceil(every[:, 1].max()) + 3)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = (xs - inner[0]) * axis[0] + (ys - inner[1]) * axis[1]
    v = (xs - inner[0]) * up[0] + (ys - inner[1]) * up[1]
    lid_uv = np.stack([(upper - inner) @ axis, (upper - inner) @ up], axis=1)
    brow_uv = np.stack([(brow - inner) @ axis, (brow - inner) @ up], axis=1)
    lid_uv, brow_uv = lid_uv[np.argsort(lid_uv[:, 0])], brow_uv[np.argsort(brow_uv[:, 0])]
    lid_v = np.interp(u, lid_uv[:, 0], lid_uv[:, 1])
    brow_v = np.interp(u, brow_uv[:, 0], brow_uv[:, 1])
    gap = np.maximum(brow_v - lid_v, 0.05 * width)
    height = (v - lid_v) / gap
    along = u / width
    return (slice(y0, y1), slice(x0, x1)), height.astype(np.float32), along.astype(np.float32)


def eye_bands(view: FaceView) -> EyeBands:
    """Band colours of both lids of a face view."""
    rgb = view.roi_rgb
    pts = view.roi_landmarks.astype(np.float64)
    shape = rgb.shape[:2]
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    n = len(BANDS) - 1
    colour = np.full((2, n, 3), np.nan, np.float32)
    count = np.zeros((2, n), np.int32)
    under = np.full((2, 3), np.nan, np.float32)
    heights: list[np.ndarray] = []
    boxes: list[tuple[slice, slice] | None] = []
    keeps: list[np.ndarray] = []
    radius = max(1.5, 0.018 * view.face_size)
    skin = view.mask("skin")
    for i, (side, name) in enumerate(SIDES):
        geo = _lid_geometry(pts, side, shape)
        if geo is None:
            heights.append(np.zeros((0, 0), np.float32))
            boxes.append(None)
            keeps.append(np.zeros((0, 0), bool))
            continue
        box, height, along = geo
        eye = view.masks.within(f"{name}_eye", *box)
        brow = view.masks.within(f"{name}_brow", *box)
        keep = (along > 0.08) & (along < 0.95) & (eye < 0.3) & (brow < 0.25)
        heights.append(height)
        boxes.append(box)
        keeps.append(keep)
        sub, lum = rgb[box], luma[box]
        for b in range(n):
            sel = keep & (height >= BANDS[b]) & (height < BANDS[b + 1])
            if sel.sum() < 8:
                continue
            values, light = sub[sel], lum[sel]
            lo, hi = np.percentile(light, (_DARK_TRIM, _BRIGHT_TRIM))
            mid = (light >= lo) & (light <= hi)
            colour[i, b] = values[mid].mean(axis=0)
            count[i, b] = int(mid.sum())
        # The skin under the eye: round a few mesh points on the cheek's top edge, skin only.
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        near = np.zeros(shape, bool)
        for k in _UNDER_EYE[name]:
            cx, cy = pts[k]
            x0, x1 = max(0, int(cx - radius)), min(shape[1], int(cx + radius) + 1)
            y0, y1 = max(0, int(cy - radius)), min(shape[0], int(cy + radius) + 1)
            if x1 > x0 and y1 > y0:
                near[y0:y1, x0:x1] |= (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2 <= radius**2
        near &= skin > 0.3
        if near.sum() >= 5:
            values = rgb[near]
            light = luma[near]
            lo, hi = np.percentile(light, (10.0, 90.0))
            under[i] = values[(light >= lo) & (light <= hi)].mean(axis=0)
    return EyeBands(colour, count, under, heights, boxes, keeps)


def _profile(height: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """The renderer's shadow strength (before the zone mask and opacity) and crease blend at these heights."""
    reach = _shadow._MIN_REACH + (1.0 - _shadow._MIN_REACH) * extent
    t = height / reach
    below = (_shadow._BELOW_LID[0] / reach, _shadow._BELOW_LID[1] / reach)
    strength = _smooth(t, *below) - _smooth(t, _shadow._FULL_UNTIL, 1.0)
    return strength, _smooth(t, *_shadow._BLEND)


def _smooth(x: np.ndarray, e0: float, e1: float) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class _Fit:
    extent: float
    lid: np.ndarray  # (3,) full-strength change of each channel at the lid: gain - 1
    crease: np.ndarray | None  # (3,) the same towards the crease, None for one colour
    residual: float
    brightness: float = 1.0  # this face's bare lid over the bare-lid table


def band_strength(view: FaceView, bands: EyeBands, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean strength and strength times crease blend of each band of both eyes, for one extent."""
    n = len(BANDS) - 1
    alpha = np.zeros((2, n))
    mixed = np.zeros((2, n))
    for i, (_, name) in enumerate(SIDES):
        box = bands.boxes[i]
        if box is None:
            continue
        height, keep = bands.heights[i], bands.keep[i]
        zone = view.masks.within(f"{name}_eyeshadow", *box)
        strength, blend = _profile(height, extent)
        strength = strength * zone
        for b in range(n):
            sel = keep & (height >= BANDS[b]) & (height < BANDS[b + 1])
            if sel.any():
                alpha[i, b] = float(strength[sel].mean())
                mixed[i, b] = float((strength * blend)[sel].mean())
    return alpha, mixed


def _fit(view: FaceView, bands: EyeBands, ratio: np.ndarray, weight: np.ndarray) -> _Fit:
    """Extent, lid / crease changes and the bare lid's own brightness that best explain each band.

    ``ratio`` is each band's colour over the bare lid the table predicts, (rows, 3). Its model is
    ``k * (1 + strength * change)``: ``k`` is how much brighter or darker this person's bare lid is
    than the table's (the lids' shading varies between people and lights), held near 1 by its
    spread between people; bands the shadow does not reach pin it. Misfits are weighed in
    brightness and in colour separately: a bare lid strays from the table far more in brightness.
    """
    rows = weight > 0
    w = np.sqrt(weight[rows] / weight[rows].sum())[:, None]
    maps = {float(e): band_strength(view, bands, float(e)) for e in _EXTENTS}
    scale = 1.0 / np.array([_LUMA_NOISE, _NOISE, _NOISE])
    best: _Fit | None = None
    best_cost = np.inf
    for k in _BRIGHTNESS:
        y = (ratio[rows] / k - 1.0) * w
        prior = (np.log(k) / _BRIGHTNESS_SPREAD) ** 2
        for extent, (alpha, mixed) in maps.items():
            a, m = alpha.reshape(-1)[rows][:, None], mixed.reshape(-1)[rows][:, None]
            one = np.linalg.lstsq(a * w, y, rcond=None)[0]
            miss_one = (((a * w @ one - y) @ _OPPONENT) * scale) ** 2
            design = np.concatenate([a - m, m], axis=1) * w
            two = np.linalg.lstsq(design, y, rcond=None)[0]
            miss_two = (((design @ two - y) @ _OPPONENT) * scale) ** 2
            lid, crease, residual = one[0], None, float(miss_one.sum())
            if miss_two.sum() < 0.5 * miss_one.sum() and float(np.abs(two[1] - two[0]).max()) > _CREASE_DIFFERENCE:
                lid, crease, residual = two[0], two[1], float(miss_two.sum())
            cost = residual + prior
            if cost < best_cost:
                best, best_cost = _Fit(extent, lid, crease, residual, float(k)), cost
    assert best is not None
    return best


def _evidence(change: np.ndarray) -> float:
    """How far a change of a band's colour ratio lies outside a bare lid's range (in its spreads)."""
    lum = float(change.mean())
    chroma = float(np.abs(change - lum).max())
    return max(abs(lum) / _LUMA_SPREAD, chroma / _CHROMA_SPREAD)


def _fitted_evidence(view: FaceView, bands: EyeBands, fit: _Fit, weight: np.ndarray) -> float:
    """The largest change the fit puts on a band the photo shows, against a bare lid's spread.

    Read where the shadow is, not as its full-strength extrapolation: a fit with a tiny reach
    would otherwise turn the slightest difference at the lash line into a bold colour.
    """
    alpha, mixed = band_strength(view, bands, fit.extent)
    crease = fit.lid if fit.crease is None else fit.crease
    fitted = (alpha - mixed)[..., None] * fit.lid + mixed[..., None] * crease
    seen = weight > 0
    return max((_evidence(c) for c in fitted[seen]), default=0.0)


class _GainProbe:
    """The gains the renderer's eyeshadow applies on this face, per target colour, read off a probe."""

    def __init__(self, view: FaceView, forward: Forward) -> None:
        self.forward = forward
        self.image = forward.small_image(view.rgb)
        pts = forward.small_landmarks[:, :2].astype(np.float64)
        shape = forward.small_shape
        core = np.zeros(shape, bool)
        zone = forward.small_region("left_eyeshadow", "right_eyeshadow")
        eyes = forward.small_region("left_eye", "right_eye")
        for side, _ in SIDES:
            geo = _lid_geometry(pts, side, shape)
            if geo is None:
                continue
            box, height, along = geo
            core[box] |= (height > 0.08) & (height < 0.4) & (along > 0.2) & (along < 0.8)
        core &= eyes < 0.3
        if core.any():
            core &= zone >= 0.5 * float(zone[core].max())
        # The renderer's strength there is the zone mask times the opacity (the profile is full that
        # low on the lid at extent 1), so each pixel's change divided by its mask value is the gain's.
        self.core = core
        self.zone = zone[core][:, None]
        self.base = self.image[core].astype(np.float32) + 0.5

    def gain(self, target: np.ndarray) -> np.ndarray:
        layer = Eyeshadow(color=hex_of_lab(target), opacity=1.0, extent=1.0)
        out = self.forward.paint(Layers(eyeshadow=layer), self.image, small=True)
        ratio = (out[self.core] * 255.0 + 0.5) / self.base
        return 1.0 + np.median((ratio - 1.0) / self.zone, axis=0)


def _solve_colour(probe: _GainProbe, reference: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, float]:
    """The product colour whose gains on this face are ``gain`` (per channel), and the miss in Lab."""
    want = lab_of(np.clip(reference * gain, 0.0, 1.0))

    def produce(target: np.ndarray) -> np.ndarray:
        return lab_of(np.clip(reference * probe.gain(target), 0.0, 1.0))

    return solve_lab(produce, want, want, np.diag([_shadow._LIGHTNESS, 1.0, 1.0]))


def estimate_eyeshadow(view: FaceView, forward: Forward) -> LayerEstimate:
    bands = eye_bands(view)
    bare = bands.under_eye[:, None, :] * _BARE_LID[None]
    ratio = bands.colour / np.maximum(bare, 1e-3)  # (2, bands, 3)
    weight = np.where(np.isfinite(ratio).all(axis=2), bands.count, 0).astype(np.float64)
    if weight.sum() < 30:
        return LayerEstimate("eyeshadow", None, 0.0, {"pixels": float(weight.sum())})
    ratio = np.nan_to_num(ratio, nan=1.0)
    fit = _fit(view, bands, ratio.reshape(-1, 3), weight.reshape(-1))
    evidence = _fitted_evidence(view, bands, fit, weight)
    confidence = logistic(evidence / _EVIDENCE_AT_HALF - 1.0)
    detail = {
        "extent": fit.extent,
        "evidence": round(evidence, 3),
        "residual": round(fit.residual, 5),
        "brightness": round(fit.brightness, 3),
    }
    reference = np.nanmean(bands.under_eye, axis=0)
    if not np.all(np.isfinite(reference)):
        return LayerEstimate("eyeshadow", None, 0.0, detail)
    probe = _GainProbe(view, forward)
    if not probe.core.any():
        return LayerEstimate("eyeshadow", None, 0.0, detail)
    changes = [fit.lid] + ([] if fit.crease is None else [fit.crease])
    # A darker shade needs at least enough product to reach it: gains cannot go below 0.
    opacity = max(_OPACITY, *(float(-c.min()) / 0.95 for c in changes))
    opacity = min(1.0, opacity)
    colours = []
    miss = 0.0
    for c in changes:
        lab, err = _solve_colour(probe, reference, 1.0 + c / opacity)
        colours.append(lab)
        miss = max(miss, err)
    layer = Eyeshadow(
        color=hex_of_lab(colours[0]),
        crease_color=hex_of_lab(colours[1]) if len(colours) > 1 else None,
        opacity=round(opacity, 3),
        extent=round(fit.extent, 3),
    )
    detail["miss"] = round(miss, 3)
    return LayerEstimate("eyeshadow", layer, confidence, detail)


# ---------------------------------------------------------------------------------------------
# Eyeliner and mascara: the dark band along the lash lines.
#
# The renderer draws the liner as a band on the upper lash line, from nothing at the inner
# corner to its full thickness at the outer one, mostly above the lid contour; mascara darkens a
# thinner band on both lids. Bare eyes have a dark lash line too, so both are read against what
# bare eyes show (measured on bare faces): the width of the dark band outward from the upper lid
# over the outer half of the eye gives the liner's thickness, a dark run leaving the outer corner
# the wing, and the darkness of the lower lash line the mascara.

_LINER_AT = (0.55, 0.7, 0.85)  # places along the upper lid (inner 0 .. outer 1) the band is measured at
_REACH = 0.05  # how far out from the lid profiles go, fraction of the face
_STEP = 0.5  # px between profile samples
# What bare eyes read as (medians and spreads over bare MT faces): lashes and the lid's crease make a
# dark band as wide as a thin liner, so only a liner well past them is taken for one.
_BARE_LINER = 0.021  # thickness, fraction of the face
_LINER_SPREAD = 0.007
_BARE_WING = 0.035  # dark run leaving the outer corner (lashes, the crease's end)
_WING_SPREAD = 0.018
_BARE_LOWER = 0.136  # contrast of the lower lash line over the skin under it
_LOWER_SPREAD = 0.12
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class _Lid:
    points: np.ndarray  # (n, 2) the lid contour, inner -> outer corner, ROI px
    normals: np.ndarray  # (n, 2) unit, away from the eye opening
    s: np.ndarray  # (n,) arc length share, 0 inner .. 1 outer


def _lid(pts: np.ndarray, side: FaceSide, upper: bool) -> _Lid | None:
    ids = (side.eye_upper if upper else side.eye_lower)[::-1]  # inner -> outer
    line = pts[list(ids)]
    seg = np.diff(line, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    if length.sum() < 3.0:
        return None
    s = np.concatenate([[0.0], np.cumsum(length)]) / length.sum()
    tangent = np.gradient(line, axis=0)
    normals = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normals /= np.maximum(np.hypot(normals[:, 0], normals[:, 1]), 1e-9)[:, None]
    away = pts[side.brow_lower[2]] - line.mean(axis=0)
    if not upper:
        away = -away
    if float((normals * away).sum()) < 0.0:
        normals = -normals
    return _Lid(line, normals, s)


def _ray(luma: np.ndarray, origin: np.ndarray, direction: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Luma sampled (bilinear) along a ray from ``start`` to ``stop`` px."""
    d = np.arange(start, stop, _STEP, dtype=np.float32)
    xy = origin[None, :] + d[:, None] * direction[None, :]
    return cv2.remap(
        luma,
        xy[:, 0:1].astype(np.float32),
        xy[:, 1:2].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )[:, 0]


def _at(lid: _Lid, s: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.interp(s, lid.s, lid.points[:, 0])
    y = np.interp(s, lid.s, lid.points[:, 1])
    nx = np.interp(s, lid.s, lid.normals[:, 0])
    ny = np.interp(s, lid.s, lid.normals[:, 1])
    n = np.array([nx, ny])
    return np.array([x, y]), n / max(float(np.hypot(*n)), 1e-9)


def _liner_width(stats: np.ndarray) -> float:
    """Width (px) of the dark run in a profile that starts just inside the lid: under half-way to the skin."""
    skin = float(np.median(stats[-max(3, len(stats) // 5) :]))
    dark = float(stats[: len(stats) // 2].min())
    if skin - dark < 0.04:
        return 0.0
    below = stats < 0.5 * (skin + dark)
    first = int(np.argmax(below))
    if not below[first]:
        return 0.0
    run = first
    while run < len(below) and below[run]:
        run += 1
    return (run - first) * _STEP


@dataclass(frozen=True)
class LashLines:
    """Liner thickness and wing as read from the photo (fractions of the face), and the lower lash contrast."""

    thickness: float
    wing: float
    wing_angle: float
    lower: float
    colour: np.ndarray  # sRGB of the darkest part of the upper band


def lash_lines(view: FaceView) -> LashLines:
    rgb = view.roi_rgb
    luma = np.ascontiguousarray(rgb @ _LUMA)
    pts = view.roi_landmarks.astype(np.float64)
    face = view.face_size
    thick, wings, angles, lowers, darks = [], [], [], [], []
    for side, _ in SIDES:
        upper = _lid(pts, side, True)
        lower = _lid(pts, side, False)
        if upper is None or lower is None:
            continue
        for s in _LINER_AT:
            origin, normal = _at(upper, s)
            prof = _ray(luma, origin, normal, -0.004 * face, _REACH * face)
            factor = _smooth(np.array(s), 0.02, 0.3) * (_liner.LINER_INNER + _liner.LINER_GROWTH * s**1.5)
            thick.append(_liner_width(prof) / (face * float(factor)))
            k = int(np.argmin(prof[: len(prof) // 2]))
            xy = origin + (-0.004 * face + k * _STEP) * normal
            darks.append(
                rgb[int(np.clip(round(xy[1]), 0, rgb.shape[0] - 1)), int(np.clip(round(xy[0]), 0, rgb.shape[1] - 1))]
            )
        # Wing: the longest dark run leaving the outer corner, over a fan of angles above the eye line.
        frame = eye_frame_of(pts, side)
        corner = upper.points[-1]
        skin = float(np.median(_ray(luma, *_at(upper, 0.75), 0.03 * face, 0.045 * face)))
        best, best_angle = 0.0, 20.0
        for angle in (0.0, 10.0, 20.0, 30.0, 40.0, 50.0):
            a = math.radians(angle)
            direction = math.cos(a) * frame[0] + math.sin(a) * frame[1]
            prof = _ray(luma, corner, direction, 0.0, 0.15 * face)
            dark = float(prof[: max(2, len(prof) // 10)].min())
            if skin - dark < 0.04:
                continue
            below = prof < 0.5 * (skin + dark)
            run = 0
            while run < len(below) and below[run]:
                run += 1
            if run * _STEP > best:
                best, best_angle = run * _STEP, angle
        wings.append(best / face)
        angles.append(best_angle)
        # Lower lash line: how much darker than the skin under it, over the outer half.
        for s in (0.6, 0.8):
            origin, normal = _at(lower, s)
            prof = _ray(luma, origin, normal, 0.0, 0.04 * face)
            skin_low = float(np.median(prof[-max(3, len(prof) // 4) :]))
            lowers.append((skin_low - float(prof[: max(2, len(prof) // 3)].min())) / max(skin_low, 1e-3))
    if not thick:
        return LashLines(0.0, 0.0, 20.0, 0.0, np.zeros(3, np.float32))
    return LashLines(
        float(np.median(thick)),
        float(np.median(wings)),
        float(np.median(angles)),
        float(np.median(lowers)),
        np.median(np.asarray(darks), axis=0).astype(np.float32),
    )


def eye_frame_of(pts: np.ndarray, side: FaceSide) -> tuple[np.ndarray, np.ndarray]:
    """The eye's axis (inner -> outer corner) and the perpendicular towards the brow, unit vectors."""
    outer, inner = pts[side.eye_upper[0]], pts[side.eye_upper[-1]]
    axis = (outer - inner) / max(float(np.hypot(*(outer - inner))), 1e-9)
    up = np.array([axis[1], -axis[0]])
    if float(up @ (pts[side.brow_lower[2]] - inner)) < 0.0:
        up = -up
    return axis, up


def estimate_eyeliner(view: FaceView, base: Baseline) -> LayerEstimate:
    lines = view.memo("lash lines", lambda: lash_lines(view))
    z_thick = (lines.thickness - _BARE_LINER) / _LINER_SPREAD
    z_wing = (lines.wing - _BARE_WING) / _WING_SPREAD
    evidence = z_thick
    confidence = logistic(evidence / _LINER_AT_HALF - 1.0)
    detail = {"thickness": round(lines.thickness, 5), "wing": round(lines.wing, 4), "evidence": round(evidence, 3)}
    thickness = float(np.clip(lines.thickness - _BARE_LINER + 0.008, 0.002, 0.04))
    wing = float(np.clip(lines.wing - _BARE_WING, 0.0, 0.15)) if z_wing > _LINER_AT_HALF else 0.0
    colour = hex_of_rgb(lines.colour)
    layer = Eyeliner(
        color=colour, thickness=round(thickness, 4), wing_length=round(wing, 4), wing_angle=lines.wing_angle
    )
    return LayerEstimate("eyeliner", layer, confidence, detail)


def estimate_mascara(view: FaceView, base: Baseline) -> LayerEstimate:
    lines = view.memo("lash lines", lambda: lash_lines(view))
    evidence = (lines.lower - _BARE_LOWER) / _LOWER_SPREAD
    confidence = logistic(evidence / _MASCARA_AT_HALF - 1.0)
    opacity = float(np.clip(0.3 + (lines.lower - _BARE_LOWER) * 2.0, 0.2, 1.0))
    layer = Mascara(opacity=round(opacity, 3))
    return LayerEstimate("mascara", layer, confidence, {"lower": round(lines.lower, 4), "evidence": round(evidence, 3)})
