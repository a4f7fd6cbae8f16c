"""Soft per-region face masks (lips, eyes, brows, skin, ...) from face-mesh landmarks.

Makeup is painted through these masks, so they need soft, anti-aliased edges that
follow the landmarks at sub-pixel precision, and they must be cheap enough to
rebuild for every face on every frame. All work therefore happens inside the
face's own box (the ROI), and each region is rasterised and blurred only within
its own bounds inside that box: a frame-sized array is never touched.

Polygons are filled with OpenCV's anti-aliased rasteriser at 1/16-pixel vertex
precision, then feathered with a Gaussian of ``sigma = feather`` pixels (three box
passes of the same variance from sigma 1.5 up, which cost the same at any width).
Where a region meets a dark opening (lips against the mouth, eyeshadow against
the eyeball) the opening is cut out afterwards with only anti-aliasing, so
colour never bleeds onto teeth or the white of the eye.

On a turned head the far eye, brow, eyeshadow and cheek fade out as they go
behind the nose, since the mesh still places them (wrongly) on the visible side.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from facetory_cam.vision.regions import (
    FACE_OVAL,
    HALF_FACES,
    LEFT,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_OUTER_LOWER,
    LIPS_OUTER_UPPER,
    MESH_POINTS,
    NOSE_OUTLINE,
    REGION_NAMES,
    RIGHT,
    WITH_IRIS_POINTS,
    FaceSide,
)

__all__ = ["REGION_NAMES", "RegionMasks", "draw_regions", "face_region_masks", "union_mask"]

_SHIFT = 4  # fractional bits of vertex coordinates given to OpenCV's rasteriser
_ONE = 1 << _SHIFT
_COORD_LIMIT = 2.0**24  # pixels; shifted coordinates stay well inside int32 even after growing

# Sizes relative to the face (the larger side of the landmark box).
# Eyes, brows and mouth are grown by this much of the face plus this many feather sigmas before
# being cut from the skin, so the soft skin edge and the features' soft edges barely meet.
_EXCLUSION_GROWTH = 0.012
_EXCLUSION_FEATHERS = 3.0
_CHEEK_ACROSS = 0.9  # cheek blob semi-axis / distance between its two "across" landmarks
_CHEEK_DOWN = 0.8  # the same along the "down" pair
# Eyeshadow strength by relative position t between lid (0) and brow (1): full below _SHADOW_FULL,
# gone above _SHADOW_NONE, smooth in between.
_SHADOW_FULL = 0.35
_SHADOW_NONE = 0.85

_BOX_MIN_SIGMA = 1.5  # from here on feathering uses box passes (their widths are too coarse below)

# A side of a turned head fades out as its outer eye corner nears the bridge of the nose in the image:
# by its share of the two corner-to-bridge distances (0.5 when frontal, about 0.08 in full profile).
_HIDDEN_SHARE = 0.08
_SHOWN_SHARE = 0.15
_BRIDGE = 168  # mesh point between the eyes

_Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 inside the ROI

_MOUTH_OUTLINE = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1]
_MOUTH_OPENING = LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1]


@dataclass(frozen=True)
class RegionMasks:
    """Masks of one face, each cropped to the face's box so a frame-sized array is never needed."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the ROI in image pixels, clipped to the image
    masks: dict[str, np.ndarray]  # name -> float32 in [0, 1] of shape (y1 - y0, x1 - x0)
    # A face wholly outside the image has an empty box (x0 == x1, y0 == y1) and (0, 0) masks.

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of every mask."""
        x0, y0, x1, y1 = self.box
        return y1 - y0, x1 - x0

    def full(self, name: str, image_shape: tuple[int, ...]) -> np.ndarray:
        """One mask pasted into a zero mask of the image's size, for callers that want frame coordinates."""
        h, w = _image_size(image_shape)
        out = np.zeros((h, w), np.float32)
        mask = self.masks[name]
        x0, y0, x1, y1 = self.box
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 > cx0 and cy1 > cy0:
            out[cy0:cy1, cx0:cx1] = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        return out


def union_mask(masks: RegionMasks, names: Iterable[str]) -> np.ndarray:
    """Pointwise maximum of the named masks (ROI-sized), e.g. both lips or both eyes at once."""
    out = np.zeros(masks.shape, np.float32)
    for name in names:
        np.maximum(out, masks.masks[name], out=out)
    return out


def face_region_masks(
    landmarks: np.ndarray,
    image_shape: tuple[int, ...],
    *,
    feather: float = 2.0,
    regions: Iterable[str] | None = None,
) -> RegionMasks:
    """Soft masks of the requested regions (all of ``REGION_NAMES`` by default) for one face.

    ``landmarks`` are the tracker's (478, 2 or 3) points in image pixels; with only the 468 mesh
    points the iris masks come out empty. ``feather`` is the Gaussian sigma of the soft edges in
    image pixels (0 gives anti-aliased hard edges); scale it with the face size for a look that
    does not depend on resolution.
    """
    pts = _validate_landmarks(landmarks)
    h, w = _image_size(image_shape)
    names = _validate_regions(regions)
    try:
        sigma = float(feather)
    except (TypeError, ValueError):
        sigma = math.nan
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"feather must be a finite number >= 0, got {feather!r}")

    mesh = pts[:MESH_POINTS]
    lo, hi = mesh.min(axis=0), mesh.max(axis=0)
    face_size = float(max(hi - lo))
    grow = _EXCLUSION_GROWTH * face_size + _EXCLUSION_FEATHERS * sigma
    margin = _blur_reach(sigma) + 2
    x0 = max(math.floor(lo[0]) - margin, 0)
    y0 = max(math.floor(lo[1]) - margin, 0)
    x1 = min(math.ceil(hi[0]) + margin + 1, w)
    y1 = min(math.ceil(hi[1]) + margin + 1, h)
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the image
        x0, y0 = min(x0, w), min(y0, h)
        empty = np.zeros((0, 0), np.float32)
        return RegionMasks((x0, y0, x0, y0), {n: empty.copy() for n in names})

    # Far-off points (a huge face mostly outside the frame) are pulled in so that fixed-point vertex
    # coordinates cannot overflow; the visible part of the polygons is unchanged.
    rel = np.clip(pts - (x0, y0), -_COORD_LIMIT, _COORD_LIMIT)
    builder = _Builder(rel, (y1 - y0, x1 - x0), sigma, grow)
    block = np.zeros((len(names), y1 - y0, x1 - x0), np.float32)  # one allocation for all masks
    for out, name in zip(block, names, strict=True):
        patch = builder.region(name)
        if patch is not None:
            px0, py0, px1, py1 = patch.rect
            out[py0:py1, px0:px1] = patch.data
    return RegionMasks((x0, y0, x1, y1), dict(zip(names, block, strict=True)))


def draw_regions(image_rgb: np.ndarray, masks: RegionMasks, alpha: float = 0.45) -> np.ndarray:
    """A copy of the image with each region tinted in its own colour, for judging masks by eye."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    out = image.copy()
    x0, y0, x1, y1 = masks.box
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    roi = out[cy0:cy1, cx0:cx1].astype(np.float32)
    for name, colour in _TINTS.items():
        if name not in masks.masks:
            continue
        m = masks.masks[name][cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None] * np.float32(alpha)
        roi += m * (np.asarray(colour, np.float32) - roi)
    info = np.iinfo(out.dtype) if np.issubdtype(out.dtype, np.integer) else None
    if info is not None:
        roi = np.clip(np.rint(roi), info.min, info.max)
    out[cy0:cy1, cx0:cx1] = roi.astype(out.dtype)
    return out


# Drawn in this order, so small regions end up on top of the skin and cheeks.
_TINTS: dict[str, tuple[int, int, int]] = {
    "skin": (255, 200, 0),
    "nose": (0, 200, 255),
    "left_cheek": (255, 90, 90),
    "right_cheek": (255, 90, 90),
    "left_eyeshadow": (150, 60, 255),
    "right_eyeshadow": (150, 60, 255),
    "left_brow": (255, 0, 255),
    "right_brow": (255, 0, 255),
    "left_eye": (0, 255, 255),
    "right_eye": (0, 255, 255),
    "left_iris": (0, 80, 255),
    "right_iris": (0, 80, 255),
    "upper_lip": (255, 0, 0),
    "lower_lip": (0, 220, 0),
    "mouth_inner": (20, 20, 20),
}


def _validate_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) float64 xy after checking shape and values."""
    try:
        pts = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"landmarks must be a numeric array: {exc}") from exc
    if pts.ndim != 2 or pts.shape[0] not in (MESH_POINTS, WITH_IRIS_POINTS) or pts.shape[1] not in (2, 3):
        raise ValueError(
            f"landmarks must have shape ({WITH_IRIS_POINTS}, 2|3) or ({MESH_POINTS}, 2|3), got {pts.shape}"
        )
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return pts[:, :2]


def _image_size(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) from an (H, W) or (H, W, C) shape."""
    try:
        h, w = (int(v) for v in tuple(image_shape)[:2])
        ok = len(tuple(image_shape)) >= 2 and all(int(v) == v for v in tuple(image_shape)[:2])
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 0 or w < 0:
        raise ValueError(f"image_shape must be (height, width[, channels]) of integers >= 0: {image_shape!r}")
    return h, w


def _validate_regions(regions: Iterable[str] | None) -> tuple[str, ...]:
    if regions is None:
        return REGION_NAMES
    if isinstance(regions, str):
        regions = (regions,)
    names = tuple(dict.fromkeys(regions))
    unknown = [n for n in names if n not in REGION_NAMES]
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known: {', '.join(REGION_NAMES)}")
    return names


def _blur_reach(sigma: float) -> int:
    """How far (pixels) a Gaussian of this sigma spreads a mask, as OpenCV truncates its kernel."""
    return math.ceil(3.0 * sigma) + 1 if sigma > 0 else 0


def _box_sizes(sigma: float, passes: int = 3) -> tuple[int, ...]:
    """Odd box widths whose repeated application approximates a Gaussian of this sigma.

    Box filters cost the same at any width, several times less than a Gaussian kernel; three passes
    are smooth to the eye. Widths after Kovesi, "Fast almost-Gaussian filtering" (2010).
    """
    ideal = math.sqrt(12.0 * sigma * sigma / passes + 1.0)
    lower = int(ideal)
    lower -= lower % 2 == 0
    n_lower = round((12.0 * sigma * sigma - passes * (lower * lower + 4 * lower + 3)) / (-4.0 * lower - 4.0))
    n_lower = min(max(n_lower, 0), passes)
    return (lower,) * n_lower + (lower + 2,) * (passes - n_lower)


class _Rings:
    """Several closed polygons in one flat point list, so they can be grown with one set of array ops."""

    def __init__(self, rings: Iterable[tuple[int, ...]]) -> None:
        rings = list(rings)
        self.index = np.concatenate([np.asarray(r, np.intp) for r in rings])
        sizes = [len(r) for r in rings]
        self.starts = np.cumsum([0, *sizes[:-1]])
        self.splits = np.cumsum(sizes[:-1])
        local = np.concatenate([np.arange(n) for n in sizes])
        base = np.repeat(self.starts, sizes)
        self.next = base + (local + 1) % np.repeat(sizes, sizes)
        self.prev = base + (local - 1) % np.repeat(sizes, sizes)
        self.ring_of = np.repeat(np.arange(len(rings)), sizes)

    def grown(self, pts: np.ndarray, by: float) -> list[np.ndarray]:
        """Each polygon with every edge moved outwards by ``by`` pixels (mitred; sharp corners capped)."""
        p = pts[self.index]
        if by > 0:
            q = p[self.next]
            edges = q - p
            length = np.maximum(np.hypot(edges[:, 0], edges[:, 1]), 1e-9)[:, None]
            normals = edges[:, ::-1] * (1.0, -1.0) / length
            # Shoelace sign per polygon: the normals point outwards where it runs clockwise on screen.
            cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
            sign = np.where(np.add.reduceat(cross, self.starts) < 0, -1.0, 1.0)[self.ring_of]
            vertex = (normals + normals[self.prev]) * sign[:, None]  # sum of the two edge normals
            half_sq = np.sum(vertex * vertex, axis=1) / 2.0  # 1 + cos(turn): 2 straight, 0 reversed
            p = p + vertex * (by / np.maximum(half_sq, 0.25))[:, None]
        return np.split(p, self.splits)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """0 below e0, 1 above e1, a smooth cubic in between."""
    t = np.minimum(np.maximum((x - e0) * (1.0 / (e1 - e0)), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.cache
def _ix(idx: tuple[int, ...]) -> np.ndarray:
    """Index tuple as an array, made once."""
    return np.asarray(idx, np.intp)


class _Patch(NamedTuple):
    """A region's values inside its own rectangle of the ROI; zero everywhere else."""

    rect: _Rect
    data: np.ndarray  # float32, shape of the rect

    def over(self, rect: _Rect) -> np.ndarray:
        """Values over another rectangle (zero where this patch does not reach)."""
        x0, y0, x1, y1 = rect
        px0, py0, px1, py1 = self.rect
        if (px0, py0, px1, py1) == rect:
            return self.data
        out = np.zeros((y1 - y0, x1 - x0), np.float32)
        ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        if ix1 > ix0 and iy1 > iy0:
            src = self.data[iy0 - py0 : iy1 - py0, ix0 - px0 : ix1 - px0]
            out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = src
        return out


class _Builder:
    """Builds region masks for one face in ROI coordinates, each within its own sub-rectangle."""

    def __init__(self, pts: np.ndarray, shape: tuple[int, int], sigma: float, grow: float) -> None:
        self.pts = pts  # landmarks relative to the ROI's top-left corner
        self.h, self.w = shape
        self.sigma = sigma
        self.grow = grow
        self._boxes = _box_sizes(sigma) if sigma >= _BOX_MIN_SIGMA else ()
        self._reach = _blur_reach(sigma) + 2
        self._done: dict[str, _Patch | None] = {}
        bridge = pts[_BRIDGE]
        reach = {s: math.dist(pts[s.eye_upper[0]], bridge) for s in (LEFT, RIGHT)}
        total = max(sum(reach.values()), 1e-6)
        share = {s: np.float64(r / total) for s, r in reach.items()}
        self._shown = {s: float(_smoothstep(_HIDDEN_SHARE, _SHOWN_SHARE, v)) for s, v in share.items()}

    # -- rasterising helpers ------------------------------------------------------------------

    def _poly(self, idx: tuple[int, ...]) -> np.ndarray:
        return self.pts[_ix(idx)]

    def _rect(self, points: np.ndarray) -> _Rect | None:
        """Sub-rectangle covering the points and the blur's reach, clipped to the ROI; None if empty."""
        lo, hi = points.min(axis=0), points.max(axis=0)
        x0 = max(math.floor(lo[0]) - self._reach, 0)
        y0 = max(math.floor(lo[1]) - self._reach, 0)
        x1 = min(math.ceil(hi[0]) + self._reach + 1, self.w)
        y1 = min(math.ceil(hi[1]) + self._reach + 1, self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    @staticmethod
    def _fixed(points: np.ndarray, rect: _Rect) -> np.ndarray:
        return np.rint((points - (rect[0], rect[1])) * _ONE).astype(np.int32)

    def _fill(self, rect: _Rect, polys: Iterable[np.ndarray]) -> np.ndarray:
        """Anti-aliased uint8 coverage of the polygons (their union) in the rect."""
        x0, y0, x1, y1 = rect
        buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for poly in polys:  # one by one: a single call would leave overlaps empty (even-odd rule)
            cv2.fillPoly(buf, [self._fixed(poly, rect)], 255, cv2.LINE_AA, _SHIFT)
        return buf

    def _soft(self, coverage: np.ndarray) -> np.ndarray:
        """Feathered float32 mask in [0, 1] from uint8 coverage."""
        if self._boxes:
            for k in self._boxes:
                coverage = cv2.blur(coverage, (k, k), borderType=cv2.BORDER_REPLICATE)
        elif self.sigma > 0:
            coverage = cv2.GaussianBlur(coverage, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)
        return _unit(coverage)

    def _polygon_region(self, idx: tuple[int, ...]) -> _Patch | None:
        poly = self._poly(idx)
        rect = self._rect(poly)
        return None if rect is None else _Patch(rect, self._soft(self._fill(rect, [poly])))

    # -- regions --------------------------------------------------------------------------------

    def region(self, name: str) -> _Patch | None:
        if name not in self._done:
            if name in ("upper_lip", "lower_lip", "mouth_inner"):
                self._done.update(self._lips())
            elif name == "skin":
                self._done[name] = self._skin()
            elif name == "nose":
                self._done[name] = self._polygon_region(NOSE_OUTLINE)
            else:
                side_name, part = name.split("_", 1)
                side = LEFT if side_name == "left" else RIGHT
                patch = getattr(self, f"_{part}")(side)
                if patch is not None and self._shown[side] < 1.0:  # the far side of a turned head
                    patch.data[...] *= np.float32(self._shown[side])
                self._done[name] = patch
        return self._done[name]

    def _lips(self) -> dict[str, _Patch | None]:
        """Both lips share one soft outer edge and stop crisply at the inner contour."""
        outer = self._poly(_MOUTH_OUTLINE)
        rect = self._rect(outer)
        if rect is None:
            return dict.fromkeys(("upper_lip", "lower_lip", "mouth_inner"))
        # Upper part of the mouth: down to the curve halfway between the inner contours, so it meets
        # the lower lip along the seam of a closed mouth.
        halfway = (self._poly(LIPS_INNER_UPPER) + self._poly(LIPS_INNER_LOWER)) / 2.0
        upper = np.concatenate([self._poly(LIPS_OUTER_UPPER), halfway[::-1]])
        mouth = _unit(self._fill(rect, [self._poly(_MOUTH_OPENING)]))
        open_ = 1.0 - mouth
        lips = self._soft(self._fill(rect, [outer])) * open_
        upper_lip = np.minimum(self._soft(self._fill(rect, [upper])) * open_, lips)
        return {
            "upper_lip": _Patch(rect, upper_lip),
            "lower_lip": _Patch(rect, lips - upper_lip),
            "mouth_inner": _Patch(rect, mouth),
        }

    def _eye(self, side: FaceSide) -> _Patch | None:
        return self._polygon_region(side.eye_contour)

    def _brow(self, side: FaceSide) -> _Patch | None:
        return self._polygon_region(side.brow_contour)

    def _iris(self, side: FaceSide) -> _Patch | None:
        """Iris disc cut by the eye opening (before feathering), so the lids cover it."""
        if self.pts.shape[0] < WITH_IRIS_POINTS:
            return None
        eye = self._poly(side.eye_contour)
        rect = self._rect(eye)
        if rect is None:
            return None
        centre = self.pts[side.iris_centre]
        radius = float(np.linalg.norm(self._poly(side.iris_ring) - centre, axis=1).mean())
        disc = np.zeros((rect[3] - rect[1], rect[2] - rect[0]), np.uint8)
        c = self._fixed(centre[None], rect)[0]
        cv2.circle(disc, (int(c[0]), int(c[1])), round(radius * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        inside = cv2.multiply(disc, self._fill(rect, [eye]), scale=1.0 / 255.0)
        return _Patch(rect, self._soft(inside))

    def _eyeshadow(self, side: FaceSide) -> _Patch | None:
        """Lid-to-brow zone, full at the lid and fading out before the brow; never on the eyeball."""
        zone = self._poly(side.eyeshadow_contour)
        rect = self._rect(zone)
        if rect is None:
            return None
        eye = self._fill(rect, [self._poly(side.eye_contour)])
        brow = self._fill(rect, [self._poly(side.brow_contour)])
        # Relative position between lid (0) and brow (1) from the distances to both.
        # (Capped: with the eye or brow cut off by the frame there is nothing to measure to.)
        far = np.float32(eye.shape[0] + eye.shape[1])
        d_eye, d_brow = (
            np.minimum(cv2.distanceTransform(cv2.threshold(m, 127, 255, cv2.THRESH_BINARY_INV)[1], cv2.DIST_L2, 3), far)
            for m in (eye, brow)
        )
        t = d_eye / (d_eye + d_brow + np.float32(1e-3))
        strength = 1.0 - _smoothstep(_SHADOW_FULL, _SHADOW_NONE, t)
        area = self._soft(cv2.max(self._fill(rect, [zone]), eye))  # soft outside, up to the lash line
        return _Patch(rect, area * strength * (1.0 - _unit(eye)))

    def _cheek(self, side: FaceSide) -> _Patch | None:
        """Soft elliptical blush blob on the apple of the cheek, kept on the skin."""
        centre = self._poly(side.cheek_centre).mean(axis=0)
        a_in, a_out = self._poly(side.cheek_across)
        d_up, d_down = self._poly(side.cheek_down)
        axes = np.stack([(a_out - a_in) * (_CHEEK_ACROSS / 2), (d_down - d_up) * (_CHEEK_DOWN / 2)], axis=1)
        if abs(float(np.linalg.det(axes))) < 1e-6:
            return None
        rect = self._rect(centre + _SQUARE @ axes.T)
        skin = self.region("skin")
        if rect is None or skin is None:
            return None
        x0, y0, x1, y1 = rect
        inv = np.linalg.inv(axes).astype(np.float32)
        gx = np.arange(x0, x1, dtype=np.float32) - np.float32(centre[0])
        gy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(centre[1])
        s = inv[0, 0] * gx + inv[0, 1] * gy
        t = inv[1, 0] * gx + inv[1, 1] * gy
        blob = _smoothstep(0.0, 1.0, 1.0 - (s * s + t * t))  # flat top, smooth to zero at the rim
        return _Patch(rect, blob * skin.over(rect))

    def _skin(self) -> _Patch | None:
        """Face minus slightly grown eyes, brows and mouth.

        The face is the union of the oval, each half-face (its side of the oval closed by the profile
        line down the middle) and each side's convex hull: on a turned head the far side of the oval
        falls inside the face; the halves restore the nose, mouth and chin out to the profile and the
        hulls the far cheek out to its silhouette.
        """
        rect = self._rect(self.pts[:MESH_POINTS])
        if rect is None:
            return None
        parts = [self._poly(FACE_OVAL), *(self._poly(h) for h in HALF_FACES)]
        for side in (LEFT, RIGHT):  # a turned cheek reaches past the oval, which curls behind it
            if self._shown[side] >= 0.5:
                outline = self._poly(side.outline)
                parts.append(outline[cv2.convexHull(outline.astype(np.float32), returnPoints=False)[:, 0]])
        face = self._fill(rect, parts)
        holes = self._fill(rect, _SKIN_HOLES.grown(self.pts, self.grow))
        return _Patch(rect, self._soft(cv2.subtract(face, holes)))  # one blur for the face and its holes


def _unit(coverage: np.ndarray) -> np.ndarray:
    """uint8 coverage as float32 in [0, 1]."""
    return coverage.astype(np.float32) * np.float32(1.0 / 255.0)


_SQUARE = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])


# Cut out of the skin: both eyes, both brows and the whole mouth.
_SKIN_HOLES = _Rings([LEFT.eye_contour, RIGHT.eye_contour, LEFT.brow_contour, RIGHT.brow_contour, _MOUTH_OUTLINE])
