"""The output stage: one thread per source feeds its sinks at a fixed rate.

The clock, not the processing, decides when a frame goes out: when processing is
late the last good frame is sent again; when the camera is gone a placeholder is
sent instead. Every sink gets frames of the size it was opened with (anything
else is letterboxed), and sequence numbers never go backwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from facetory_cam.daemon.ratelimit import RateLimitedLog
from facetory_cam.daemon.slot import Slot
from facetory_cam.daemon.stats import PipelineStats
from facetory_cam.interfaces import Frame, Sink

log = logging.getLogger(__name__)

PLACEHOLDER_TEXT = ("Camera unavailable", "reconnecting...")


def placeholder(width: int, height: int) -> np.ndarray:
    """A calm dark frame saying the camera is gone, so a call shows why the picture stopped."""
    img = np.full((height, width, 3), 32, np.uint8)
    scale = max(height / 720.0, 0.3)
    for k, line in enumerate(PLACEHOLDER_TEXT):
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 1.4 * scale, max(1, round(2 * scale)))
        y = height // 2 + round((k - 0.3) * 60 * scale)
        cv2.putText(
            img,
            line,
            ((width - tw) // 2, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.4 * scale,
            (200, 200, 200),
            max(1, round(2 * scale)),
            cv2.LINE_AA,
        )
    return img


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` with black bars; the same array when it already fits."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - nw) // 2, (height - nh) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return out


class OutputWorker:
    def __init__(
        self,
        sinks: Sequence[Sink],
        slot: Slot[Frame],
        stats: PipelineStats,
        *,
        key: str,
        fps: float,
        paced: bool = True,
        last_frame_at: Callable[[], float | None] = lambda: None,
        placeholder_after: float = 0.5,
    ) -> None:
        if not sinks:
            raise ValueError("an output needs at least one sink")
        self.sinks = list(sinks)
        self.slot = slot
        self.stats = stats
        self.key = key
        self.fps = fps
        self.paced = paced
        self._last_frame_at = last_frame_at  # when the capture last got a frame
        self.placeholder_after = placeholder_after
        self.phase_pull = 0.03  # share of a period the clock may move earlier per frame (about 1 ms at 30 fps)
        self._stop = threading.Event()
        self._errors = RateLimitedLog(log, every=5.0)
        self._placeholders: dict[tuple[int, int], np.ndarray] = {}
        self.last_seq = -1
        self.showing_placeholder = False
        self._thread = threading.Thread(target=self._run, name=f"output-{key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _placeholder(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._placeholders:
            self._placeholders[size] = placeholder(*size)
        return self._placeholders[size]

    def _send(self, image: np.ndarray | None, seq: int, t_capture: float, *, fresh: bool) -> None:
        now = time.monotonic()
        for sink in self.sinks:
            frame = self._placeholder(sink.size) if image is None else letterbox(image, *sink.size)
            try:
                sink.send(frame, seq=seq, t_capture=t_capture)
            except Exception as exc:  # a sink hiccup must not stop the others or the clock
                self.stats.count("sink_errors")
                self._errors.error("sink %s failed: %s", sink.name, exc)
        latency = time.monotonic() - t_capture if fresh and image is not None else None
        self.stats.frame_out(self.key, now, fresh=fresh, latency=latency, placeholder=image is None)

    def _run(self) -> None:
        try:
            if self.paced:
                self._run_paced()
            else:
                self._run_each()
        finally:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:
                    log.error("closing sink %s failed: %s", sink.name, exc)

    def _run_each(self) -> None:
        """Offline: every processed frame goes out once, as soon as it is ready."""
        while not self._stop.is_set():
            item = self.slot.take(timeout=0.1)
            if item is None:
                if self.slot.closed and not self.slot.peek_ready():
                    return
                continue
            if item.seq <= self.last_seq:
                continue
            self.last_seq = item.seq
            self._send(item.image, item.seq, item.t_capture, fresh=True)

    def _run_paced(self) -> None:
        """Fixed rate, locked to the frames: a fresh frame goes out as soon as it is ready.

        ``clock`` is the nominal time of the last output slot. A fresh frame may go out
        up to ``slack`` before its slot (then the clock moves on by one period, so the
        rate never exceeds ``fps``) or any time after it (then the clock re-phases to
        the frame, so it never waits for a tick). When no fresh frame comes, the last
        one (or the placeholder) is repeated ``grace`` after the slot. An early frame also
        pulls the clock back by at most ``phase_pull`` of a period, so the slots drift onto
        the frames' own phase. The rate is thus ``fps`` (at most 3 % more with a camera
        faster than ``fps``) while waiting costs a frame almost nothing.
        """
        period = 1.0 / self.fps
        slack, grace = 0.25 * period, 0.25 * period
        clock = time.monotonic() - period
        last: Frame | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if now - clock > 3 * period:  # the machine stalled: restart the clock rather than burst
                clock = now - period
            item = self.slot.take(timeout=max(0.0, clock + period + grace - now))
            if self._stop.is_set():
                return
            now = time.monotonic()
            if item is not None and item.seq > self.last_seq:
                earliest = clock + period - slack
                if now < earliest:
                    # Early: the slots lag the frames. Pull the clock towards them a little each
                    # frame (a slow phase lock), so a steady camera ends up sent the moment each
                    # frame is ready, while a faster camera still comes out at about ``fps``.
                    pull = min(earliest - now, self.phase_pull * period)
                    clock -= pull
                    earliest -= pull
                    if earliest > now and self._stop.wait(earliest - now):
                        return
                last = item
                self.last_seq = item.seq
                self.showing_placeholder = False
                sent_at = time.monotonic()
                self._send(last.image, last.seq, last.t_capture, fresh=True)
                clock = max(sent_at, clock + period)
                continue
            if now < clock + period + grace:
                if self.slot.closed and not self.slot.peek_ready():
                    return
                continue  # a stale item, or the slot closed early: wait out the slot
            clock += period
            seen = self._last_frame_at()
            if last is None or seen is None or now - seen > self.placeholder_after:
                if not self.showing_placeholder:
                    log.info("output %s shows the placeholder", self.key)
                self.showing_placeholder = True
                self._send(None, max(self.last_seq, 0), now, fresh=False)
            else:
                self._send(last.image, last.seq, last.t_capture, fresh=False)
            if self.slot.closed and not self.slot.peek_ready():
                return
