"""A sink that shows nothing but remembers what it was sent: for tests, benchmarks and dry runs."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facetory_cam.sinks.base import SinkClosed, check_frame, check_geometry


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One accepted frame: its sequence number, capture time and when it reached the sink (same clock)."""

    seq: int
    t_capture: float
    t_sent: float

    @property
    def latency(self) -> float:
        """Seconds from capture to output."""
        return self.t_sent - self.t_capture


class NullSink:
    """Accepts frames of one fixed size and keeps counters plus the last ``history`` records.

    ``frames`` counts accepted frames, ``rejected`` frames refused for their shape or dtype.
    With ``keep_images`` the last image (a copy) is kept in ``last_image``. ``clock`` must be
    the clock the capture times come from (``time.monotonic``) for latencies to mean anything.
    """

    def __init__(
        self,
        size: tuple[int, int],
        fps: float = 30.0,
        *,
        history: int = 1000,
        keep_images: bool = False,
        clock: Callable[[], float] = time.monotonic,
        name: str = "null",
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self.size, self.fps = check_geometry(size, fps)
        self.name = name
        self.keep_images = keep_images
        self.frames = 0
        self.rejected = 0
        self.last_image: np.ndarray | None = None
        self._records: deque[SendRecord] = deque(maxlen=history)
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, image: np.ndarray, *, seq: int, t_capture: float) -> None:
        """Record the frame; ``ValueError`` for another shape, ``SinkClosed`` after ``close``."""
        t_sent = self._clock()
        try:
            check_frame(image, self.size)
        except ValueError:
            with self._lock:
                self.rejected += 1
            raise
        with self._lock:
            if self._closed:
                raise SinkClosed(f"{self.name} is closed")
            self.frames += 1
            self._records.append(SendRecord(seq, t_capture, t_sent))
            if self.keep_images:
                self.last_image = image.copy()

    def records(self) -> list[SendRecord]:
        """The most recent records, oldest first (a copy, safe to read while frames arrive)."""
        with self._lock:
            return list(self._records)

    def seqs(self) -> list[int]:
        """Sequence numbers of the most recent frames, oldest first."""
        return [r.seq for r in self.records()]

    def latencies(self) -> np.ndarray:
        """Capture-to-output seconds of the most recent frames, oldest first."""
        return np.array([r.latency for r in self.records()], dtype=np.float64)

    def close(self) -> None:
        """Refuse further frames (idempotent); the counters stay readable."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> NullSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
