"""Lip liner: a soft, anti-aliased line of colour along the outer edge of the lips.

The outer lip contour is smoothed into a curve (Catmull-Rom through the mesh points, one
small matrix product, so the line has no corners at the landmarks), filled with sub-pixel anti-aliasing
and blurred; the line is where that soft fill is neither 0 nor 1, which centres it on
the contour with a width set by the blur. That costs one fill and one small blur in
the mouth's box, and stays smooth at any face size. Colour goes on like lipstick, in
Lab: chroma from the product, lightness detail from the lips and skin below. The
mouth opening is cut out, so a liner never lands on teeth.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facetory_cam.looks.color import lab_to_rgb, rgb_to_lab
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import LipLiner
from facetory_cam.vision.regions import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

_OUTLINE = np.asarray(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1], np.intp)  # closed, clockwise on screen
_SUBDIV = 6  # curve points per contour segment
_SHIFT = 4  # fractional bits of vertex coordinates given to OpenCV's rasteriser
_FWHM = 1.5  # the line's full width at half height, in blur sigmas (of (4m(1 - m))^2 for a blurred edge)
_INWARD = 0.25  # the line sits this share of its width inside the contour, as a liner is drawn
_LIGHTNESS = 0.5  # how far the line's mean lightness moves to the product's
_BRIDGE = 168  # mesh point between the eyes
_EYE_CORNERS = (263, 33)  # outer corners of the left and right eye
_PROFILE, _TURNED = 0.2, 0.32  # the line fades out between these shares of the eye-to-bridge spans
_VISIBLE = 1.0 / 512.0  # opacity below which a pixel is left alone (it would not change an 8-bit value)


def _catmull_rom_basis(n_points: int, n: int) -> np.ndarray:
    """The (n_points * n, n_points) matrix taking closed-polygon vertices to a uniform Catmull-Rom curve."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    # Weights of p[i-1], p[i], p[i+1], p[i+2] at parameter t within segment i.
    w = 0.5 * np.stack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], axis=1)
    basis = np.zeros((n_points * n, n_points))
    for i in range(n_points):
        for j, offset in enumerate((-1, 0, 1, 2)):
            basis[i * n : (i + 1) * n, (i + offset) % n_points] += w[:, j]
    return basis


_CURVE = _catmull_rom_basis(len(_OUTLINE), _SUBDIV)


def _frontal(ctx: FaceContext) -> float:
    """1 for a frontal or moderately turned face, fading to 0 well before profile.

    From the smaller of the two outer-eye-corner-to-bridge distances, as a share of both (0.5 frontal).
    The mesh's lip outline is least reliable in profile, and a line is the one thing that shows it.
    """
    (bx, by), (lx, ly), (rx, ry) = ctx.landmarks[[_BRIDGE, *_EYE_CORNERS], :2].tolist()
    left, right = math.hypot(lx - bx, ly - by), math.hypot(rx - bx, ry - by)
    t = min(max((min(left, right) / max(left + right, 1e-6) - _PROFILE) / (_TURNED - _PROFILE), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def render(ctx: FaceContext, s: LipLiner, strength: float) -> None:
    amount = float(s.opacity) * float(strength)
    if amount > 0.0:
        amount *= _frontal(ctx)
    width = float(s.thickness) * ctx.face_size
    if amount <= 0.0 or width <= 0.0:
        return
    sigma = max(0.35, width / _FWHM)
    curve = _CURVE @ ctx.landmarks[_OUTLINE, :2].astype(np.float64)
    # Shrink the contour towards the mouth's centre so the line sits slightly inside the lips.
    centre = curve.mean(axis=0)
    radius = np.maximum(np.hypot(*(curve - centre).T), 1e-6)[:, None]
    curve = centre + (curve - centre) * np.maximum(1.0 - _INWARD * width / radius, 0.0)

    h, w = ctx.shape
    reach = math.ceil(3.0 * sigma) + 2
    lo, hi = curve.min(axis=0), curve.max(axis=0)
    x0, y0 = max(math.floor(lo[0]) - reach, 0), max(math.floor(lo[1]) - reach, 0)
    x1, y1 = min(math.ceil(hi[0]) + reach + 1, w), min(math.ceil(hi[1]) + reach + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    fill = np.zeros((y1 - y0, x1 - x0), np.uint8)  # OpenCV anti-aliases only 8-bit fills
    vertices = np.rint((curve - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(fill, [vertices], 255, cv2.LINE_AA, _SHIFT)
    soft = cv2.GaussianBlur(np.multiply(fill, np.float32(1.0 / 255.0), dtype=np.float32), (0, 0), sigma)
    line = np.subtract(np.float32(1.0), soft)
    line *= soft
    line *= line  # (4 s (1 - s))^2: a firmer profile, as a pencil line has a body, not just a haze
    box = (slice(y0, y1), slice(x0, x1))
    alpha = np.subtract(np.float32(1.0), ctx.mask_in("mouth_inner", box))
    alpha *= line
    alpha *= np.float32(16.0 * amount)
    rows, cols = np.nonzero(alpha > _VISIBLE)  # the ring only: most of the box is left alone
    if rows.size == 0:
        return
    a = alpha[rows, cols]
    pixels = _Pixels(ctx.rgb, rows + y0, cols + x0)
    lab = rgb_to_lab(pixels.get()[None])[0].T.copy()  # planar (3, n): long rows make the maths cheap
    target = ctx.color_lab(s.color.rgb)
    mean_l = float(lab[0] @ a) / max(float(a.sum()), 1e-6)
    lab[0] += (float(target[0]) - mean_l) * _LIGHTNESS * a
    lab[1] += (float(target[1]) - lab[1]) * a
    lab[2] += (float(target[2]) - lab[2]) * a
    pixels.put(lab_to_rgb(lab.T[None])[0])


class _Pixels:
    """Scattered pixels of an (h, w, 3) image, read and written by flat index where the layout allows it."""

    def __init__(self, image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        self.image = image
        self.flat = image.reshape(-1, 3) if image.flags.c_contiguous else None
        self.index = rows * image.shape[1] + cols if self.flat is not None else (rows, cols)

    def get(self) -> np.ndarray:
        if self.flat is not None:
            return np.take(self.flat, self.index, axis=0)
        return self.image[self.index]

    def put(self, values: np.ndarray) -> None:
        if self.flat is not None:
            self.flat[self.index] = values
        else:
            self.image[self.index] = values
