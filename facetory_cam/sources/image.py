"""A still photo played as a camera: the same picture at a steady rate.

Useful to try a look or the whole pipeline without a webcam. The file is read once by
``open`` (Pillow, EXIF orientation applied, so phone photos are upright) and each
``read`` hands out a fresh copy, so a consumer that draws on its frame cannot change
the next one. Pacing sleeps until each frame is due; a late consumer gets one frame at
once and then the steady rate again, never a burst.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from facetory_cam.errors import ImageError
from facetory_cam.imageio import load_image
from facetory_cam.interfaces import Frame, SourceLost
from facetory_cam.sources.pacing import next_due, sleep_until


class ImageSource:
    """Repeats the image at ``path`` at ``fps``; ``size`` (width, height) rescales it when given.

    ``size`` is the delivered size (asked for before ``open``, it reads the file, or is
    ``None`` when that fails). ``open`` raises ``ValueError`` for a file that is missing
    or not a readable image.
    """

    def __init__(
        self, path: str | Path, *, fps: float = 30.0, size: tuple[int, int] | None = None, name: str | None = None
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.name = name if name is not None else str(path)
        self.fps = float(fps)
        self._requested_size = size
        self._size: tuple[int, int] | None = size
        self._image: np.ndarray | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next_due = 0.0
        self._seq = 0

    @property
    def size(self) -> tuple[int, int] | None:
        if self._size is None:
            try:
                self._load()
            except ValueError:
                return None
        return self._size

    def _load(self) -> np.ndarray:
        try:
            image = load_image(self.path)
        except ImageError as exc:
            raise ValueError(str(exc)) from None
        if self._requested_size is not None:
            image = cv2.resize(image, self._requested_size, interpolation=cv2.INTER_AREA)
        self._size = (image.shape[1], image.shape[0])
        return image

    def open(self) -> None:
        """Load the picture; the first frame is due at once."""
        image = self._load()
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            self._image = image
            self._next_due = time.monotonic()

    def close(self) -> None:
        """Idempotent and callable from any thread; a sleeping ``read`` raises ``SourceLost``."""
        with self._lock:
            self._image = None
            self._stop.set()

    def read(self, *, timeout: float) -> Frame | None:
        """A copy of the picture when the next frame is due, or ``None`` if that is past ``timeout``."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            image, stop, due = self._image, self._stop, self._next_due
        if image is None:
            raise SourceLost(f"{self.name}: not open")
        if not sleep_until(due, deadline, stop, self.name):
            return None
        self._next_due = next_due(due, 1.0 / self.fps, time.monotonic())
        seq = self._seq
        self._seq += 1
        return Frame(image=image.copy(), seq=seq, t_capture=time.monotonic(), source=self.name)
