"""Rotated regions of interest and the crops that feed the landmark models.

Conventions follow MediaPipe: a ROI is a rotated rectangle in image pixels whose
rotation is positive clockwise on screen (image y points down); a crop of size S
maps the ROI's corners to the crop's corners, so crop coordinate X corresponds
to X/S across the ROI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in image pixels."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float  # radians

    def crop_to_image(self, size: int) -> np.ndarray:
        """2x3 affine taking crop pixel coordinates (0..size) to image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        ax = np.array([c, s]) * self.width / size
        ay = np.array([-s, c]) * self.height / size
        origin = np.array([self.cx, self.cy]) - 0.5 * size * (ax + ay)
        return np.array([[ax[0], ay[0], origin[0]], [ax[1], ay[1], origin[1]]], dtype=np.float64)

    def corners(self) -> np.ndarray:
        m = self.crop_to_image(1)
        pts = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=np.float64)
        return pts @ m.T

    def bounds(self) -> tuple[float, float, float, float]:
        pts = self.corners()
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_from(p0: np.ndarray, p1: np.ndarray, target: float = 0.0) -> float:
    """MediaPipe's rotation of the vector p0 -> p1 (pixels) relative to a target angle."""
    return normalize_radians(target - math.atan2(-(float(p1[1]) - float(p0[1])), float(p1[0]) - float(p0[0])))


def square_roi(cx: float, cy: float, w: float, h: float, rotation: float, scale: float) -> Roi:
    """RectTransformation with ``square_long``: a square of side scale * max(w, h)."""
    side = max(w, h) * scale
    return Roi(cx, cy, side, side, rotation)


def roi_from_points(points: np.ndarray, start: int, end: int, scale: float) -> Roi:
    """ROI from a point set: axis-aligned bounds, rotation from points[start] -> points[end]."""
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    rot = rotation_from(points[start], points[end])
    return square_roi((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rot, scale)


def crop(
    image: np.ndarray, roi: Roi, size: int, *, flip: bool = False, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Sample the ROI into a size x size crop (bilinear), optionally mirrored left-right."""
    m = roi.crop_to_image(size)
    if flip:  # crop X -> size - X
        m = m @ np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)


def project(points: np.ndarray, roi: Roi, size: int, *, flip: bool = False) -> np.ndarray:
    """Map (N, 3) crop-pixel points back to image pixels; z is scaled like x."""
    pts = np.asarray(points, dtype=np.float64).copy()
    if flip:
        pts[:, 0] = size - pts[:, 0]
    m = roi.crop_to_image(size)
    out = np.empty_like(pts)
    out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = pts[:, 2] * roi.width / size
    return out


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
