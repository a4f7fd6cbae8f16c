"""Overlays that let a person judge detection, landmarks and region masks by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facetory_cam.vision.masks import draw_regions, face_region_masks
from facetory_cam.vision.tracker import Face


def draw_faces(
    image: np.ndarray, faces: Sequence[Face], *, feather: float = 2.0, path: Path | None = None
) -> np.ndarray:
    """RGB copy of ``image`` with region masks, landmarks (irises in red), boxes and ids."""
    out = image.copy()
    for face in faces:
        out = draw_regions(out, face_region_masks(face.landmarks, out.shape[:2], feather=feather))
    scale = max(1, round(max(image.shape[:2]) / 800))
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), scale, cv2.LINE_AA)
        cv2.putText(
            out,
            f"#{face.track_id} {face.score:.2f}",
            (x0, max(12, y0 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * scale,
            (0, 255, 0),
            scale,
            cv2.LINE_AA,
        )
        for i, (x, y) in enumerate(face.landmarks[:, :2]):
            color = (255, 40, 40) if i >= 468 else (255, 255, 255)
            cv2.circle(out, (round(x), round(y)), scale, color, -1, cv2.LINE_AA)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
    return out
