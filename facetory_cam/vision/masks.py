"""Soft per-region face masks (lips, eyes, brows, skin, ...) from face-mesh landmarks.

Makeup is painted through these masks, so they need soft, anti-aliased edges that
follow the landmarks at sub-pixel precision, and they must be cheap enough to
rebuild for every face on every frame. All work therefore happens inside the
face's own box (the ROI), and each region is rasterised and blurred only within
its own bounds inside that box: a frame-sized array is never touched.

Polygons are filled with OpenCV's anti-aliased rasteriser at 1/16-pixel vertex
precision, then feathered with a Gaussian of ``sigma = feather`` pixels.
Where a region meets a dark opening (lips against the mouth, eyeshadow against
the eyeball) the opening is cut out afterwards with only anti-aliasing, so
colour never bleeds onto teeth or the white of the eye.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from facetory_cam.vision.regions import (
    FACE_OVAL,
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
_COORD_LIMIT = 2.0**26 / _ONE  # keeps shifted coordinates well inside int32

# Sizes relative to the face (the larger side of the landmark box).
_EXCLUSION_GROWTH = 0.012  # eyes, brows and mouth are grown by this much before being cut from the skin
_CHEEK_ACROSS = 0.9  # cheek blob semi-axis / distance between its two "across" landmarks
_CHEEK_DOWN = 0.8  # the same along the "down" pair
# Eyeshadow strength by relative position t between lid (0) and brow (1): full below _SHADOW_FULL,
# gone above _SHADOW_NONE, smooth in between.
_SHADOW_FULL = 0.35
_SHADOW_NONE = 0.85

_Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 inside the ROI


@dataclass(frozen=True)
class RegionMasks:
    """Masks of one face, each cropped to the face's box so a frame-sized array is never needed."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the ROI in image pixels, clipped to the image
    masks: dict[str, np.ndarray]  # name -> float32 in [0, 1] of shape (y1 - y0, x1 - x0)

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
    if not (isinstance(feather, int | float) and math.isfinite(feather) and feather >= 0):
        raise ValueError(f"feather must be a finite number >= 0, got {feather!r}")
    sigma = float(feather)

    mesh = pts[:MESH_POINTS]
    lo, hi = mesh.min(axis=0), mesh.max(axis=0)
    face_size = float(max(hi - lo))
    grow = _EXCLUSION_GROWTH * face_size + 1.5 * sigma
    margin = _blur_reach(sigma) + 2
    x0 = max(math.floor(lo[0]) - margin, 0)
    y0 = max(math.floor(lo[1]) - margin, 0)
    x1 = min(math.ceil(hi[0]) + margin + 1, w)
    y1 = min(math.ceil(hi[1]) + margin + 1, h)
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the image
        x0, y0 = min(x0, w), min(y0, h)
        empty = np.zeros((0, 0), np.float32)
        return RegionMasks((x0, y0, x0, y0), {n: empty.copy() for n in names})

    builder = _Builder(pts - (x0, y0), (y1 - y0, x1 - x0), sigma, grow)
    return RegionMasks((x0, y0, x1, y1), {n: builder.region(n) for n in names})


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
        raise ValueError(f"image_shape must be (height, width[, channels]) of integers >= 0, got {image_shape!r}")
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


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Builder:
    """Builds region masks for one face in ROI coordinates, each within its own sub-rectangle."""

    def __init__(self, pts: np.ndarray, shape: tuple[int, int], sigma: float, grow: float) -> None:
        self.pts = pts  # landmarks relative to the ROI's top-left corner
        self.h, self.w = shape
        self.sigma = sigma
        self.grow = grow
        self._done: dict[str, np.ndarray] = {}

    # -- rasterising helpers ------------------------------------------------------------------

    def _poly(self, idx: tuple[int, ...]) -> np.ndarray:
        return self.pts[list(idx)]

    def _rect(self, points: np.ndarray, pad: float = 0.0) -> _Rect | None:
        """Sub-rectangle covering the points, the padding and the blur's reach, clipped to the ROI."""
        reach = pad + _blur_reach(self.sigma) + 2
        x0 = max(math.floor(points[:, 0].min() - reach), 0)
        y0 = max(math.floor(points[:, 1].min() - reach), 0)
        x1 = min(math.ceil(points[:, 0].max() + reach) + 1, self.w)
        y1 = min(math.ceil(points[:, 1].max() + reach) + 1, self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    @staticmethod
    def _fixed(points: np.ndarray, rect: _Rect) -> np.ndarray:
        rel = np.clip(points - (rect[0], rect[1]), -_COORD_LIMIT, _COORD_LIMIT)
        return np.rint(rel * _ONE).astype(np.int32)

    def _fill(self, rect: _Rect, polys: Iterable[np.ndarray], grow: float = 0.0) -> np.ndarray:
        """Anti-aliased uint8 coverage of the polygons in the rect, optionally grown by ``grow`` px."""
        x0, y0, x1, y1 = rect
        buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed = [self._fixed(p, rect) for p in polys]
        cv2.fillPoly(buf, fixed, 255, cv2.LINE_AA, _SHIFT)
        thickness = round(2 * grow)
        if thickness >= 1:
            cv2.polylines(buf, fixed, True, 255, thickness, cv2.LINE_AA, _SHIFT)
        return buf

    def _soft(self, coverage: np.ndarray) -> np.ndarray:
        """Feathered float32 mask in [0, 1] from uint8 coverage."""
        if self.sigma > 0:
            coverage = cv2.GaussianBlur(coverage, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)
        return coverage.astype(np.float32) * np.float32(1.0 / 255.0)

    def _place(self, rect: _Rect | None, local: np.ndarray | None) -> np.ndarray:
        out = np.zeros((self.h, self.w), np.float32)
        if rect is not None and local is not None:
            x0, y0, x1, y1 = rect
            out[y0:y1, x0:x1] = local
        return out

    def _polygon_region(self, idx: tuple[int, ...]) -> np.ndarray:
        poly = self._poly(idx)
        rect = self._rect(poly)
        return self._place(rect, None if rect is None else self._soft(self._fill(rect, [poly])))

    # -- regions --------------------------------------------------------------------------------

    def region(self, name: str) -> np.ndarray:
        if name not in self._done:
            if name in ("upper_lip", "lower_lip", "mouth_inner"):
                self._lips()
            elif name == "skin":
                self._done[name] = self._skin()
            elif name == "nose":
                self._done[name] = self._polygon_region(NOSE_OUTLINE)
            else:
                side_name, part = name.split("_", 1)
                side = LEFT if side_name == "left" else RIGHT
                self._done[name] = getattr(self, f"_{part}")(side)
        return self._done[name]

    def _lips(self) -> None:
        """Both lips share one soft outer edge and stop crisply at the inner contour."""
        outer = self._poly(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1])
        inner = self._poly(LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1])
        upper = self._poly(LIPS_OUTER_UPPER + LIPS_INNER_UPPER[::-1])
        lower = self._poly(LIPS_OUTER_LOWER + LIPS_INNER_LOWER[::-1])
        rect = self._rect(outer)
        if rect is None:
            for n in ("upper_lip", "lower_lip", "mouth_inner"):
                self._done[n] = self._place(None, None)
            return
        mouth = self._fill(rect, [inner]).astype(np.float32) * np.float32(1.0 / 255.0)
        lips = self._soft(self._fill(rect, [outer])) * (1.0 - mouth)
        # Split the lips by which lip is nearer, so upper + lower == lips everywhere.
        u = self._soft(self._fill(rect, [upper])) + np.float32(1e-4)
        lo = self._soft(self._fill(rect, [lower])) + np.float32(1e-4)
        upper_share = u / (u + lo)
        self._done["upper_lip"] = self._place(rect, lips * upper_share)
        self._done["lower_lip"] = self._place(rect, lips * (1.0 - upper_share))
        self._done["mouth_inner"] = self._place(rect, mouth)

    def _eye(self, side: FaceSide) -> np.ndarray:
        return self._polygon_region(side.eye_contour)

    def _brow(self, side: FaceSide) -> np.ndarray:
        return self._polygon_region(side.brow_contour)

    def _iris(self, side: FaceSide) -> np.ndarray:
        """Iris disc cut by the eye opening (before feathering), so the lids cover it."""
        if self.pts.shape[0] < WITH_IRIS_POINTS:
            return self._place(None, None)
        eye = self._poly(side.eye_contour)
        rect = self._rect(eye)
        if rect is None:
            return self._place(None, None)
        centre = self.pts[side.iris_centre]
        radius = float(np.linalg.norm(self.pts[list(side.iris_ring)] - centre, axis=1).mean())
        disc = np.zeros((rect[3] - rect[1], rect[2] - rect[0]), np.uint8)
        c = self._fixed(centre[None], rect)[0]
        cv2.circle(disc, (int(c[0]), int(c[1])), round(radius * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        inside = cv2.multiply(disc, self._fill(rect, [eye]), scale=1.0 / 255.0)
        return self._place(rect, self._soft(inside))

    def _eyeshadow(self, side: FaceSide) -> np.ndarray:
        """Lid-to-brow zone, full at the lid and fading out before the brow; never on the eyeball."""
        zone = self._poly(side.eyeshadow_contour)
        eye_poly = self._poly(side.eye_contour)
        brow_poly = self._poly(side.brow_contour)
        rect = self._rect(zone)
        if rect is None:
            return self._place(None, None)
        eye = self._fill(rect, [eye_poly])
        brow = self._fill(rect, [brow_poly])
        # Relative position between lid and brow from the distances to both.
        d_eye = cv2.distanceTransform(np.where(eye >= 128, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
        d_brow = cv2.distanceTransform(np.where(brow >= 128, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
        t = d_eye / (d_eye + d_brow + np.float32(1e-3))
        strength = 1.0 - _smoothstep(_SHADOW_FULL, _SHADOW_NONE, t)
        area = self._soft(cv2.max(self._fill(rect, [zone]), eye))
        out = area * strength * (1.0 - eye.astype(np.float32) * np.float32(1.0 / 255.0))
        return self._place(rect, out.astype(np.float32))

    def _cheek(self, side: FaceSide) -> np.ndarray:
        """Soft elliptical blush blob on the apple of the cheek, kept on the skin."""
        centre = self.pts[list(side.cheek_centre)].mean(axis=0)
        a_in, a_out = self.pts[list(side.cheek_across)]
        d_up, d_down = self.pts[list(side.cheek_down)]
        axes = np.stack([(a_out - a_in) * (_CHEEK_ACROSS / 2.0), (d_down - d_up) * (_CHEEK_DOWN / 2.0)], axis=1)
        det = float(np.linalg.det(axes))
        if abs(det) < 1e-6:
            return self._place(None, None)
        corners = centre + np.array([[s, t] for s in (-1, 1) for t in (-1, 1)]) @ axes.T
        rect = self._rect(corners)
        if rect is None:
            return self._place(None, None)
        x0, y0, x1, y1 = rect
        inv = np.linalg.inv(axes).astype(np.float32)
        gx = np.arange(x0, x1, dtype=np.float32) - np.float32(centre[0])
        gy = np.arange(y0, y1, dtype=np.float32) - np.float32(centre[1])
        s = inv[0, 0] * gx[None, :] + inv[0, 1] * gy[:, None]
        t = inv[1, 0] * gx[None, :] + inv[1, 1] * gy[:, None]
        blob = _smoothstep(0.0, 1.0, 1.0 - (s * s + t * t))  # flat top, smooth to zero at the rim
        skin = self.region("skin")[y0:y1, x0:x1]
        return self._place(rect, (blob * skin).astype(np.float32))

    def _skin(self) -> np.ndarray:
        """Face oval minus slightly grown eyes, brows and mouth."""
        oval = self._poly(FACE_OVAL)
        rect = self._rect(oval)
        if rect is None:
            return self._place(None, None)
        holes = [self._poly(s.eye_contour) for s in (LEFT, RIGHT)]
        holes += [self._poly(s.brow_contour) for s in (LEFT, RIGHT)]
        holes.append(self._poly(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1]))
        face = self._soft(self._fill(rect, [oval]))
        cut = self._soft(self._fill(rect, holes, grow=self.grow))
        return self._place(rect, face * (1.0 - cut))
