"""What a makeup layer sees of one face: its ROI pixels, landmarks and region masks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facetory_cam.vision.masks import RegionMasks, face_region_masks


@dataclass
class FaceContext:
    """One face's region of interest while a look is rendered onto it.

    ``rgb`` is the working copy of the ROI (float32 sRGB in [0, 1]); layers change
    it in place, in order. ``original`` is the untouched ROI. Landmarks are in ROI
    coordinates. Masks are built once per frame, each when a layer first asks for it,
    and shared by every layer: they are read-only.
    """

    box: tuple[int, int, int, int]
    rgb: np.ndarray
    original: np.ndarray
    landmarks: np.ndarray
    face_size: float
    masks: RegionMasks
    feather: float
    resources: dict[str, Any] = field(default_factory=dict)  # owned by the renderer, lives across frames

    def mask(self, name: str) -> np.ndarray:
        return self.masks.masks[name]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def build_context(
    frame: np.ndarray,
    landmarks: np.ndarray,
    *,
    feather: float | None = None,
    resources: dict[str, Any] | None = None,
) -> FaceContext | None:
    """The context of one face in an RGB uint8 frame, or None when the face is off-frame.

    Feathering scales with the face (about 1% of its size, at least 1 px) so a look
    looks the same at any resolution unless a fixed feather is given.
    """
    xs, ys = landmarks[:468, 0], landmarks[:468, 1]
    face_size = float(max(xs.max() - xs.min(), ys.max() - ys.min()))
    sigma = max(1.0, 0.012 * face_size) if feather is None else feather
    masks = face_region_masks(landmarks, frame.shape[:2], feather=sigma)
    x0, y0, x1, y1 = masks.box
    if x1 <= x0 or y1 <= y0:
        return None
    roi = np.multiply(frame[y0:y1, x0:x1], np.float32(1.0 / 255.0), dtype=np.float32)  # one pass
    local = landmarks.astype(np.float32)  # a copy
    local[:, 0] -= x0
    local[:, 1] -= y0
    return FaceContext(
        masks.box, roi, roi.copy(), local, face_size, masks, sigma, resources if resources is not None else {}
    )
