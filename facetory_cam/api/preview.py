"""Before/after previews for the panel, fed by the processor's frame observer.

The observer runs on the processing thread for every frame, so it only swaps two references
under a lock: no copy, no resize, no encode. A viewer (a server thread) waits for a newer frame,
then composes the view it asked for (``before``: the camera frame; ``after``: the made-up frame;
``split``: left half before, right half after), shrinks and encodes it; the result is cached per
view, so a frame is encoded once per view however many people watch. The observer never
raises: a preview problem must never cost the virtual camera a frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from facetory_cam.daemon.output import letterbox
from facetory_cam.daemon.ratelimit import RateLimitedLog
from facetory_cam.sinks.preview import BOUNDARY, PreviewSink, mjpeg_part, preview_size

log = logging.getLogger(__name__)

__all__ = ["MJPEG_CONTENT_TYPE", "LivePreview", "View"]

View = Literal["after", "before", "split"]
MJPEG_CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


@dataclass
class _Latest:
    before: np.ndarray
    after: np.ndarray
    version: int


class LivePreview:
    """Latest (before, after) pair per source; JPEG views on demand. ``after`` may come from output sinks."""

    def __init__(
        self, *, max_width: int = 640, quality: int = 80, outputs: Mapping[str, PreviewSink] | None = None
    ) -> None:
        self.max_width = max_width
        self.quality = quality
        self.outputs = dict(outputs or {})  # source key -> the PreviewSink on that output (placeholders too)
        self._cond = threading.Condition()
        self._latest: dict[str, _Latest] = {}
        self._cache: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._encode_lock = threading.Lock()
        self._closed = False
        self._errors = RateLimitedLog(log, every=10.0)
        self.observed = 0

    # -- feeding -------------------------------------------------------------------------
    def attach(self, processor: Any) -> None:
        """Install :meth:`observe` as ``processor.on_frame``, still calling whatever observer was there."""
        previous: Callable[..., None] | None = processor.on_frame

        def on_frame(lane: Any, frame: Any, image: np.ndarray) -> None:
            if previous is not None:
                previous(lane, frame, image)
            self.observe(str(lane.key), frame.image, image)

        processor.on_frame = on_frame

    def observe(self, key: str, before: np.ndarray, after: np.ndarray) -> None:
        """Keep references to the newest pair of ``key``; never raises."""
        try:
            with self._cond:
                old = self._latest.get(key)
                self._latest[key] = _Latest(before, after, 1 if old is None else old.version + 1)
                self.observed += 1
                self._cond.notify_all()
        except Exception as exc:  # pragma: no cover - defensive: the camera must keep running
            self._errors.error("preview observer failed: %s", exc)

    def close(self) -> None:
        """End every stream (idempotent)."""
        with self._cond:
            self._closed = True
            self._latest.clear()
            self._cond.notify_all()

    # -- reading -------------------------------------------------------------------------
    def sources(self) -> list[str]:
        with self._cond:
            return sorted(set(self._latest) | set(self.outputs))

    def latest_frame(self, key: str = "0") -> np.ndarray | None:
        """The newest made-up frame of ``key`` as the camera shows it (RGB, the output's size), or None."""
        with self._cond:
            got = self._latest.get(key)
        if got is None:
            return None
        sink = self.outputs.get(key)
        return got.after if sink is None else letterbox(got.after, *sink.size)

    def _compose(self, got: _Latest, view: View) -> np.ndarray:
        if view == "before":
            image = got.before
        elif view == "after":
            image = got.after
        else:
            before, after = got.before, got.after
            if before.shape != after.shape:
                after = cv2.resize(after, (before.shape[1], before.shape[0]), interpolation=cv2.INTER_AREA)
            half = before.shape[1] // 2
            image = np.concatenate([before[:, :half], after[:, half:]], axis=1)
            image[:, max(half - 1, 0) : half + 1] = 255  # a thin line where before meets after
        h, w = image.shape[:2]
        tw, th = preview_size((w, h), self.max_width)
        if (tw, th) != (w, h):
            image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
        return image

    def _encode(self, key: str, view: View, got: _Latest) -> bytes:
        with self._encode_lock:
            cached = self._cache.get((key, view))
            if cached is not None and cached[0] == got.version:
                return cached[1]
            image = self._compose(got, view)
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
            )
            if not ok:
                raise RuntimeError("the preview frame could not be encoded")
            jpeg = buf.tobytes()
            self._cache[(key, view)] = (got.version, jpeg)
            return jpeg

    def next_jpeg(self, key: str, view: View, after: int = 0, *, timeout: float = 0.25) -> tuple[int, bytes] | None:
        """(version, JPEG) of a frame newer than ``after``; None on timeout or once closed."""
        if view == "after" and key in self.outputs:
            return self.outputs[key].next_jpeg(after, timeout=timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                got = self._latest.get(key)
                if got is not None and got.version > after:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            else:
                return None
        return got.version, self._encode(key, view, got)

    @property
    def closed(self) -> bool:
        return self._closed

    def mjpeg(
        self,
        key: str,
        view: View,
        *,
        max_fps: float = 15.0,
        frames: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[bytes]:
        """``multipart/x-mixed-replace`` parts of new frames, at most ``max_fps`` a second, ``frames`` in all."""
        gap = 1.0 / max_fps
        last = 0
        sent = 0
        while not self._closed and not (stop is not None and stop.is_set()):
            if frames is not None and sent >= frames:
                return
            if view == "after" and key in self.outputs and self.outputs[key].closed:
                return
            got = self.next_jpeg(key, view, last, timeout=0.25)
            if got is None:
                continue
            shown = time.monotonic()
            last, jpeg = got
            sent += 1
            yield mjpeg_part(jpeg)
            wait = gap - (time.monotonic() - shown)
            if wait > 0:
                time.sleep(wait)
