"""A UV makeup texture from a reference photo: what no parametric layer can describe.

Face paint, freckles, glitter and graphic liner have no colour-and-opacity parameters, so the
reference face is unwrapped into the project's canonical UV layout (``looks/uv.py``) and the
makeup is stored there as RGBA, which the ``texture`` layer warps back onto any tracked face.

Steps:

1. Unwrap: every texel of the layout knows its triangle and barycentric weights (computed once per
   texture size); with the face's landmarks that gives the image point of each texel, sampled with
   one ``cv2.remap``. A texel is kept only where its triangle faces the camera (same winding in the
   image as in UV space), is not squeezed to a sliver by foreshortening, and is not hidden behind a
   nearer part of the face: the renderer's own image-to-UV map, read back at the texel's image
   point, must land on that same texel.
2. Skin base: a robust smooth fit of the unwrapped skin in CIELAB (normalised Gaussian convolution
   on a coarse grid). Colours far from the face's median skin colour are left out from the start,
   then fits from coarse to fine re-weight against their own outliers; the finest one follows the
   face's shading and redness over a few percent of the face. Broad, soft colour (blush, contour,
   a diffuse eyeshadow) therefore mostly ends up in the base: it is the parametric layers' job.
3. Makeup: the deviation from the base that lighting cannot explain (chroma beyond what shading or
   shine would give, lightness at a reduced weight). The noise floor is the larger of a fixed
   floor and a multiple of the face's typical deviation, so a bare face of any quality comes out
   nearly empty. Dull, darker marks that reach in from the face's outline are hair or shadow and
   are dropped. Above the floor, alpha rises with the deviation; the colour is then solved so that
   the ``normal`` blend of the RGBA over the base reproduces the reference pixel (alpha is raised
   where that colour would leave the sRGB gamut).
4. Regions named in ``exclude`` (the lips, eyes and brows by default, where parametric layers paint)
   and the nostrils are cleared, so the texture and those layers never paint the same pixels twice.

What comes out: face paint, freckles, glitter, graphic liner, gems; marks with edges. What does not:
black or grey paint that reaches the face's outline (it looks like hair), and makeup so broad and
soft that it is indistinguishable from the skin's own colour.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from facetory_cam.looks.uv import MESH, canonical_layout, uv_coordinates
from facetory_cam.vision.masks import face_region_masks

__all__ = [
    "EXCLUDABLE",
    "MakeupTexture",
    "Unwrapped",
    "exclusion_mask",
    "extract_texture",
    "texture_data_uri",
    "unwrap",
]

# Names accepted in ``exclude``, each the region masks (see vision/masks.py) it clears.
EXCLUDABLE: dict[str, tuple[str, ...]] = {
    "lips": ("upper_lip", "lower_lip", "mouth_inner"),
    "eyes": ("left_eye", "right_eye"),
    "brows": ("left_brow", "right_brow"),
    "eyeshadow": ("left_eyeshadow", "right_eyeshadow"),
    "cheeks": ("left_cheek", "right_cheek"),
    "nose": ("nose",),
}
# Exclusions grow by this fraction of the texture side: the parametric layers feather past their
# landmark outlines (lipstick edges, liner along the lash line), and so do landmark errors.
_EXCLUDE_GROWTH = {"lips": 0.02, "eyes": 0.03, "brows": 0.012}
_DEFAULT_GROWTH = 0.008
_FEATURES = ("lips", "eyes", "brows")  # never skin, whatever is excluded: kept out of the skin fit
# Always cleared: the nostrils and the underside of the nose are dark in every photo, never makeup.
_NOSTRILS = (64, 219, 218, 237, 44, 1, 274, 457, 438, 439, 294, 327, 326, 2, 97, 98)

_OCCLUDER_REACH = 0.05  # dark patches coming this close (fraction of the side) to the outline ...
_OCCLUDER_DARKER = -6.0  # ... darker than the skin by this much L* on average ...
_OCCLUDER_CHROMA = 10.0  # ... and off its colour by less than this, or this share of the lightness
_OCCLUDER_DULL = 0.6  # difference, are hair or shadow
_OCCLUDER_SHARE = 0.45  # a mark reaching the outline that is this much hair-like is hair throughout,
_PAINT_COLOUR = 20.0  # except where its colour is this far off the skin's: paint touching the hair
_OUTLINE_FADE = 0.035  # texels this close (fraction of the side) to the face outline fade out: hair, background
_MIN_STRETCH = 0.3  # triangles shown at less than this share of their typical image scale are unreliable
_FULL_STRETCH = 0.55
_OCCLUSION_TOL = 0.012  # UV distance the read-back may miss by before a texel counts as hidden

_FIT_GRID = 128  # the skin base is fitted on a grid this many cells a side
# Coarse-to-fine fits of the skin: Gaussian sigmas (lightness, chroma) as fractions of the side, and
# the deviation each lets stay skin at least (the coarse ones allow for shading and natural redness).
_STAGES = ((0.12, 0.15, 12.0), (0.05, 0.08, 8.0), (0.02, 0.02, 4.0))
_PAINT_FLOOR = 20.0  # colour off the face's median by this much (after shading) is no skin to start with
_FIT_ROUNDS = 3
_SKIN_HUES = (-5.0, 95.0)  # Lab hue angles (degrees) of skin in photos, with room for odd white balance
_SKIN_MAX_CHROMA = 50.0
_L_WEIGHT = 0.5  # darkening counts this much against chroma deviations
_L_WEIGHT_BRIGHTER = 0.35  # brightening less: shine on bare skin brightens
_NOISE_FLOOR = 4.0  # Lab units: a deviation never counts as makeup below this
_NOISE_FACTOR = 2.5  # ... nor below this many times the face's typical (median-like) deviation
_FULL_DEVIATION = 30.0  # weighted Lab deviation above the floor at which makeup is taken as opaque


@dataclass(frozen=True)
class MakeupTexture:
    """Makeup in the canonical UV layout, for a ``UVTexture`` layer with ``blend="normal"``."""

    rgba: np.ndarray  # (size, size, 4) uint8, sRGB colour and straight (not premultiplied) alpha
    coverage: float  # fraction of the face's UV area with alpha > 0.1
    confidence: float  # 0..1: how much the photo holds makeup patterns worth a texture


@dataclass(frozen=True)
class Unwrapped:
    """A face resampled into the canonical UV layout."""

    rgb: np.ndarray  # (size, size, 3) float32 sRGB in [0, 1]
    weight: np.ndarray  # (size, size) float32 in [0, 1]: how far each texel can be trusted (0 = not seen)
    face: np.ndarray  # (size, size) bool: inside the layout's triangles


@cache
def _texel_map(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per texel of a ``size`` texture: triangle id (-1 outside), flat index, triangle and barycentric weights.

    Pure layout geometry, the same for every face, so it is computed once per size (read-only).
    """
    layout = canonical_layout()
    pts = layout.uv.astype(np.float64) * (size - 1)
    ids = np.full((size, size), -1, np.int32)
    fixed = np.round(pts * 16).astype(np.int32)
    for t, tri in enumerate(layout.triangles):
        cv2.fillConvexPoly(ids, fixed[tri], int(t), lineType=cv2.LINE_8, shift=4)
    flat = np.flatnonzero(ids.ravel() >= 0)
    tri_of = ids.ravel()[flat]
    verts = layout.triangles[tri_of]
    ys, xs = np.divmod(flat, size)
    a, b, c = pts[verts[:, 0]], pts[verts[:, 1]], pts[verts[:, 2]]
    p = np.stack([xs, ys], axis=1).astype(np.float64)
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.stack([1.0 - wb - wc, wb, wc], axis=1)
    for arr in (ids, flat, tri_of, bary):
        arr.setflags(write=False)
    return ids, flat, tri_of, bary


def exclusion_mask(size: int, exclude: Sequence[str]) -> np.ndarray:
    """(size, size) float32 in [0, 1], read-only: where ``exclude`` (names of ``EXCLUDABLE``) clears the texture.

    The regions' own masks (vision/masks.py) drawn on the UV layout, grown a little (see
    ``_EXCLUDE_GROWTH``): the parametric layers feather past their outlines.
    """
    names = tuple(dict.fromkeys(exclude))
    unknown = [n for n in names if n not in EXCLUDABLE]
    if unknown:
        raise ValueError(f"cannot exclude {unknown}; choose from {', '.join(EXCLUDABLE)}")
    if size < 16:
        raise ValueError(f"texture size must be at least 16, got {size}")
    return _exclusion_mask(size, names)


@cache
def _exclusion_mask(size: int, names: tuple[str, ...]) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 where the named regions lie in UV space (read-only)."""
    out = np.zeros((size, size), np.float32)
    if not names:
        out.setflags(write=False)
        return out
    uv = canonical_layout().uv.astype(np.float64) * (size - 1)
    feather = max(1.0, 0.003 * size)
    regions = [r for n in names for r in EXCLUDABLE[n]]
    masks = face_region_masks(uv, (size, size), feather=feather, regions=regions)
    for name in names:
        grow = max(1, round(_EXCLUDE_GROWTH.get(name, _DEFAULT_GROWTH) * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        for region in EXCLUDABLE[name]:
            m = masks.full(region, (size, size))
            np.maximum(out, cv2.dilate(m, kernel), out=out)
    np.minimum(out, 1.0, out=out)
    out.setflags(write=False)
    return out


@cache
def _anatomy_mask(size: int) -> np.ndarray:
    """(size, size) float32: 1 over parts of the face that are dark in every photo (read-only)."""
    uv = canonical_layout().uv.astype(np.float64) * (size - 1)
    out = np.zeros((size, size), np.uint8)
    cv2.fillPoly(out, [np.round(uv[list(_NOSTRILS)] * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    grow = max(1, round(0.006 * size))
    out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    mask = out.astype(np.float32) / 255.0
    mask.setflags(write=False)
    return mask


@cache
def _outline_distance(size: int) -> np.ndarray:
    """(size, size) float32: each texel's distance to the face's outline in texels (0 outside; read-only)."""
    inside = (_texel_map(size)[0] >= 0).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    dist.setflags(write=False)
    return dist


@cache
def _outline_fade(size: int) -> np.ndarray:
    """(size, size) float32: 1 inside the face, falling to 0 over the last few texels before its outline."""
    out = np.clip(_outline_distance(size) / max(1.0, _OUTLINE_FADE * size), 0.0, 1.0).astype(np.float32)
    out.setflags(write=False)
    return out


def _check_inputs(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 2 or pts.shape[0] not in (MESH, 478) or pts.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must have shape (478 or 468, 2 or 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinite values")
    if pts.shape[1] == 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
    return img, pts[:MESH]


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def unwrap(image: np.ndarray, landmarks: np.ndarray, size: int = 512) -> Unwrapped:
    """Resample the face of an RGB uint8 image into the canonical UV layout, with per-texel trust.

    ``landmarks`` are the tracker's (478 or 468, 2 or 3) points in image pixels. The texel-to-image
    map is piecewise affine per triangle, the inverse of what the texture layer does when it renders.
    """
    if size < 16:
        raise ValueError(f"texture size must be at least 16, got {size}")
    img, pts = _check_inputs(image, landmarks)
    layout = canonical_layout()
    ids, flat, tri_of, bary = _texel_map(size)

    # Work on the face's box; a face much larger than the texture is shrunk first, so every texel
    # averages the pixels it covers instead of picking one of them.
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    face_px = float(max(hi - lo))
    margin = 0.05 * face_px + 4
    h, w = img.shape[:2]
    x0, y0 = max(0, math.floor(lo[0] - margin)), max(0, math.floor(lo[1] - margin))
    x1, y1 = min(w, math.ceil(hi[0] + margin) + 1), min(h, math.ceil(hi[1] + margin) + 1)
    face = ids >= 0
    empty = Unwrapped(np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32), face)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return empty
    roi = img[y0:y1, x0:x1]
    local = pts.copy()
    local[:, :2] -= (x0, y0)
    scale = 0.9 * size / max(face_px, 1e-6)  # the layout spans 0.9 of the side
    if scale < 0.8:
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        local = local * scale  # z scales with x and y
        face_px *= scale
    rh, rw = roi.shape[:2]

    # Texel -> image point, through each texel's triangle.
    src = np.einsum("nk,nkd->nd", bary, local[layout.triangles[tri_of], :2]).astype(np.float32)
    map_xy = np.full((size * size, 2), -1e4, np.float32)
    map_xy[flat] = src
    map_xy = map_xy.reshape(size, size, 2)
    rgb = cv2.remap(roi, map_xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    # Trust per triangle: it must face the camera, and foreshortening must not squeeze it.
    uv_area = _signed_areas(layout.uv.astype(np.float64), layout.triangles)
    img_area = _signed_areas(local[:, :2], layout.triangles)
    ratio = np.where(uv_area > 0, img_area / np.maximum(uv_area, 1e-12), 0.0)
    typical = float(np.median(ratio[ratio > 0])) if np.any(ratio > 0) else 1.0
    stretch = np.sqrt(np.clip(ratio / max(typical, 1e-12), 0.0, None))
    tri_trust = np.clip((stretch - _MIN_STRETCH) / (_FULL_STRETCH - _MIN_STRETCH), 0.0, 1.0).astype(np.float32)
    weight = np.zeros(size * size, np.float32)
    weight[flat] = tri_trust[tri_of]

    # Hidden texels: the renderer's image -> UV map, read at the texel's image point, lands elsewhere.
    uv_img, cover = uv_coordinates(local, (rh, rw), layout)
    back = cv2.remap(
        np.dstack([uv_img, cover]), map_xy, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    own = np.stack(np.meshgrid(np.arange(size), np.arange(size)), axis=2).astype(np.float32) / (size - 1)
    miss = np.linalg.norm(back[..., :2] - own, axis=2)
    tol = max(_OCCLUSION_TOL, 2.5 * 0.9 / max(face_px, 1.0))  # and never under 2.5 image pixels
    seen = (back[..., 2] > 0.5) & (miss < tol)
    inside = (map_xy[..., 0] >= 0) & (map_xy[..., 1] >= 0) & (map_xy[..., 0] <= rw - 1) & (map_xy[..., 1] <= rh - 1)
    weight = weight.reshape(size, size) * (seen & inside & face)
    return Unwrapped(rgb.astype(np.float32) / 255.0, weight, face)


def _normalised_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Gaussian average of (h, w, c) values and the blurred weight (how much data backs it)."""
    num = cv2.GaussianBlur(values * weights[..., None], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    den = cv2.GaussianBlur(weights, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    if num.ndim == 2:
        num = num[..., None]
    return num / np.maximum(den, 1e-6)[..., None], den


def _robust_fit(
    values: np.ndarray, weights: np.ndarray, sigmas: tuple[float, float], floor: float, rounds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth Lab fit by normalised convolution, re-weighted against outliers for a few rounds.

    Returns the fit, the final weights and the blurred weight of the lightness kernel (how much data
    backs each cell). ``floor`` is the least Welsch scale, in deviation units: deviations well below it
    always count as skin.
    """
    valid = weights > 0.05
    w = weights
    fit, den = values, weights
    for _ in range(rounds):
        fl, den = _normalised_blur(values[..., :1], w, sigmas[0])
        fab, _ = _normalised_blur(values[..., 1:], w, sigmas[1])
        fit = np.concatenate([fl, fab], axis=2)
        if not np.any(valid):
            break
        r = _deviation(values, fit)[0]
        scale = max(3.0 * float(np.median(r[valid])), floor)
        w = weights * np.exp(-((r / scale) ** 2))
    return fit, w, den


def _skin_base(lab: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """Robust smooth fit of the bare skin's Lab colour, (size, size, 3), filled in where there is no data.

    On a grid of ``_FIT_GRID`` cells. Colour far off the face's median skin colour (paint) is left out
    from the start, so a large painted area cannot pull the fit towards itself; then each fit, from
    coarse to fine, re-weights against its own outliers. The finest follows the face's own shading
    and redness (nose, eye sockets), which vary over a few percent of the face; where it has no skin
    close by (inside a large painted area, an excluded region) the coarser ones fill in.
    """
    g = _FIT_GRID
    wsmall = cv2.resize(weight, (g, g), interpolation=cv2.INTER_AREA)
    small = cv2.resize(lab * weight[..., None], (g, g), interpolation=cv2.INTER_AREA)
    small /= np.maximum(wsmall, 1e-6)[..., None]
    valid = wsmall > 0.05
    if not np.any(valid):
        return np.zeros((size, size, 3), np.float32)
    # The face's typical skin colour: the median over texels whose colour skin can have at all, so that
    # paint covering a large part of the face (a blue-striped face) does not become "the skin".
    likely = valid & _skin_like(small)
    median = np.median(small[likely if likely.sum() >= 0.2 * valid.sum() else valid], axis=0)
    far = _deviation(small, np.broadcast_to(median, small.shape))[1]  # colour only: lighting varies widely
    skin = wsmall * np.exp(-((far / max(3.0 * float(np.median(far[valid])), _PAINT_FLOOR)) ** 2))
    base = np.broadcast_to(median, small.shape).astype(np.float32)
    for sig_l, sig_ab, floor in _STAGES:
        fit, _, den = _robust_fit(small, skin, (sig_l * g, sig_ab * g), floor, _FIT_ROUNDS)
        base = _mix(fit, base, den, 0.25)
    return cv2.resize(base.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def _skin_like(lab: np.ndarray) -> np.ndarray:
    """Texels whose Lab colour human skin can have in a photo: orange-red to yellow hues, moderate chroma."""
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return (hue > _SKIN_HUES[0]) & (hue < _SKIN_HUES[1]) & (chroma < _SKIN_MAX_CHROMA) & (lab[..., 0] > 10.0)


def _mix(fit: np.ndarray, fallback: np.ndarray, den: np.ndarray, enough: float) -> np.ndarray:
    """``fit`` where its kernel saw at least ``enough`` weight, blending into ``fallback`` where it saw less."""
    trust = np.clip(den / enough, 0.0, 1.0)[..., None]
    return fit * trust + fallback * (1.0 - trust)


def _deviation(lab: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Size of the Lab difference that lighting cannot explain, and its chromatic part alone.

    Shading scales linear RGB; in Lab that scales L* + 16, a* and b* alike (through the cube root), so
    a shaded patch of the base has chroma ``|base_ab| * (L + 16) / (base_L + 16)`` at the base's hue.
    Shine adds white: a brighter patch may also lose chroma, up to the share of the way to white its
    lightness went. Chroma outside that range, any hue shift, and lightness at a reduced weight (less
    for brightening, which shine does) count: a crease, a shadow or a highlight moves little; paint,
    freckles and liner move a lot.
    """
    dl = lab[..., 0] - base[..., 0]
    shade = (lab[..., 0] + 16.0) / np.maximum(base[..., 0] + 16.0, 1.0)
    chroma = np.maximum(np.hypot(base[..., 1], base[..., 2]), 1e-3)
    ua, ub = base[..., 1] / chroma, base[..., 2] / chroma
    radial = lab[..., 1] * ua + lab[..., 2] * ub
    across = lab[..., 2] * ua - lab[..., 1] * ub
    high = chroma * shade
    shine = np.clip(dl / np.maximum(100.0 - base[..., 0], 1.0), 0.0, 1.0)
    low = high * (1.0 - shine)
    off = np.where(radial > high, radial - high, np.where(radial < low, low - radial, 0.0))
    wl = np.where(dl < 0, _L_WEIGHT, _L_WEIGHT_BRIGHTER)
    return np.sqrt((wl * dl) ** 2 + off * off + across * across), np.hypot(off, across)


def _occluders_cleared(kept: np.ndarray, dl: np.ndarray, dchroma: np.ndarray, size: int) -> np.ndarray:
    """0 over dark, dull marks that reach in from the face's outline (hair, shadow, background), else 1.

    Hair over the forehead or the cheeks looks like dark paint to the deviation measure, but it comes
    in from the edge of the face and differs from the skin in lightness far more than in colour. So in
    every mark that reaches the outline, the texels that are darker than the skin and barely off its
    colour are cleared; coloured paint touching the hair survives. Dark grey or black paint reaching
    the outline is the price.
    """
    marks = (kept > 0.5).astype(np.uint8)
    count, labels = cv2.connectedComponents(marks, connectivity=8)
    out = np.ones(kept.shape, np.float32)
    if count <= 1:
        return out
    edge = _outline_distance(size) < _OCCLUDER_REACH * size
    touches = np.zeros(count, bool)
    touches[labels[edge]] = True
    touches[0] = False
    dull = (dl < _OCCLUDER_DARKER) & (dchroma < np.maximum(_OCCLUDER_CHROMA, -_OCCLUDER_DULL * dl))
    # a mark that is mostly dark and dull goes entirely (hair has highlights and coloured strands)
    flat = labels.ravel()
    n = np.maximum(np.bincount(flat, minlength=count), 1)
    share = np.bincount(flat, weights=dull.ravel().astype(np.float64), minlength=count) / n
    hair = ((touches & (share > _OCCLUDER_SHARE))[labels] & (dchroma < _PAINT_COLOUR)) | (touches[labels] & dull)
    # the soft rim around each cleared texel goes too, but never clear paint
    hair = (cv2.dilate(hair.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & (dchroma < _PAINT_COLOUR)
    out[hair] = 0.0
    return out


def _gamut_alpha(ref: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Smallest alpha for which ``base + (ref - base) / alpha`` stays inside [0, 1] in every channel."""
    up = np.where(ref > base, (ref - base) / np.maximum(1.0 - base, 1e-6), 0.0)
    down = np.where(ref < base, (base - ref) / np.maximum(base, 1e-6), 0.0)
    return np.maximum(up, down).max(axis=-1)


def _bleed_colour(rgb: np.ndarray, alpha: np.ndarray, passes: int = 4) -> np.ndarray:
    """Copy colour a few texels out into transparent texels, so bilinear sampling shows no dark fringe."""
    known = (alpha > 0).astype(np.float32)
    out = rgb * known[..., None]
    for _ in range(passes):
        num = cv2.boxFilter(out * known[..., None], -1, (3, 3), normalize=False)
        den = cv2.boxFilter(known, -1, (3, 3), normalize=False)
        fill = (known == 0) & (den > 0)
        out[fill] = num[fill] / den[fill][:, None]
        known = np.maximum(known, fill.astype(np.float32))
    return out


def extract_texture(
    image: np.ndarray,
    landmarks: np.ndarray,
    *,
    size: int = 512,
    exclude: Sequence[str] = ("lips", "eyes", "brows"),
) -> MakeupTexture:
    """The reference face's makeup as an RGBA texture in the canonical UV layout.

    ``image`` is RGB uint8, ``landmarks`` the tracker's (478 or 468, 2|3) points in image pixels.
    Regions in ``exclude`` (any of ``EXCLUDABLE``) are left transparent, as are texels the photo does
    not show (a turned face's far side). Meant for ``UVTexture(image=texture_data_uri(t.rgba))`` with
    the default ``normal`` blend.
    """
    if not 16 <= size <= 4096:
        raise ValueError(f"texture size must be 16..4096, got {size}")
    cleared = exclusion_mask(size, exclude)
    un = unwrap(image, landmarks, size)
    face_area = float(un.face.sum())
    anatomy = _anatomy_mask(size)
    usable = un.weight * _outline_fade(size) * (1.0 - cleared) * (1.0 - anatomy)

    lab = cv2.cvtColor(un.rgb, cv2.COLOR_RGB2Lab)
    fit_weight = un.weight * (1.0 - _exclusion_mask(size, _FEATURES)) * (1.0 - anatomy)
    base_lab = _skin_base(lab, fit_weight, size)
    dev, dchroma = _deviation(lab, base_lab)
    skin = usable > 0.5
    # The face's noise level, read where most texels are bare even when paint covers half the face: the
    # 30th percentile of the deviation, scaled to the median it implies (chi with 3 degrees of freedom).
    noise = float(np.percentile(dev[skin], 30.0)) / 0.776 if np.any(skin) else 0.0
    floor = max(_NOISE_FLOOR, _NOISE_FACTOR * noise)
    # Soft threshold: deviations at the noise floor vanish, twice the floor and above are kept whole.
    t = np.clip((dev - floor) / floor, 0.0, 1.0)
    kept = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    kept *= usable > 0
    kept *= _occluders_cleared(kept, lab[..., 0] - base_lab[..., 0], dchroma, size)
    strength = np.clip((dev - floor) / _FULL_DEVIATION, 0.0, 1.0)
    base_rgb = np.clip(cv2.cvtColor(base_lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)
    target = base_rgb + (un.rgb - base_rgb) * kept[..., None]  # the reference with the noise taken out
    # The least alpha whose colour stays in gamut reproduces ``target`` exactly; stronger marks get more.
    alpha = np.clip(np.maximum(strength * kept, _gamut_alpha(target, base_rgb)), 0.0, 1.0)
    colour = np.clip(base_rgb + (target - base_rgb) / np.maximum(alpha, 1e-3)[..., None], 0.0, 1.0)
    alpha = (alpha * np.clip(usable, 0.0, 1.0)).astype(np.float32)
    alpha[alpha < 1.0 / 255.0] = 0.0

    colour = _bleed_colour(colour.astype(np.float32), alpha)
    rgba = np.dstack([colour, alpha])
    rgba = np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8)
    coverage = float((rgba[..., 3] > round(0.1 * 255)).sum()) / max(face_area, 1.0)
    confidence = _confidence(alpha, face_area)
    return MakeupTexture(rgba=rgba, coverage=coverage, confidence=confidence)


def _confidence(alpha: np.ndarray, face_area: float) -> float:
    """0..1, saturating in the texture's alpha mass over the face.

    A bare face leaves stray texels (creases, stray hair) worth well under 1 % of the face; 1 % of
    the face fully painted gives 0.39, 3 % gives 0.78, 5 % gives 0.92.
    """
    mass = float(alpha.sum()) / max(face_area, 1.0)
    return float(1.0 - math.exp(-mass / 0.02))


def texture_data_uri(rgba: np.ndarray) -> str:
    """A ``data:image/png;base64,`` URI of an RGBA uint8 texture, as ``UVTexture.image`` accepts."""
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"expected a square (S, S, 4) uint8 RGBA texture, got {arr.shape} {arr.dtype}")
    ok, png = cv2.imencode(".png", cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("the texture could not be encoded as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")
