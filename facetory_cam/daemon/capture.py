"""The capture stage: one thread per source, the only one that touches the device.

It reads as fast as the source delivers and leaves the newest frame in a slot.
When the source fails, hangs or goes away it closes it, reports the loss and
reopens it with exponential backoff (sleeping, never spinning) until it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from facetory_cam.daemon.ratelimit import RateLimitedLog
from facetory_cam.daemon.slot import Closed, Slot
from facetory_cam.daemon.stats import PipelineStats
from facetory_cam.interfaces import EndOfStream, Frame, FrameSource, SourceLost

log = logging.getLogger(__name__)

BACKOFF_START = 0.25
BACKOFF_MAX = 5.0


class CaptureWorker:
    """Keeps ``slot`` fed with the newest frame of a source, through faults."""

    def __init__(
        self,
        source: FrameSource,
        slot: Slot[Frame],
        stats: PipelineStats,
        *,
        key: str,
        hang_after: float = 2.0,
        backoff_max: float = BACKOFF_MAX,
        opener: Callable[[str], FrameSource] | None = None,
    ) -> None:
        self.key = key
        self.slot = slot
        self.stats = stats
        self.hang_after = hang_after
        self.backoff_max = backoff_max
        self._opener = opener
        self._source = source
        self._pending: str | None = None  # a new source spec to switch to
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.finished = threading.Event()  # a finite source is done
        self.lost_since: float | None = time.monotonic()  # no frame yet counts as lost
        self.last_frame_at: float | None = None
        self.error: str | None = None
        self.opens = 0
        self._errors = RateLimitedLog(log, every=5.0)
        self._thread = threading.Thread(target=self._run, name=f"capture-{key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._source.close()  # unblocks a read that hangs

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def switch(self, spec: str) -> None:
        """Replace the source between two reads (the capture thread closes the old one)."""
        if self._opener is None:
            raise RuntimeError("this capture cannot switch sources")
        with self._lock:
            self._pending = spec

    @property
    def source_name(self) -> str:
        return self._source.name

    def _mark_lost(self, why: str) -> None:
        if self.lost_since is None:
            self.lost_since = time.monotonic()
            log.warning("source %s lost: %s", self.key, why)
        self.error = why
        self.stats.source_state(self.key, state="lost", error=why)

    def _take_pending(self) -> None:
        with self._lock:
            spec, self._pending = self._pending, None
        if spec is None or self._opener is None:
            return
        try:
            new = self._opener(spec)
        except (ValueError, OSError) as exc:
            log.error("cannot switch source %s to %r: %s", self.key, spec, exc)
            return
        self._source.close()
        self._source = new
        self._mark_lost("switching source")

    def _run(self) -> None:
        delay = BACKOFF_START
        opened = False
        while not self._stop.is_set():
            self._take_pending()
            if not opened:
                try:
                    self._source.open()
                    opened = True
                    self.opens += 1
                    opened_at = time.monotonic()
                    waiting_since = opened_at
                except SourceLost as exc:
                    self._mark_lost(str(exc))
                    self._stop.wait(delay)
                    delay = min(delay * 2.0, self.backoff_max)
                    continue
                except Exception as exc:  # a bug in a source: keep trying, but slowly
                    self._errors.error("source %s failed to open: %s", self.key, exc)
                    self._mark_lost(f"open failed: {exc}")
                    self._stop.wait(delay)
                    delay = min(delay * 2.0, self.backoff_max)
                    continue
            try:
                frame = self._source.read(timeout=0.1)
            except EndOfStream:
                log.info("source %s ended", self.key)
                self.stats.source_state(self.key, state="ended", error=None)
                self.finished.set()
                self.slot.close()  # wakes the processor: nothing more will come from here
                break
            except SourceLost as exc:
                if self._stop.is_set():
                    break  # closed by stop(): not a loss
                opened = False
                self._reopen_after(str(exc), delay)
                delay = min(delay * 2.0, self.backoff_max)
                continue
            except Exception as exc:  # a driver hiccup: count it, keep reading
                self._errors.error("source %s read failed: %s", self.key, exc)
                self.stats.count("source_errors")
                if self._stop.wait(0.01):
                    break
                continue
            now = time.monotonic()
            if frame is None:
                if now - waiting_since > self.hang_after:  # delivering nothing: reopen it
                    opened = False
                    self._reopen_after(f"no frame for {self.hang_after:.1f} s", delay)
                    delay = min(delay * 2.0, self.backoff_max)
                continue
            waiting_since = now
            if self.lost_since is not None:
                if self.last_frame_at is not None:
                    log.info("source %s recovered after %.1f s", self.key, now - self.lost_since)
                self.lost_since = None
                self.error = None
                h, w = frame.image.shape[:2]
                self.stats.source_state(self.key, state="live", error=None, size=[w, h], name=self._source.name)
            if now - opened_at > 1.0:
                delay = BACKOFF_START  # healthy for a while: the next failure retries quickly again
            self.last_frame_at = now
            self.stats.frame_in(self.key, now)
            try:
                while not self.slot.put(frame, timeout=0.5):  # lossless: wait for the consumer
                    if self._stop.is_set():
                        break
            except Closed:
                break
        self._source.close()
        if not self.finished.is_set():
            self.stats.source_state(self.key, state="stopped")

    def _reopen_after(self, why: str, delay: float) -> None:
        self._mark_lost(why)
        self._source.close()
        self._stop.wait(delay)
