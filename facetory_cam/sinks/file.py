"""Records the output stream to a video file, one encoded frame per ``send``.

Frames get consecutive timestamps at the sink's fixed rate (the rate made an exact
fraction, so 29.97 becomes 30000/1001 and no drift builds up). The file is written under a
temporary name beside the target and renamed only by ``close``, after the encoder is
flushed, so a crash leaves at most a hidden ``.partial`` file, never a broken target.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facetory_cam.media import VIDEO_FORMATS, video_codec
from facetory_cam.sinks.base import SinkClosed, check_frame, check_geometry

log = logging.getLogger(__name__)


def exact_rate(fps: float) -> Fraction:
    """``fps`` as a small exact fraction: 30 -> 30/1, 29.97 -> 2997/100, 30000/1001 -> 30000/1001."""
    return Fraction(fps).limit_denominator(1001)


class FileSink:
    """Writes frames of one fixed size to ``path`` (``.mp4``, ``.m4v``, ``.mov`` or ``.mkv``).

    H.264 (libx264, yuv420p; yuv444p for an odd size) when PyAV's FFmpeg has it, else MPEG-4
    part 2. ``frames``
    counts frames handed to the encoder. A sink closed before any frame was sent leaves no
    file. ``abort`` drops the recording instead of keeping it.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: float,
        *,
        codec: str | None = None,
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        import av

        self.size, self.fps = check_geometry(size, fps)
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FORMATS:
            raise ValueError(f"{self.path}: not a video file extension; use one of {', '.join(VIDEO_FORMATS)}")
        self.rate = exact_rate(self.fps)
        self.frame_time_base = Fraction(self.rate.denominator, self.rate.numerator)  # one tick per frame
        self.codec = codec or video_codec()
        width, height = self.size
        # 4:2:0 chroma needs even sizes; x264 keeps full chroma for odd ones, MPEG-4 part 2 cannot
        self.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        if self.pix_fmt != "yuv420p" and self.codec != "libx264":
            raise ValueError(f"{self.codec} needs an even width and height, got {width}x{height}")
        self.name = f"file:{self.path}"
        self.frames = 0
        self._lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{suffix}", dir=self.path.parent)
        os.close(fd)
        self.temp_path = Path(tmp)
        try:
            self._container: Any = av.open(str(self.temp_path), mode="w", format=VIDEO_FORMATS[suffix])
            try:
                self._stream = self._add_stream(crf=crf, preset=preset)
                self._container.start_encoding()
            except BaseException:
                self._container.close()
                raise
        except BaseException:
            self.temp_path.unlink(missing_ok=True)
            raise

    def _add_stream(self, *, crf: int, preset: str) -> Any:
        width, height = self.size
        stream = self._container.add_stream(self.codec, rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        time_base = self.frame_time_base
        stream.time_base = time_base  # a wish: the muxer may pick a finer one when encoding starts
        stream.codec_context.time_base = time_base
        stream.codec_context.framerate = self.rate
        if self.codec == "libx264":
            stream.codec_context.options = {"crf": str(crf), "preset": preset}
        else:
            stream.codec_context.bit_rate = int(width * height * float(self.rate) * 0.4)
            stream.codec_context.qmin, stream.codec_context.qmax = 2, 10
        return stream

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, image: np.ndarray, *, seq: int, t_capture: float) -> None:
        """Encode one frame; it is shown for exactly 1/fps seconds in the file."""
        import av
        from av.video.reformatter import Interpolation

        check_frame(image, self.size)
        with self._lock:
            if self._closed:
                raise SinkClosed(f"{self.name} is closed")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            # accurate rounding: the default swscale flags darken every frame by about one level
            frame = frame.reformat(
                format=self.pix_fmt,
                interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT,
            )
            frame.pts = self.frames
            frame.time_base = self.frame_time_base
            self._container.mux(self._stream.encode(frame))
            self.frames += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to ``path`` (idempotent).

        If flushing fails the partial file is removed and the error raised: a target that
        exists is always a complete video.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.frames == 0:
                self._discard()
                log.info("%s: no frames were sent, so no file was written", self.path)
                return
            try:
                self._container.mux(self._stream.encode(None))
                self._container.close()
                os.replace(self.temp_path, self.path)
            except BaseException:
                self._discard()
                raise

    def abort(self) -> None:
        """Stop and delete the partial recording without creating ``path`` (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        return f"FileSink({str(self.path)!r}, {w}x{h} @ {self.rate} fps, codec={self.codec!r})"
