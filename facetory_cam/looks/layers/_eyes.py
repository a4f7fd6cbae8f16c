"""Eye-area helpers shared by the eye layers (eyeliner, eyeshadow, mascara, brows, iris).

The eye's own axes, a smooth lash line with outward normals, soft polygon coverage
inside a small sub-box, skin-light sampling and colour application by per-channel
gains. Everything works on a few thousand pixels per eye, so the helpers avoid
broadcasting and strided access, which cost more than the arithmetic at this size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facetory_cam.looks.color import lab_to_rgb, rgb_to_lab
from facetory_cam.looks.context import FaceContext
from facetory_cam.vision.regions import LEFT, RIGHT, FaceSide

Box = tuple[slice, slice]

SIDES: tuple[tuple[FaceSide, str], ...] = ((LEFT, "left"), (RIGHT, "right"))

_SHIFT = 4  # fractional bits of polygon vertices given to OpenCV's anti-aliased rasteriser
_ONE = 1 << _SHIFT
_SUPER = 3  # polygons are rasterised this many times finer, then averaged down
_COORD_LIMIT = 1e5  # px; vertices far outside the ROI are pulled in so fixed point cannot overflow
_LID_POINTS = 9  # landmarks on each lid contour
_PER_SEGMENT = 4  # spline samples between two lid landmarks

# Liner width along the lid (s = 0 inner corner .. 1 outer corner), in units of thickness: it starts
# from nothing just past the tear duct, grows from LINER_INNER to LINER_INNER + LINER_GROWTH towards the outer corner.
LINER_INNER = 0.35
LINER_GROWTH = 0.85
_LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """0 below e0, 1 above e1, a smooth cubic in between (float32 in, float32 out)."""
    k = 1.0 / max(e1 - e0, 1e-6)
    t = x * k
    t -= e0 * k
    np.maximum(t, 0.0, out=t)
    np.minimum(t, 1.0, out=t)
    return t * t * (3.0 - 2.0 * t)


def points_box(shape: tuple[int, int], points: np.ndarray, pad: float) -> Box | None:
    """(rows, cols) slices of the ROI covering the points plus ``pad`` px, or None when off the ROI."""
    h, w = shape
    lo = points.min(axis=0).tolist()
    hi = points.max(axis=0).tolist()
    x0, y0 = max(math.floor(min(lo[0] - pad, w)), 0), max(math.floor(min(lo[1] - pad, h)), 0)
    x1, y1 = min(math.ceil(max(hi[0] + pad + 1.0, 0.0)), w), min(math.ceil(max(hi[1] + pad + 1.0, 0.0)), h)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def mask_pad(ctx: FaceContext) -> float:
    """How far past its landmarks a region mask's feathering is worth painting (values over ~0.5 %), px."""
    return math.ceil(2.5 * ctx.feather) + 2.0


def box_grid(box: Box, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x (1, w) and y (h, 1) coordinates of the box relative to ``origin``, for broadcasting."""
    rows, cols = box
    x = np.arange(cols.start, cols.stop, dtype=np.float32) - np.float32(origin[0])
    y = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] - np.float32(origin[1])
    return x[None, :], y


@dataclass(frozen=True)
class SideIndex:
    """A side's landmark indices as arrays, made once, so per-frame lookups are single gathers."""

    eye_upper: np.ndarray  # outer -> inner corner
    brow_lower: np.ndarray  # tail -> head
    brow_contour: np.ndarray
    shadow_box: np.ndarray  # every other upper-lid point, then the brow's lower edge: pairs lid -> brow
    lid_and_brow: np.ndarray  # upper lid then the brow's lower edge, both inner -> outer


INDEX: dict[str, SideIndex] = {
    name: SideIndex(
        np.array(side.eye_upper),
        np.array(side.brow_lower),
        np.array(side.brow_contour),
        np.array(side.eye_upper[::2] + side.brow_lower),
        np.array(side.eye_upper[::-1] + side.brow_lower[::-1]),
    )
    for side, name in SIDES
}


@dataclass(frozen=True)
class EyeFrame:
    """An eye's own axes, so "along the eye" and "up to the brow" work at any head roll and side."""

    inner: np.ndarray  # inner corner (ROI px)
    outer: np.ndarray  # outer corner
    axis: np.ndarray  # unit vector inner -> outer corner
    up: np.ndarray  # unit vector perpendicular to axis, towards the brow
    width: float  # corner-to-corner distance, px


def eye_frame(pts: np.ndarray, side: FaceSide) -> EyeFrame:
    """The eye's axes from its corners; ``pts`` are the (N, 2) landmarks in ROI px."""
    outer, inner = pts[side.eye_upper[0]], pts[side.eye_upper[-1]]
    d = outer - inner
    width = math.hypot(d[0], d[1])
    axis = d / width if width > 1e-6 else np.array([1.0, 0.0])
    up = np.array([axis[1], -axis[0]])
    if float(up @ (pts[side.brow_lower[2]] - inner)) < 0.0:
        up = -up
    return EyeFrame(inner, outer, axis, up, width)


def _spline_matrices(n: int, per_segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices taking n points to samples of their uniform Catmull-Rom curve and its tangents.

    The ends are extended by reflection so the curve passes through every point.
    """
    ext = np.zeros((n + 2, n))
    ext[1 : n + 1] = np.eye(n)
    ext[0, :2] = (2.0, -1.0)
    ext[n + 1, n - 2 :] = (-1.0, 2.0)
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)
    t = np.append(t, 1.0)  # the last point, taken from the last segment at t = 1
    t2, t3 = t * t, t * t * t
    basis = np.stack(
        [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
    )
    slope = np.stack([-1.5 * t2 + 2.0 * t - 0.5, 4.5 * t2 - 5.0 * t, -4.5 * t2 + 4.0 * t + 0.5, 1.5 * t2 - t])
    rows = (n - 1) * per_segment + 1
    curve, tangent = np.zeros((rows, n + 2)), np.zeros((rows, n + 2))
    for i in range(n - 1):
        k = per_segment + 1 if i == n - 2 else per_segment
        curve[i * per_segment : i * per_segment + k, i : i + 4] = basis[:, :k].T
        tangent[i * per_segment : i * per_segment + k, i : i + 4] = slope[:, :k].T
    return curve @ ext, tangent @ ext


_CURVE, _TANGENT = _spline_matrices(_LID_POINTS, _PER_SEGMENT)


@dataclass(frozen=True)
class LashLines:
    """Smooth lid contours from the inner to the outer corner, with normals pointing off the eye.

    One row per requested lid, so the geometry of several lids costs one set of array operations.
    """

    points: np.ndarray  # (k, n, 2) ROI px
    normals: np.ndarray  # (k, n, 2) unit
    s: np.ndarray  # (k, n) arc length, 0 at the inner corner, 1 at the outer corner

    def take(self, rows: list[int]) -> LashLines:
        """These rows (lids) only."""
        return LashLines(self.points[rows], self.normals[rows], self.s[rows])

    def band(self, below: np.ndarray, above: np.ndarray) -> list[np.ndarray]:
        """Each lid's closed polygon of a band from ``below`` px (k, n) under to ``above`` px over it."""
        lower = self.points - self.normals * below[..., None]
        upper = self.points + self.normals * above[..., None]
        return list(np.concatenate([lower, upper[:, ::-1]], axis=1))


def lash_lines(pts: np.ndarray, lids: tuple[tuple[FaceSide, bool], ...]) -> LashLines:
    """The smoothed (side, upper?) lid contours, with normals away from the eye opening."""
    ctrl = pts[np.array([(side.eye_upper if upper else side.eye_lower)[::-1] for side, upper in lids])]
    points, tangent = _CURVE @ ctrl, _TANGENT @ ctrl
    normals = tangent[..., ::-1] * np.array([1.0, -1.0])
    normals /= np.maximum(np.hypot(normals[..., 0], normals[..., 1]), 1e-9)[..., None]
    # Off the eye: towards the brow for an upper lid, away from it for a lower one.
    brow = pts[np.array([side.brow_lower[2] for side, _ in lids])]
    away = (brow - ctrl.mean(axis=1)) * np.array([1.0 if upper else -1.0 for _, upper in lids])[:, None]
    normals *= np.where(np.einsum("knc,kc->k", normals, away) < 0.0, -1.0, 1.0)[:, None, None]
    step = np.diff(points, axis=1)
    arc = np.cumsum(np.hypot(step[..., 0], step[..., 1]), axis=1)
    s = np.zeros(points.shape[:2])
    s[:, 1:] = arc / np.maximum(arc[:, -1:], 1e-9)
    return LashLines(points, normals, s)


# Every lid, so the lid curves of a face are worked out once for the liner and the mascara together.
ALL_LIDS: tuple[tuple[FaceSide, bool], ...] = ((LEFT, True), (RIGHT, True), (LEFT, False), (RIGHT, False))


def face_points(ctx: FaceContext) -> np.ndarray:
    """The landmarks' xy in float64, as the eye geometry is worked out: made once per face."""
    return ctx.memo("points64", lambda: ctx.landmarks[:, :2].astype(np.float64))


def face_lids(ctx: FaceContext, lids: tuple[tuple[FaceSide, bool], ...]) -> LashLines:
    """``lash_lines`` of these lids of the face, from curves made once per face for every lid."""
    every = ctx.memo("lash lines", lambda: lash_lines(face_points(ctx), ALL_LIDS))
    return every.take([ALL_LIDS.index(lid) for lid in lids])


def face_eye_frame(ctx: FaceContext, side: FaceSide) -> EyeFrame:
    """``eye_frame`` of one side of the face, made once per face."""
    return ctx.memo(f"eye frame {side.eye_upper[0]}", lambda: eye_frame(face_points(ctx), side))


def soft_coverage(
    shape: tuple[int, int], polygons: list[np.ndarray], sigma: float, levels: list[float] | None = None
) -> tuple[Box, np.ndarray] | None:
    """Anti-aliased, slightly blurred coverage of the polygons in the smallest sub-box of the ROI.

    Polygons are filled on a grid _SUPER times finer and averaged down: OpenCV's own anti-aliasing
    draws every edge about a pixel wide, so a tapering line would never get thinner than that.
    They are painted in order, each at its level in [0, 1] (1 by default), so nested bands give a
    graded density. Returns the box and float32 coverage in [0, 1], or None when nothing of the
    polygons falls inside the ROI.
    """
    box = points_box(shape, np.concatenate(polygons), math.ceil(3.0 * sigma) + 2)
    if box is None:
        return None
    rows, cols = box
    h, w = rows.stop - rows.start, cols.stop - cols.start
    buf = np.zeros((h * _SUPER, w * _SUPER), np.uint8)
    # Fine-grid coordinates of a point: pixel j spans fine pixels _SUPER * j .. _SUPER * j + _SUPER - 1.
    origin = np.array([(cols.start - 0.5) * _SUPER + 0.5, (rows.start - 0.5) * _SUPER + 0.5])
    for i, poly in enumerate(polygons):  # one by one: a single call would leave overlaps empty (even-odd rule)
        fine = poly * _SUPER
        fine -= origin
        if not (-_COORD_LIMIT < fine.min() and fine.max() < _COORD_LIMIT):
            np.clip(fine, -_COORD_LIMIT, _COORD_LIMIT, out=fine)
        value = 255 if levels is None else round(255 * levels[i])
        cv2.fillPoly(buf, [np.rint(fine * _ONE).astype(np.int32)], value, cv2.LINE_AA, _SHIFT)
    buf = cv2.resize(buf, (w, h), interpolation=cv2.INTER_AREA)
    if sigma >= 0.3:
        buf = cv2.GaussianBlur(buf, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return box, np.multiply(buf, np.float32(1.0 / 255.0), dtype=np.float32)


def luma_of(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (h, w, 3) float image, (h, w)."""
    return cv2.transform(rgb, _LUMA)


def off_eyeball(ctx: FaceContext, names: str | list[str], box: Box) -> np.ndarray:
    """1 outside the eye opening(s), 0 a pixel inside (the feathered mask is 0.5 on the contour).

    Lines are drawn on the lid edge with soft flanks; this keeps the flank facing the eye off the
    eyeball however small the face. ``names`` are sides ("left", "right"): one, or both for a box round
    both eyes.
    """
    names = [names] if isinstance(names, str) else names
    eye = ctx.mask_in(f"{names[0]}_eye", box)
    for name in names[1:]:
        eye = cv2.max(eye, ctx.mask_in(f"{name}_eye", box))
    keep = cv2.addWeighted(eye, -1.0 / 0.3, eye, 0.0, 0.8 / 0.3)
    return np.clip(keep, 0.0, 1.0, out=keep)


def darken(rgb: np.ndarray, box: Box, alpha: np.ndarray, color: np.ndarray, normal: float) -> None:
    """Multiply the product colour in (with a ``normal`` share laid over it), in place.

    ``top = (1 - normal) * sub * color + normal * color``, blended by alpha.
    """
    # As sub + alpha * (k * sub + b) with per-channel k and b: OpenCV calls with per-channel scalars, which
    # write into the ROI view directly (numpy is slow at broadcasting over three channels).
    sub = rgb[box]
    c0, c1, c2 = (float(c) for c in color)
    change = cv2.multiply(sub, ((1.0 - normal) * c0 - 1.0, (1.0 - normal) * c1 - 1.0, (1.0 - normal) * c2 - 1.0, 0.0))
    if normal > 0.0:
        cv2.add(change, (normal * c0, normal * c1, normal * c2, 0.0), dst=change)
    cv2.multiply(change, cv2.merge([alpha, alpha, alpha]), dst=change)
    cv2.add(sub, change, dst=sub)


def transfer_gains(
    means_rgb: np.ndarray, targets_lab: np.ndarray, *, lightness: float, muted_chroma: float = 0.0
) -> np.ndarray:
    """Per-channel gains that carry each reference colour (m, 3) to each target (k, 3): (m, k, 3).

    Multiplying by gains keeps the region's texture and shading (every pixel keeps its ratio to
    the reference), which is how a pigment over skin behaves. The target's lightness is reached only
    by ``lightness``; with ``muted_chroma`` > 0 a target with less chroma than that lets some of
    the skin's own chroma through (scaled with the darkening), so a grey lid stays warm-dark.
    All regions and targets go through one colour conversion each way.
    """
    mean = np.maximum(means_rgb.astype(np.float32), 1e-3)
    skin = rgb_to_lab(mean[None])[0][:, None, :]  # (m, 1, 3)
    goal = np.repeat(targets_lab.astype(np.float32)[None], len(mean), axis=0)  # (m, k, 3)
    goal[..., 0] = skin[..., 0] + (goal[..., 0] - skin[..., 0]) * lightness
    if muted_chroma > 0.0:
        keep = np.clip(1.0 - np.hypot(goal[..., 1], goal[..., 2]) / muted_chroma, 0.0, 1.0)
        keep *= np.minimum(goal[..., 0] / np.maximum(skin[..., 0], 1.0), 1.0)
        goal[..., 1:] += keep[..., None] * skin[..., 1:]
    return lab_to_rgb(goal) / mean[:, None, :]


# Bare-skin sample points: forehead and cheeks (the median of them shrugs off one in shadow or
# under a glasses frame), and the skin under each eye (behind a lens when there are glasses; the
# lid itself may carry real makeup).
_FACE_SKIN = (151, 108, 337, 50, 280, 205, 425)
_EYE_SKIN = {"left": (340, 346, 347, 348, 349), "right": (111, 117, 118, 119, 120)}
_SKIN_POINTS = np.array(_FACE_SKIN + _EYE_SKIN["left"] + _EYE_SKIN["right"])
_GROUPS = {"face": slice(0, 7), "left": slice(7, 12), "right": slice(12, 17)}
_SOCKET = 0.9  # an eye's surroundings are this much darker than the face in plain light
_PATCH_ROWS = np.repeat([-1, 0, 1], 3)  # a 3 x 3 patch's offsets
_PATCH_COLS = np.tile([-1, 0, 1], 3)


def skin_light(ctx: FaceContext) -> tuple[np.ndarray | None, dict[str, float]]:
    """The face's bare skin colour under its main light, and how lit each eye is relative to it.

    Light is 0.15..1: low behind a tinted lens or in deep shade. Sampled from 3 x 3 patches of the
    original ROI at fixed landmarks (a few dozen pixels); the colour is None when too few of them
    fall inside the ROI.
    """
    found = ctx.memo("skin light", lambda: _measure_skin_light(ctx))
    skin = None if np.isnan(found[0]) else found[:3]
    return skin, {"left": float(found[3]), "right": float(found[4])}


def _measure_skin_light(ctx: FaceContext) -> np.ndarray:
    """Face skin rgb (NaN when unknown), then the light at the left and right eye."""
    out = np.array([np.nan, np.nan, np.nan, 1.0, 1.0])
    h, w = ctx.shape
    if h < 3 or w < 3:
        return out
    xy = np.rint(ctx.landmarks[_SKIN_POINTS, :2])
    at = np.clip(xy, 1.0, (w - 2.0, h - 2.0))
    inside = (at == xy).all(axis=1)
    ys = at[:, 1].astype(np.intp)[:, None] + _PATCH_ROWS
    xs = at[:, 0].astype(np.intp)[:, None] + _PATCH_COLS
    means = ctx.source[ys, xs].mean(axis=1) * (1.0 / 255.0)  # the frame's own pixels: no float ROI needed
    face = means[_GROUPS["face"]][inside[_GROUPS["face"]]]
    if len(face) < 3:
        return out
    out[:3] = np.sort(face, axis=0)[len(face) // 2]  # per-channel median
    face_luma = max(_SOCKET * float(out[:3] @ _LUMA[0]), 1e-3)
    luma = means @ _LUMA[0]
    for i, name in enumerate(("left", "right")):
        near = luma[_GROUPS[name]][inside[_GROUPS[name]]]
        if len(near) >= 3:
            out[3 + i] = min(max(float(np.sort(near)[len(near) // 2]) / face_luma, 0.15), 1.0)
    return out


def weighted_rgb_mean(sub: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """Mean colour of the box weighted by alpha, or None when alpha is (almost) empty."""
    weights = alpha.ravel()
    total = float(weights.sum())
    if total <= 1e-4:
        return None
    return (weights @ sub.reshape(-1, 3)) / np.float32(total)


def apply_gains(rgb: np.ndarray, box: Box, alpha: np.ndarray, gains: np.ndarray, blended: np.ndarray | None) -> None:
    """Scale each pixel by ``1 + alpha * (gain - 1)``, in place.

    With ``blended`` (alpha times a 0..1 blend) the gain runs from ``gains[0]`` to ``gains[1]``.
    """
    if blended is None:
        planes = [cv2.addWeighted(alpha, float(g) - 1.0, alpha, 0.0, 1.0) for g in gains[0]]
    else:
        planes = [
            cv2.addWeighted(alpha, float(g0) - 1.0, blended, float(g1 - g0), 1.0)
            for g0, g1 in zip(gains[0], gains[1], strict=True)
        ]
    sub = rgb[box]  # OpenCV writes into the ROI view directly
    cv2.multiply(sub, cv2.merge(planes), dst=sub)
    cv2.threshold(sub, 1.0, 1.0, cv2.THRESH_TRUNC, dst=sub)
