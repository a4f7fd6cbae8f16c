"""Person mask from MediaPipe's selfie segmentation models."""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.interfaces import InferenceBackend

GENERAL = "selfie_segmentation"  # 256 x 256
LANDSCAPE = "selfie_segmentation_landscape"  # 256 x 144, for 16:9 frames


class PersonSegmenter:
    """Soft person masks in [0, 1] at the input's resolution; many frames per call."""

    def __init__(self, backend: InferenceBackend, *, width: int, height: int) -> None:
        self.backend = backend
        self.size = (width, height)

    def run(self, images: list[np.ndarray], *, native: bool = False) -> list[np.ndarray]:
        """One mask per image, at the image's size; ``native`` keeps the model's low resolution.

        Consumers that smooth and upsample the mask themselves (the background compositor)
        take the native mask and save a full-frame resize.
        """
        if not images:
            return []
        w, h = self.size
        batch = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]).astype(np.float32)
        batch *= 1.0 / 255.0
        (masks,) = self.backend.run(batch)
        if native:
            return [masks[i, :, :, 0].clip(0.0, 1.0) for i in range(len(images))]
        return [
            cv2.resize(masks[i, :, :, 0], (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR).clip(0.0, 1.0)
            for i, im in enumerate(images)
        ]
