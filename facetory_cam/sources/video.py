"""A video file played as if it were a camera, decoded with PyAV (FFmpeg).

Frames are converted to rgb24 with exact rounding and turned upright when the file asks
players to rotate it; packets that fail to decode are skipped and counted in
``decode_errors`` rather than ending the stream.

``realtime=True`` paces frames to the file's own rate from the moment of ``open``:
frame *i* is due at ``t0 + i / fps`` and ``read`` sleeps until then. A consumer that
falls behind by a frame period or more does not get a burst of stale frames: the frames
already past are decoded and dropped (counted in ``dropped``) and the one due now is
delivered, as a live camera would. ``realtime=False`` delivers every frame as fast as
it decodes, for offline processing and benchmarks. With ``loop=True`` the file restarts
at the end (``seq`` and the schedule keep going); otherwise ``EndOfStream`` is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from facetory_cam.interfaces import EndOfStream, Frame, SourceLost
from facetory_cam.media import _conversion, _upright
from facetory_cam.sources.pacing import sleep_until


class VideoFileSource:
    """Frames from a video file, with its ``fps``, ``size`` (width, height, upright) and ``frame_count``.

    Those three are read by ``open``; asked for before it, they come from a quick look at
    the file (so a sink can be sized before the capture starts), or 0.0/``None`` when the
    file cannot be read. ``frame_count`` is ``None`` when the container does not record
    it. ``open`` raises ``ValueError`` for a file that is missing or holds no decodable
    video (that never gets better by retrying).
    """

    def __init__(self, path: str | Path, *, loop: bool = False, realtime: bool = True, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name if name is not None else str(path)
        self.loop = loop
        self.realtime = realtime
        self._info: tuple[float, tuple[int, int], int | None] | None = None  # fps, size, frame_count
        self.dropped = 0
        self.decode_errors = 0
        self._seq = 0
        self._lock = threading.Lock()  # held while the container is used; close takes it to close the container
        self._stop = threading.Event()
        self._container: Any | None = None
        self._frames: Iterator[Any] | None = None
        self._pending: Any | None = None  # decoded ahead by open to learn the size
        self._ended = False
        self._t0 = 0.0
        self._index = 0  # frames consumed from the schedule, across loops

    @property
    def fps(self) -> float:
        info = self._describe()
        return info[0] if info else 0.0

    @property
    def size(self) -> tuple[int, int] | None:
        info = self._describe()
        return info[1] if info else None

    @property
    def frame_count(self) -> int | None:
        info = self._describe()
        return info[2] if info else None

    def _describe(self) -> tuple[float, tuple[int, int], int | None] | None:
        """What ``open`` learns, learnt by opening and closing the file when asked before ``open``."""
        if self._info is None:
            try:
                container, frames = self._open_container()
                with container:
                    self._inspect(container, frames)
            except ValueError:
                return None
        return self._info

    def _inspect(self, container: Any, frames: Iterator[Any]) -> Any:
        """Decode the first frame to learn rate, upright size and length; returns that frame."""
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(30)
            first = next(frames, None)
        except av.FFmpegError as exc:
            raise ValueError(f"{self.name}: the video could not be decoded ({exc})") from None
        if first is None:
            raise ValueError(f"{self.name}: the video has no frames")
        turns = round(int(first.rotation or 0) / 90) % 2
        size = (first.height, first.width) if turns else (first.width, first.height)
        self._info = (float(rate), size, int(stream.frames) or None)
        return first

    def _open_container(self) -> tuple[Any, Iterator[Any]]:
        if not self.path.is_file():
            raise ValueError(f"{self.name}: no such video file")
        try:
            container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{self.name}: not a video this program can read ({exc})") from None
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.name}: the file has no video track")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container, self._decode(container, stream)

    def _decode(self, container: Any, stream: Any) -> Iterator[Any]:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                self.decode_errors += 1
                continue
            yield from frames

    def open(self) -> None:
        """Open the file and decode its first frame; raises ``ValueError`` when it is not a playable video."""
        self.close()
        container, frames = self._open_container()
        try:
            first = self._inspect(container, frames)
        except BaseException:
            container.close()
            raise
        with self._lock:
            self._container, self._frames, self._pending = container, frames, first
            self._ended = False
            self._stop = threading.Event()
            self._t0 = time.monotonic()
            self._index = 0

    def close(self) -> None:
        """Idempotent and callable from any thread: wakes a sleeping ``read``, then closes the file."""
        self._stop.set()
        with self._lock:
            container, self._container, self._frames, self._pending = self._container, None, None, None
        if container is not None:
            container.close()

    def _next(self) -> Any:
        """The next decoded frame; restarts the file at its end when looping, else raises ``EndOfStream``."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        assert self._frames is not None and self._container is not None
        frame = next(self._frames, None)
        if frame is None and self.loop:
            self._container.close()
            try:
                self._container, self._frames = self._open_container()
            except ValueError as exc:  # the file went away while playing
                self._container = self._frames = None
                raise SourceLost(str(exc)) from None
            frame = next(self._frames, None)
        if frame is None:
            self._ended = True
            raise EndOfStream(f"{self.name}: end of the video")
        return frame

    def read(self, *, timeout: float) -> Frame | None:
        """The next frame: at its due time when realtime (``None`` if that is past ``timeout``), else at once."""
        deadline = time.monotonic() + max(0.0, timeout)
        stop = self._stop
        with self._lock:
            if self._ended:
                raise EndOfStream(f"{self.name}: end of the video")
            if self._container is None:
                raise SourceLost(f"{self.name}: not open")
            try:
                if self.realtime:
                    due = self._t0 + self._index / self.fps
                    if not sleep_until(due, deadline, stop, self.name):
                        return None
                    behind = int((time.monotonic() - due) * self.fps)  # whole frame periods late
                    for _ in range(behind):
                        self._next()
                        self._index += 1
                        self.dropped += 1
                frame = self._next()
                self._index += 1
                rng = int(frame.color_range or 0) or None
                rgb = frame.to_ndarray(format="rgb24", src_color_range=rng, interpolation=_conversion())
            except av.FFmpegError as exc:
                raise SourceLost(f"{self.name}: decoding failed ({exc})") from None
        image = np.ascontiguousarray(_upright(rgb, int(frame.rotation or 0)))
        seq = self._seq
        self._seq += 1
        return Frame(image=image, seq=seq, t_capture=time.monotonic(), source=self.name)
