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

Masks are built when first looked up, so a look pays only for the regions it uses, and a layer
that paints a small box reads its masks there (``RegionMasks.within``) or on a coarse grid
(``RegionMasks.resized``) without the ROI-sized array ever being made.
With a wide feather (a big face) the soft outlines of the skin, nose and lips are
still rasterised at full resolution but feathered on a grid k times coarser, the
feather still 1.5 grid pixels or more, and interpolated back up: an edge that soft
holds nothing the coarse grid misses, and blurring the face-sized skin is the
costliest step of all. Crisp edges (the mouth opening cut from the lips, the eyes,
irises and eyeshadow) stay at full resolution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
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

# The wholly soft regions are feathered on a grid k image pixels to the cell: the largest k that
# leaves the feather sigma this many cells wide (edges as soft as that interpolate back up smoothly)
# and whose box passes come within this fraction of the full-resolution feather's width.
_COARSE_SIGMA = 1.5
_COARSE_WIDTH_ERROR = 0.08  # a few hundredths at most at any edge pixel

# A side of a turned head fades out as its outer eye corner nears the bridge of the nose in the image:
# by its share of the two corner-to-bridge distances (0.5 when frontal, about 0.08 in full profile).
_HIDDEN_SHARE = 0.08
_SHOWN_SHARE = 0.15
_BRIDGE = 168  # mesh point between the eyes

_Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 inside the ROI
_SIDES = {"left": LEFT, "right": RIGHT}  # by the prefix of their region names

_MOUTH_OUTLINE = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1]
_MOUTH_OPENING = LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1]


@dataclass(frozen=True)
class RegionMasks:
    """Masks of one face, each cropped to the face's box so a frame-sized array is never needed."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the ROI in image pixels, clipped to the image
    masks: Mapping[str, np.ndarray]  # name -> float32 in [0, 1] of shape (y1 - y0, x1 - x0)
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

    def within(self, name: str, rows: slice, cols: slice) -> np.ndarray:
        """One mask's values over a (rows, cols) sub-box of the ROI: read-only, a view where it can be.

        A layer painting a small region pays for that region only: the ROI-sized mask is not made for it.
        """
        if isinstance(self.masks, _LazyMasks):
            return self.masks.within(name, rows, cols)
        return self.masks[name][rows, cols]

    def bounds(self, name: str) -> tuple[slice, slice] | None:
        """(rows, cols) of the ROI outside which the mask is zero, or None where it is zero everywhere."""
        if isinstance(self.masks, _LazyMasks):
            return self.masks.bounds(name)
        h, w = self.shape
        return (slice(0, h), slice(0, w)) if h and w else None

    def resized(self, name: str, size: tuple[int, int]) -> np.ndarray:
        """One mask bilinearly resampled to ``size`` (width, height) over the ROI, as ``cv2.resize`` would give
        it, without making the ROI-sized mask: for effects worked out on a coarse grid."""
        if isinstance(self.masks, _LazyMasks):
            return self.masks.resized(name, size)
        return cv2.resize(self.masks[name], size, interpolation=cv2.INTER_LINEAR)

    def shown(self, side: str) -> float:
        """How much of one side of the face ("left" or "right") is seen: 1 facing the camera, 0 turned away.

        The far side's eye, brow, eyeshadow and cheek masks are faded by it.
        """
        if isinstance(self.masks, _LazyMasks):
            return self.masks.shown(side)
        return 1.0

    def peak(self, name: str) -> float:
        """The mask's largest value (without making the ROI-sized mask)."""
        if isinstance(self.masks, _LazyMasks):
            return self.masks.peak(name)
        mask = self.masks[name]
        return float(mask.max()) if mask.size else 0.0


class _LazyMasks(Mapping[str, np.ndarray]):
    """Region name -> mask, each built the first time it is looked up and then kept.

    A look that paints only the lips never pays for the skin. Membership, iteration and ``len``
    never build anything.
    """

    def __init__(self, names: Iterable[str], builder: _Builder) -> None:
        self._names = dict.fromkeys(names)
        self._builder = builder
        self._built: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        mask = self._built.get(name)
        if mask is None:
            if name not in self._names:
                raise KeyError(name)
            mask = self._built[name] = self._builder.mask(name)
        return mask

    def _patch(self, name: str) -> _Patch | None:
        if name not in self._names:
            raise KeyError(name)
        return self._builder.region(name)

    def within(self, name: str, rows: slice, cols: slice) -> np.ndarray:
        mask = self._built.get(name)
        if mask is not None:
            return mask[rows, cols]
        h, w = self._builder.h, self._builder.w
        y0, y1, _ = rows.indices(h)
        x0, x1, _ = cols.indices(w)
        y1, x1 = max(y0, y1), max(x0, x1)
        patch = self._patch(name)
        if patch is None:
            return np.zeros((y1 - y0, x1 - x0), np.float32)
        return patch.over((x0, y0, x1, y1))

    def bounds(self, name: str) -> tuple[slice, slice] | None:
        patch = self._patch(name)
        if patch is None:
            return None
        x0, y0, x1, y1 = patch.rect
        return slice(y0, y1), slice(x0, x1)

    def resized(self, name: str, size: tuple[int, int]) -> np.ndarray:
        mask = self._built.get(name)
        if mask is not None:
            return cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
        patch = self._patch(name)
        w, h = size
        if patch is None:
            return np.zeros((h, w), np.float32)
        # cv2.resize samples output pixel u at (u + 0.5) * W / w - 0.5 of the ROI: the same map, onto the patch.
        # Outside its rectangle the patch is zero, and at its edges it already is.
        x0, y0 = patch.rect[:2]
        sx, sy = self._builder.w / w, self._builder.h / h
        m = np.array([[sx, 0.0, 0.5 * sx - 0.5 - x0], [0.0, sy, 0.5 * sy - 0.5 - y0]])
        data = patch.data if patch.data.dtype == np.float32 else patch.data.astype(np.float32)
        out = cv2.warpAffine(
            data, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
        )
        if patch.scale != 1.0:
            out *= np.float32(patch.scale)
        return out

    def shown(self, side: str) -> float:
        return self._builder.shown[side]

    def peak(self, name: str) -> float:
        patch = self._patch(name)
        return 0.0 if patch is None or patch.data.size == 0 else float(patch.data.max()) * patch.scale

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._names)}, built={list(self._built)})"


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
    does not depend on resolution. Each mask is built when first looked up in ``masks``.
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

    lo, hi = _bounds(pts[:MESH_POINTS])
    face_size = float(max(hi - lo))
    grow = _EXCLUSION_GROWTH * face_size + _EXCLUSION_FEATHERS * sigma
    k, coarse_boxes = _coarse_boxes(sigma)
    margin = _blur_reach(sigma) + 2
    # The unclipped box, its far sides pushed out to whole cells of the coarse grid.
    ax, ay = math.floor(lo[0]) - margin, math.floor(lo[1]) - margin
    bx = ax + -(-(math.ceil(hi[0]) + margin + 1 - ax) // k) * k
    by = ay + -(-(math.ceil(hi[1]) + margin + 1 - ay) // k) * k
    x0, y0, x1, y1 = max(ax, 0), max(ay, 0), min(bx, w), min(by, h)
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the image
        x0, y0 = min(x0, w), min(y0, h)
        empty = np.zeros((0, 0), np.float32)
        return RegionMasks((x0, y0, x0, y0), {n: empty.copy() for n in names})

    # Far-off points (a huge face mostly outside the frame) are pulled in so that fixed-point vertex
    # coordinates cannot overflow; the visible part of the polygons is unchanged.
    rel = pts - (x0, y0)
    if not (-_COORD_LIMIT < rel.min() and rel.max() < _COORD_LIMIT):
        np.clip(rel, -_COORD_LIMIT, _COORD_LIMIT, out=rel)
    roi = (y1 - y0, x1 - x0)
    grid = None
    if k > 1:  # anchored to the unclipped box, so a face cut by the frame edge keeps its samples
        gx, gy = -((x0 - ax) % k), -((y0 - ay) % k)
        grid = _Grid(k, coarse_boxes, gx, gy, gx - (gx - roi[1]) // k * k, gy - (gy - roi[0]) // k * k)
    builder = _Builder(rel, roi, sigma, grow, grid, names)
    return RegionMasks((x0, y0, x1, y1), _LazyMasks(names, builder))


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


def _bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis minimum and maximum of (N, 2) points (column by column: numpy's axis-0 reduction is slow)."""
    xs, ys = points[:, 0], points[:, 1]
    return np.array([xs.min(), ys.min()]), np.array([xs.max(), ys.max()])


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


def _coarse_boxes(sigma: float) -> tuple[int, tuple[int, ...]]:
    """Cell size (image pixels) of the grid the wholly soft regions are feathered on, and its boxes.

    (1, ()) for none. On the grid the boxes are fitted to the variance the full-resolution ones
    have, less what averaging down (a k-pixel box) and interpolating back up (about a k-pixel
    tent) add; their widths come in odd whole numbers, so a cell size they cannot match closely
    is passed over for a smaller one.
    """
    full = _box_variance(_box_sizes(sigma))
    for k in range(int(sigma / _COARSE_SIGMA), 1, -1):
        added = (k * k - 1) / 12.0 + k * k / 6.0
        boxes = _fit_boxes((full - added) / (k * k))
        if abs(math.sqrt((k * k * _box_variance(boxes) + added) / full) - 1.0) <= _COARSE_WIDTH_ERROR:
            return k, boxes
    return 1, ()


def _fit_boxes(variance: float) -> tuple[int, ...]:
    """Three or four box widths whose passes come closest to this variance (1-wide ones left out)."""
    sigma = math.sqrt(max(variance, 0.0))
    boxes = min((_box_sizes(sigma, passes) for passes in (3, 4)), key=lambda b: abs(_box_variance(b) - variance))
    return tuple(k for k in boxes if k > 1)


def _box_variance(boxes: tuple[int, ...]) -> float:
    """Variance (pixels squared) of repeated box filters of these widths."""
    return sum((k * k - 1) / 12.0 for k in boxes)


class _Rings:
    """Several closed polygons in one flat point list, so they can be grown with one set of array ops."""

    def __init__(self, rings: Iterable[tuple[int, ...]]) -> None:
        rings = list(rings)
        self.index = np.concatenate([np.asarray(r, np.intp) for r in rings])
        sizes = [len(r) for r in rings]
        self.starts = np.cumsum([0, *sizes[:-1]])
        self.spans = [(int(a), int(a) + n) for a, n in zip(self.starts, sizes, strict=True)]
        local = np.concatenate([np.arange(n) for n in sizes])
        base = np.repeat(self.starts, sizes)
        self.next = base + (local + 1) % np.repeat(sizes, sizes)
        self.prev = base + (local - 1) % np.repeat(sizes, sizes)
        self.ring_of = np.repeat(np.arange(len(rings)), sizes)

    def grown(self, pts: np.ndarray, by: float) -> list[np.ndarray]:
        """Each polygon with every edge moved outwards by ``by`` pixels (mitred; sharp corners capped).

        As fixed-point vertices for OpenCV's rasteriser.
        """
        p = pts[self.index]
        if by > 0:
            q = p[self.next]
            edges = q - p
            length = np.hypot(edges[:, 0], edges[:, 1])
            np.maximum(length, 1e-9, out=length)
            # Shoelace sign per polygon: the normals point outwards where it runs clockwise on screen.
            cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
            sign = np.where(np.add.reduceat(cross, self.starts) < 0, -1.0, 1.0)[self.ring_of]
            along = edges / (length * sign)[:, None]  # unit edge directions, reversed on anticlockwise rings
            vertex = along + along[self.prev]  # turned a right angle: the sum of the two edge normals
            half_sq = np.einsum("ij,ij->i", vertex, vertex) * 0.5  # 1 + cos(turn): 2 straight, 0 reversed
            np.maximum(half_sq, 0.25, out=half_sq)
            shift = vertex[:, ::-1] * (by / half_sq)[:, None]  # (dx, dy) turned to (dy, -dx)
            shift[:, 1] *= -1.0
            p = p + shift
        fixed = np.rint(p * _ONE).astype(np.int32)
        return [fixed[a:b] for a, b in self.spans]


def _smoothstep(e0: float, e1: float, x: float) -> float:
    """0 below e0, 1 above e1, a smooth cubic in between."""
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.cache
def _ix(idx: tuple[int, ...]) -> np.ndarray:
    """Index tuple as an array, made once."""
    return np.asarray(idx, np.intp)


class _Patch(NamedTuple):
    """A region's values inside its own rectangle of the ROI; zero everywhere else."""

    rect: _Rect
    data: np.ndarray  # shape of the rect: float32, or uint8 coverage to be scaled on the way out
    scale: float = 1.0  # values are data * scale

    def over(self, rect: _Rect) -> np.ndarray:
        """Values over another rectangle (zero where this patch does not reach)."""
        x0, y0, x1, y1 = rect
        px0, py0, px1, py1 = self.rect
        if px0 <= x0 and py0 <= y0 and x1 <= px1 and y1 <= py1 and self.scale == 1.0:
            return self.data[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
        out = np.zeros((y1 - y0, x1 - x0), np.float32)
        ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        if ix1 > ix0 and iy1 > iy0:
            src = self.data[iy0 - py0 : iy1 - py0, ix0 - px0 : ix1 - px0]
            np.multiply(src, np.float32(self.scale), out=out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0])
        return out


class _Grid(NamedTuple):
    """A grid of k x k pixel cells over the ROI, where the wholly soft regions are feathered.

    It starts a whole number of cells from the face's unclipped box, so a face cut by the frame
    edge is feathered at the same points of itself as when it is whole.
    """

    k: int
    boxes: tuple[int, ...]  # feathering on the grid, in cells
    x0: int  # ROI column and row where the grid starts (-k < x0 <= 0)
    y0: int
    x1: int  # and where it ends, on a whole cell (less than k past the ROI's far side)
    y1: int

    def snap(self, x0: int, y0: int, x1: int, y1: int) -> _Rect:
        """The rectangle grown out to whole cells and clipped to the grid."""
        k = self.k
        return (
            max(self.x0 + (x0 - self.x0) // k * k, self.x0),
            max(self.y0 + (y0 - self.y0) // k * k, self.y0),
            min(self.x0 - (self.x0 - x1) // k * k, self.x1),
            min(self.y0 - (self.y0 - y1) // k * k, self.y1),
        )


class _Builder:
    """Builds region masks for one face in ROI coordinates, each within its own sub-rectangle.

    Polygons go to OpenCV as 1/16-pixel fixed-point vertices, converted once for all landmarks.
    The finished masks share one block, taken at the first: one large allocation a frame, which
    the allocator recycles, where separate ROI-sized ones can come back as fresh pages to fault in.
    """

    def __init__(
        self,
        pts: np.ndarray,
        shape: tuple[int, int],
        sigma: float,
        grow: float,
        grid: _Grid | None,
        names: Iterable[str],
    ) -> None:
        self.pts = pts  # landmarks relative to the ROI's top-left corner
        self.fixed = np.rint(pts * _ONE).astype(np.int32)
        self.h, self.w = shape
        self.sigma = sigma
        self.grow = grow
        self._grid = grid  # where the wholly soft regions are feathered, if coarser than the ROI
        self._boxes = _box_sizes(sigma) if sigma >= _BOX_MIN_SIGMA else ()
        self._coarse_boxes = () if grid is None else grid.boxes
        # How far past its outline a region's feathering reaches: box passes stop dead at their
        # combined half-widths; on the coarse grid add a cell for averaging down and one for interpolating.
        self._reach = (sum(k // 2 for k in self._boxes) if self._boxes else _blur_reach(sigma)) + 2
        self._coarse_reach = 0 if grid is None else (sum(k // 2 for k in self._coarse_boxes) + 2) * grid.k + 2
        self._done: dict[str, _Patch | None] = {}
        self._slots = {n: i for i, n in enumerate(names)}
        self._block: np.ndarray | None = None
        self._views: dict[str, np.ndarray] = {}  # each slot's array, made once: identity tells what is in place
        bridge = pts[_BRIDGE].tolist()
        reach = {n: math.dist(pts[s.eye_upper[0]].tolist(), bridge) for n, s in _SIDES.items()}
        total = max(sum(reach.values()), 1e-6)
        self.shown = {n: _smoothstep(_HIDDEN_SHARE, _SHOWN_SHARE, r / total) for n, r in reach.items()}

    def mask(self, name: str) -> np.ndarray:
        """The region's ROI-sized float32 mask, in its slot of the block (read-only: regions share it)."""
        out = self._slot(name)
        patch = self.region(name)
        if patch is None or patch.data is not out:
            if patch is None or patch.rect != (0, 0, self.w, self.h):
                out.view(np.uint8).fill(0)  # bytewise: a plain memset, several times faster than float fill
            if patch is not None:
                px0, py0, px1, py1 = patch.rect
                np.multiply(patch.data, np.float32(patch.scale), out=out[py0:py1, px0:px1])
        return out

    def _slot(self, name: str) -> np.ndarray:
        slot = self._views.get(name)
        if slot is None:
            if self._block is None:
                self._block = np.empty((len(self._slots), self.h, self.w), np.float32)
            slot = self._views[name] = self._block[self._slots[name]]
        return slot

    # -- rasterising helpers ------------------------------------------------------------------

    def _poly(self, idx: tuple[int, ...]) -> np.ndarray:
        """Fixed-point vertices of the polygon through these landmarks."""
        return self.fixed[_ix(idx)]

    def _rect(
        self, lo_x: float, lo_y: float, hi_x: float, hi_y: float, *, reach: int | None = None, coarse: bool = False
    ) -> _Rect | None:
        """Sub-rectangle covering these bounds and the blur's reach, clipped to the ROI; None if empty.

        ``coarse``: on whole cells of the coarse grid instead, which may reach a little past the ROI.
        """
        if reach is not None:
            r = reach
        else:
            r = self._coarse_reach if coarse and self._grid is not None else self._reach
        x0, y0 = math.floor(lo_x) - r, math.floor(lo_y) - r
        x1, y1 = math.ceil(hi_x) + r + 1, math.ceil(hi_y) + r + 1
        if coarse and self._grid is not None:
            x0, y0, x1, y1 = self._grid.snap(x0, y0, x1, y1)
            if min(x1, self.w) <= max(x0, 0) or min(y1, self.h) <= max(y0, 0):
                return None
            return x0, y0, x1, y1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def _poly_rect(self, poly: np.ndarray, *, reach: int | None = None, coarse: bool = False) -> _Rect | None:
        """``_rect`` of fixed-point vertices."""
        x, y, w, h = cv2.boundingRect(poly)
        return self._rect(x / _ONE, y / _ONE, (x + w - 1) / _ONE, (y + h - 1) / _ONE, reach=reach, coarse=coarse)

    def _clipped(self, rect: _Rect, data: np.ndarray) -> _Patch:
        """Values over a rectangle that may reach a little past the ROI, cut to the ROI."""
        x0, y0, x1, y1 = rect
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        if (cx0, cy0, cx1, cy1) != rect:
            data = data[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        return _Patch((cx0, cy0, cx1, cy1), data)

    def _whole(self, rect: _Rect, name: str) -> np.ndarray | None:
        """The region's slot, when its rectangle is the whole ROI: it can be written there directly."""
        return self._slot(name) if rect == (0, 0, self.w, self.h) and name in self._slots else None

    @staticmethod
    def _fill(
        rect: _Rect,
        polys: Sequence[np.ndarray],
        *,
        apart: bool = False,
        value: int = 255,
        into: np.ndarray | None = None,
    ) -> np.ndarray:
        """Anti-aliased uint8 coverage of the polygons (their union) in the rect.

        ``apart``: each polygon in its own copy of the rect instead, the copies stacked top to bottom,
        to be feathered in one go (single-channel filters are the fast ones). The blank margin round
        each polygon keeps them from bleeding into each other. ``value`` 0 ``into`` coverage cuts the
        polygons out of it.
        """
        x0, y0, x1, y1 = rect
        h = y1 - y0
        buf = np.zeros((h * len(polys) if apart else h, x1 - x0), np.uint8) if into is None else into
        for i, poly in enumerate(polys):  # one by one: a single call would leave overlaps empty (even-odd rule)
            cv2.fillPoly(buf, [poly], value, cv2.LINE_AA, _SHIFT, (-x0 * _ONE, (h * i * apart - y0) * _ONE))
        return buf

    def _blurred(self, coverage: np.ndarray, boxes: tuple[int, ...] | None = None) -> np.ndarray:
        """Feathered uint8 coverage (of one or several channels)."""
        boxes = self._boxes if boxes is None else boxes
        if boxes:
            for k in boxes:
                coverage = cv2.blur(coverage, (k, k), borderType=cv2.BORDER_REPLICATE)
        elif self.sigma > 0:
            coverage = cv2.GaussianBlur(coverage, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)
        return coverage

    def _soft(
        self, coverage: np.ndarray, boxes: tuple[int, ...] | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Feathered float32 mask in [0, 1] from uint8 coverage (of one or several channels)."""
        return _unit(self._blurred(coverage, boxes), out)

    def _feathered(self, coverage: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``_soft`` for wholly soft regions, in a ``_rect(..., coarse=True)`` rectangle.

        On a coarse grid the coverage is averaged down, feathered there and interpolated back up.
        """
        grid = self._grid
        if grid is None:
            return self._soft(coverage, out=out)
        h, w = coverage.shape[:2]
        small = cv2.resize(coverage, (w // grid.k, h // grid.k), interpolation=cv2.INTER_AREA)
        return cv2.resize(self._soft(small, self._coarse_boxes), (w, h), dst=out, interpolation=cv2.INTER_LINEAR)

    # -- regions --------------------------------------------------------------------------------

    def region(self, name: str) -> _Patch | None:
        if name not in self._done:
            if name in ("upper_lip", "lower_lip", "mouth_inner"):
                self._done.update(self._lips())
            elif name == "skin":
                self._done[name] = self._skin()
            elif name == "nose":
                self._done[name] = self._nose()
            else:
                side_name, part = name.split("_", 1)
                side = _SIDES[side_name]
                parts = {name: self._cheek(side)} if part == "cheek" else self._eye_area(side, side_name)
                shown = self.shown[side_name]
                if shown < 1.0:  # the far side of a turned head
                    parts = {n: p if p is None else p._replace(scale=p.scale * shown) for n, p in parts.items()}
                self._done.update(parts)
        return self._done[name]

    def _nose(self) -> _Patch | None:
        poly = self._poly(NOSE_OUTLINE)
        rect = self._poly_rect(poly, coarse=True)
        return None if rect is None else self._clipped(rect, self._feathered(self._fill(rect, [poly])))

    def _lips(self) -> dict[str, _Patch | None]:
        """Both lips share one soft outer edge and stop crisply at the inner contour."""
        outer = self._poly(_MOUTH_OUTLINE)
        rect = self._poly_rect(outer, coarse=True)
        if rect is None:
            return dict.fromkeys(("upper_lip", "lower_lip", "mouth_inner"))
        # Upper part of the mouth: down to the curve halfway between the inner contours, so it meets
        # the lower lip along the seam of a closed mouth.
        halfway = np.rint((self.pts[_ix(LIPS_INNER_UPPER)] + self.pts[_ix(LIPS_INNER_LOWER)]) * (_ONE / 2.0))
        upper = np.concatenate([self._poly(LIPS_OUTER_UPPER), halfway[::-1].astype(np.int32)])
        mouth = _unit(self._fill(rect, [self._poly(_MOUTH_OPENING)]))
        open_ = 1.0 - mouth
        # Both outlines are soft all round (the crisp inner edge is the opening's): one feathering for both.
        soft = self._feathered(self._fill(rect, [outer, upper], apart=True))
        lips = soft[: mouth.shape[0]] * open_
        upper_lip = np.minimum(soft[mouth.shape[0] :] * open_, lips)
        return {
            "upper_lip": self._clipped(rect, upper_lip),
            "lower_lip": self._clipped(rect, lips - upper_lip),
            "mouth_inner": self._clipped(rect, mouth),
        }

    def _eye_area(self, side: FaceSide, prefix: str) -> dict[str, _Patch | None]:
        """Eye, brow, iris and eyeshadow of one side, drawn in one rectangle and feathered together.

        The iris disc is cut by the eye opening before feathering, so the lids cover it. The
        eyeshadow covers the lid-to-brow zone, full at the lid and fading out before the brow, and is
        never on the eyeball.
        """
        names = [f"{prefix}_{part}" for part in ("eye", "brow", "eyeshadow", "iris")]
        eye, brow, zone = (self._poly(c) for c in (side.eye_contour, side.brow_contour, side.eyeshadow_contour))
        rect = self._poly_rect(np.concatenate([eye, brow]))  # the eyeshadow zone lies between the two
        if rect is None:
            return dict.fromkeys(names)
        x0, y0 = rect[0], rect[1]
        eye_in, brow_in = self._fill(rect, [eye]), self._fill(rect, [brow])
        channels = [eye_in, brow_in, cv2.max(self._fill(rect, [zone]), eye_in)]  # the zone, up to the lash line
        if self.pts.shape[0] >= WITH_IRIS_POINTS:
            cx, cy = self.pts[side.iris_centre].tolist()
            radius = sum(math.hypot(x - cx, y - cy) for x, y in self.pts[_ix(side.iris_ring)].tolist()) / 4.0
            fx, fy = self.fixed[side.iris_centre].tolist()
            disc = np.zeros_like(eye_in)
            cv2.circle(disc, (fx - x0 * _ONE, fy - y0 * _ONE), round(radius * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
            channels.append(cv2.multiply(disc, eye_in, scale=1.0 / 255.0))
        soft = self._blurred(cv2.merge(channels))  # one blur for all of them
        # As float planes, once: the eye layers read these masks over and over, in small boxes.
        planes = _unit(soft).transpose(2, 0, 1).copy()
        patches = [_Patch(rect, planes[i]) if i < len(channels) else None for i in (0, 1, 2, 3)]

        # Eyeshadow strength by relative position t between lid (0) and brow (1) from the distances to
        # both, within the zone's own rectangle: it reaches a Gaussian's 3 sigma past the lid line, so
        # the eye's feathering under the lower lid hardly turns into eyeshadow. (Capped: with the eye or
        # brow cut off by the frame there is nothing to measure to.)
        shadow = self._poly_rect(zone, reach=_blur_reach(self.sigma) + 2)
        if shadow is None:
            patches[2] = None
        else:
            sx0, sy0 = max(shadow[0], x0), max(shadow[1], y0)  # the rest has no eye, brow or zone in it
            sx1, sy1 = min(shadow[2], rect[2]), min(shadow[3], rect[3])
            inner = (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0))
            far = float(sx1 - sx0 + sy1 - sy0)
            d_eye, d_brow = (_distance_to(m, far) for m in (eye_in[inner], brow_in[inner]))
            # t = d_eye / (d_eye + d_brow); strength = 1 - smoothstep(FULL, NONE, t) = v^2 (3 - 2v) with
            # v = (NONE - t) / (NONE - FULL) clipped to [0, 1]. In place: these are the costliest pixels.
            d_brow += d_eye
            d_brow += np.float32(1e-3)
            v = np.divide(d_eye, d_brow, out=d_eye)
            v *= np.float32(-1.0 / (_SHADOW_NONE - _SHADOW_FULL))
            v += np.float32(_SHADOW_NONE / (_SHADOW_NONE - _SHADOW_FULL))
            np.maximum(v, 0.0, out=v)
            np.minimum(v, 1.0, out=v)
            rise = v * np.float32(-2.0 / 255.0**2)
            rise += np.float32(3.0 / 255.0**2)  # (3 - 2v) / 255^2, for the two coverages below
            v *= v
            v *= rise
            v *= cv2.subtract(255, eye_in[inner])  # off the eyeball
            v *= soft[:, :, 2][inner]
            patches[2] = _Patch((sx0, sy0, sx1, sy1), v)
        return dict(zip(names, patches, strict=True))

    def _cheek(self, side: FaceSide) -> _Patch | None:
        """Soft elliptical blush blob on the apple of the cheek, kept on the skin."""
        centre = self.pts[_ix(side.cheek_centre)].tolist()
        cx, cy = sum(p[0] for p in centre) / len(centre), sum(p[1] for p in centre) / len(centre)
        (ix, iy), (ox, oy) = self.pts[_ix(side.cheek_across)].tolist()
        (ux, uy), (dx, dy) = self.pts[_ix(side.cheek_down)].tolist()
        # Semi-axes as the columns of [[a, b], [c, d]].
        a, c = (ox - ix) * (_CHEEK_ACROSS / 2), (oy - iy) * (_CHEEK_ACROSS / 2)
        b, d = (dx - ux) * (_CHEEK_DOWN / 2), (dy - uy) * (_CHEEK_DOWN / 2)
        det = a * d - b * c
        if abs(det) < 1e-6:
            return None
        ex, ey = abs(a) + abs(b), abs(c) + abs(d)  # half-size of the parallelogram round the ellipse
        rect = self._rect(cx - ex, cy - ey, cx + ex, cy + ey, reach=1)  # the blob ends at its rim
        skin = self.region("skin")
        if rect is None or skin is None:
            return None
        x0, y0, x1, y1 = rect
        # Squared elliptical radius q = |inverse(axes) @ (p - centre)|^2 as a quadratic form in x and y.
        i00, i01, i10, i11 = d / det, -b / det, -c / det, a / det
        qxx, qxy, qyy = i00 * i00 + i10 * i10, 2.0 * (i00 * i01 + i10 * i11), i01 * i01 + i11 * i11
        gx = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
        gy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        m = (1.0 - np.float32(qyy) * gy * gy) - np.float32(qxx) * gx * gx  # 1 - q
        m -= (np.float32(qxy) * gx) * gy
        rise = 3.0 - 2.0 * m  # smoothstep(0, 1, 1 - q) = m^2 (3 - 2m), m clipped at 0
        np.maximum(m, 0.0, out=m)
        m *= m
        m *= rise  # flat top, smooth to zero at the rim
        m *= skin.over(rect)
        return _Patch(rect, m)

    def _skin(self) -> _Patch | None:
        """Face minus slightly grown eyes, brows and mouth.

        The face is the union of the oval, each half-face (its side of the oval closed by the profile
        line down the middle) and each side's convex hull: on a turned head the far side of the oval
        falls inside the face; the halves restore the nose, mouth and chin out to the profile and the
        hulls the far cheek out to its silhouette.
        """
        grid = self._grid  # the ROI is the face's box: the skin takes all of it
        rect = (0, 0, self.w, self.h) if grid is None else (grid.x0, grid.y0, grid.x1, grid.y1)
        parts = [self._poly(FACE_OVAL), *(self._poly(h) for h in HALF_FACES)]
        for side_name, side in _SIDES.items():  # a turned cheek reaches past the oval, which curls behind it
            if self.shown[side_name] >= 0.5:
                parts.append(cv2.convexHull(self._poly(side.outline)))
        skin = self._fill(rect, parts)
        self._fill(rect, _SKIN_HOLES.grown(self.pts, self.grow), value=0, into=skin)
        return self._clipped(rect, self._feathered(skin, self._whole(rect, "skin")))  # one blur for face and holes


def _distance_to(coverage: np.ndarray, cap: float) -> np.ndarray:
    """Distance from each pixel to the nearest one at least half covered, in pixels, at most ``cap``."""
    outside = cv2.threshold(coverage, 127, 255, cv2.THRESH_BINARY_INV)[1]
    return cv2.min(cv2.distanceTransform(outside, cv2.DIST_L2, 3), cap)


def _unit(coverage: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 coverage as float32 in [0, 1] (into ``out`` if given)."""
    return np.multiply(coverage, np.float32(1.0 / 255.0), out=out, dtype=np.float32)


# Cut out of the skin: both eyes, both brows and the whole mouth.
_SKIN_HOLES = _Rings([LEFT.eye_contour, RIGHT.eye_contour, LEFT.brow_contour, RIGHT.brow_contour, _MOUTH_OUTLINE])
