"""One face of a photo as every estimator sees it: a crop at a fixed analysis size, its masks and Lab.

The estimators' statistics (lip texture, skin spread, how dark a lash line is) are calibrated
at one face size, so each face is cropped and brought to ``face_px`` across (a bigger face is
shrunk by area averaging; a smaller one is used as it is). The region masks are built exactly as
the renderer builds them (same landmarks, same feather), so "the lips" mean the same pixels
when a look is read from a photo as when it is painted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import cv2
import numpy as np

from facetory_cam.vision.masks import RegionMasks, face_region_masks

__all__ = ["FaceView", "face_size_of", "make_view"]

T = TypeVar("T")

_MARGIN = 0.3  # crop margin round the landmark box, fraction of the face size
_FEATHER = 0.012  # the renderer's mask feather, fraction of the face size (see looks/context.py)


def face_size_of(landmarks: np.ndarray) -> float:
    """The larger side of the mesh points' box, as the renderer measures a face."""
    pts = np.asarray(landmarks)[:468, :2]
    return float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))


@dataclass
class FaceView:
    """A face crop (RGB uint8) with its landmarks in crop pixels and lazily built masks and Lab."""

    rgb: np.ndarray  # (h, w, 3) uint8
    landmarks: np.ndarray  # (478, 3) float32 in crop pixels
    face_size: float  # px in the crop
    scale: float  # crop pixels per working-image pixel
    origin: tuple[int, int]  # crop's top-left corner in the working image
    _masks: RegionMasks | None = field(default=None, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, once per view: what one estimator measures, the next reuses."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def feather(self) -> float:
        return max(1.0, _FEATHER * self.face_size)

    @property
    def masks(self) -> RegionMasks:
        if self._masks is None:
            self._masks = face_region_masks(self.landmarks, self.rgb.shape[:2], feather=self.feather)
        return self._masks

    @property
    def box(self) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 of the masks' ROI inside the crop."""
        return self.masks.box

    def mask(self, name: str) -> np.ndarray:
        """A region mask over the ROI (read-only)."""
        return self.masks.masks[name]

    @cached_property
    def roi_rgb(self) -> np.ndarray:
        """The ROI as float32 sRGB in [0, 1]."""
        x0, y0, x1, y1 = self.box
        return self.rgb[y0:y1, x0:x1].astype(np.float32) * np.float32(1.0 / 255.0)

    @cached_property
    def lab(self) -> np.ndarray:
        """The ROI in CIELAB (L 0..100), float32."""
        return cv2.cvtColor(self.roi_rgb, cv2.COLOR_RGB2Lab)

    @property
    def roi_landmarks(self) -> np.ndarray:
        """Landmark xy in ROI pixels."""
        x0, y0 = self.box[:2]
        return self.landmarks[:, :2] - np.array([x0, y0], np.float32)


def make_view(image: np.ndarray, landmarks: np.ndarray, face_px: int) -> FaceView:
    """The face of ``image`` (RGB uint8) with these landmarks, cropped and brought to ``face_px`` across."""
    lm = np.asarray(landmarks, np.float32)
    size = face_size_of(lm)
    pts = lm[:468, :2]
    margin = _MARGIN * size
    h, w = image.shape[:2]
    x0 = max(0, math.floor(float(pts[:, 0].min()) - margin))
    y0 = max(0, math.floor(float(pts[:, 1].min()) - margin))
    x1 = min(w, math.ceil(float(pts[:, 0].max()) + margin) + 1)
    y1 = min(h, math.ceil(float(pts[:, 1].max()) + margin) + 1)
    crop = image[y0:y1, x0:x1]
    k = min(1.0, face_px / max(size, 1.0))
    local = lm.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    if k < 1.0:
        out_size = (max(1, round(crop.shape[1] * k)), max(1, round(crop.shape[0] * k)))
        crop = cv2.resize(crop, out_size, interpolation=cv2.INTER_AREA)
        sx, sy = out_size[0] / (x1 - x0), out_size[1] / (y1 - y0)
        # pixel centres: x_new + 0.5 = (x_old + 0.5) * s
        local[:, 0] = (local[:, 0] + 0.5) * sx - 0.5
        local[:, 1] = (local[:, 1] + 0.5) * sy - 0.5
        local[:, 2] *= 0.5 * (sx + sy)
        k = 0.5 * (sx + sy)
    return FaceView(np.ascontiguousarray(crop), local, face_size_of(local), k, (x0, y0))
