"""A live MJPEG preview of the output for the web panel.

``send`` runs on the output thread at camera rate, so it only swaps a reference: nothing
is encoded while nobody watches. Viewers (server threads) block on a condition until a
newer frame arrives; the first one to need it encodes it, downscaled, and every other
viewer reuses those bytes, so a frame is encoded at most once however many people watch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from facetory_cam.sinks.base import SinkClosed, check_frame, check_geometry

BOUNDARY = "frame"


def mjpeg_part(jpeg: bytes, boundary: str = BOUNDARY) -> bytes:
    """One part of a ``multipart/x-mixed-replace`` stream holding one JPEG picture."""
    head = f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
    return head + jpeg + b"\r\n"


def preview_size(size: tuple[int, int], max_width: int) -> tuple[int, int]:
    """(width, height) of the preview: ``size`` scaled down to ``max_width``, aspect kept, never enlarged."""
    width, height = size
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


class PreviewSink:
    """Keeps the latest output frame and serves it as JPEG snapshots and an MJPEG stream.

    The image handed to ``send`` is kept by reference (the pipeline makes a new array per
    frame); pass ``copy=True`` if the caller reuses its buffer. ``encodes`` counts JPEG
    encodes, ``frames`` frames received, ``viewers`` open ``mjpeg_chunks`` streams.
    """

    boundary = BOUNDARY
    content_type = f"multipart/x-mixed-replace; boundary={BOUNDARY}"

    def __init__(
        self,
        size: tuple[int, int],
        fps: float = 30.0,
        *,
        max_width: int = 640,
        quality: int = 80,
        copy: bool = False,
        name: str = "preview",
    ) -> None:
        self.size, self.fps = check_geometry(size, fps)
        if not 16 <= max_width <= 16384:
            raise ValueError(f"max_width must be from 16 to 16384, got {max_width}")
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be from 1 to 100, got {quality}")
        self.name = name
        self.max_width = max_width
        self.quality = quality
        self.copy = copy
        self.preview_size = preview_size(self.size, max_width)
        self.frames = 0
        self.encodes = 0
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()  # one encoder at a time; the others then reuse its bytes
        self._image: np.ndarray | None = None
        self._version = 0  # rises by one per frame received
        self._jpeg: bytes | None = None
        self._jpeg_version = 0
        self._viewers = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def viewers(self) -> int:
        with self._cond:
            return self._viewers

    @property
    def version(self) -> int:
        """How many frames have been received; a viewer passes the last one it showed to ``next_jpeg``."""
        with self._cond:
            return self._version

    def send(self, image: np.ndarray, *, seq: int, t_capture: float) -> None:
        """Make ``image`` the latest frame and wake waiting viewers; never encodes."""
        check_frame(image, self.size)
        kept = image.copy() if self.copy else image
        with self._cond:
            if self._closed:
                raise SinkClosed(f"{self.name} is closed")
            self._image = kept
            self._version += 1
            self.frames += 1
            self._cond.notify_all()

    def latest_jpeg(self) -> bytes | None:
        """The latest frame as JPEG (for a snapshot), or ``None`` before the first frame."""
        got = self._encode_latest()
        return None if got is None else got[1]

    def next_jpeg(self, after: int = 0, *, timeout: float | None = None) -> tuple[int, bytes] | None:
        """Block until a frame newer than version ``after`` exists; return (its version, JPEG).

        ``None`` when ``timeout`` seconds pass first or the sink is closed. A viewer that falls
        behind skips straight to the newest frame rather than queueing old ones.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._version <= after and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._closed:
                return None
        return self._encode_latest()

    def mjpeg_chunks(
        self,
        *,
        max_fps: float | None = None,
        stop_event: threading.Event | None = None,
        poll_s: float = 0.25,
    ) -> Iterator[bytes]:
        """Yield ``multipart/x-mixed-replace`` parts, one per new frame, at most ``max_fps`` a second.

        Ends when ``stop_event`` is set (noticed within ``poll_s``) or the sink is closed;
        serve it with the ``content_type`` header.
        """
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be above 0, got {max_fps}")
        if not poll_s > 0:
            raise ValueError(f"poll_s must be above 0, got {poll_s}")
        min_gap = 0.0 if max_fps is None else 1.0 / max_fps

        def stopped() -> bool:
            return stop_event is not None and stop_event.is_set()

        with self._watching():
            last = 0
            while not stopped():
                got = self.next_jpeg(last, timeout=poll_s)
                if got is None:
                    if self._closed:
                        return
                    continue
                shown_at = time.monotonic()
                last, jpeg = got
                yield mjpeg_part(jpeg, self.boundary)
                wait = min_gap - (time.monotonic() - shown_at)
                if wait > 0:
                    if stop_event is not None:
                        stop_event.wait(wait)
                    else:
                        time.sleep(wait)

    def close(self) -> None:
        """Drop the frame and end every viewer's stream (idempotent)."""
        with self._cond:
            self._closed = True
            self._image = None
            self._cond.notify_all()

    @contextmanager
    def _watching(self) -> Iterator[None]:
        with self._cond:
            self._viewers += 1
        try:
            yield
        finally:
            with self._cond:
                self._viewers -= 1

    def _encode_latest(self) -> tuple[int, bytes] | None:
        """(version, JPEG) of the newest frame, encoding it only if nobody has yet."""
        with self._encode_lock:
            with self._cond:
                if self._jpeg is not None and self._jpeg_version == self._version:
                    return self._jpeg_version, self._jpeg
                image, version = self._image, self._version
            if image is None:
                return None
            jpeg = self._encode(image)
            with self._cond:
                self._jpeg, self._jpeg_version = jpeg, version
                self.encodes += 1
            return version, jpeg

    def _encode(self, image: np.ndarray) -> bytes:
        import cv2

        width, height = self.preview_size
        if (width, height) != self.size:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode the preview frame as JPEG")
        return buf.tobytes()

    def __enter__(self) -> PreviewSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
