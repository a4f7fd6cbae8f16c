"""Reading and writing the photos and videos that ``facetory apply`` works on.

Videos go through PyAV (FFmpeg): every frame is decoded, turned upright when the file
asks players to rotate it, handed to a callback, turned back and encoded as H.264
(yuv420p) with the source's timestamps, so size, frame rate and frame count are kept.
The audio track is copied packet for packet when the output container can hold it,
otherwise re-encoded to AAC. Outputs are written under a temporary name in the target
folder and renamed only when complete, so a failure never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facetory_cam.errors import ImageError
from facetory_cam.imageio import check_input_file

IMAGE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
VIDEO_FORMATS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
MAX_INPUT_BYTES = 20 * 1024**3
_NOT_VIDEO = frozenset({"image2", "tty", "lrc"})

MediaKind = Literal["image", "video"]
FrameFn = Callable[[np.ndarray, float], np.ndarray]


class MediaError(ImageError):
    """The input is not a readable image or video, or the output cannot be written."""


@dataclass(frozen=True)
class VideoResult:
    """What :func:`transcode_video` wrote."""

    frames: int
    width: int
    height: int
    rate: Fraction
    codec: str
    audio: Literal["copied", "re-encoded", "none"]


def _check_input_file(path: Path) -> None:
    check_input_file(path, max_bytes=MAX_INPUT_BYTES, error=MediaError)


def probe(path: str | Path) -> MediaKind:
    """Whether ``path`` holds a still image or a video, from its content, not its name."""
    import av
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    _check_input_file(p)
    try:
        with Image.open(p):  # reads the header only
            return "image"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        pass
    try:
        with av.open(str(p), mode="r") as container:
            fmt = container.format.name
            # FFmpeg also "plays" still images by extension and text as ANSI art; neither is a video
            if container.streams.video and fmt not in _NOT_VIDEO and not fmt.endswith("_pipe"):
                for _ in container.decode(video=0):
                    return "video"
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        pass
    raise MediaError(f"{p}: not an image or a video this program can read")


def output_kind(path: str | Path) -> MediaKind:
    """The kind of file an output name asks for, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_FORMATS:
        return "image"
    if suffix in VIDEO_FORMATS:
        return "video"
    known = ", ".join([*IMAGE_FORMATS, *VIDEO_FORMATS])
    raise MediaError(f"{path}: unknown output type {suffix or '(no extension)'!r}; use one of {known}")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same extension); renamed to ``path`` only on success."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise MediaError(f"{target}: the folder {folder} does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image; the format follows the extension."""
    from PIL import Image

    target = Path(path)
    fmt = IMAGE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise MediaError(f"{target}: not an image extension ({', '.join(IMAGE_FORMATS)})")
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_output(target) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").save(tmp, format=fmt, **options)
        except OSError as exc:
            raise MediaError(f"{target}: cannot write the image ({exc})") from None


def _conversion() -> Any:
    """Exact-rounding swscale flags: the defaults darken every frame by about one level
    per YUV round trip; these keep colours unbiased for a few ms a frame."""
    from av.video.reformatter import Interpolation

    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def video_codec() -> str:
    """H.264 through libx264 when PyAV's FFmpeg has it, else MPEG-4 part 2."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _aac_layout(layout: Any) -> str:
    """The source's layout when it is a named one, else the standard one for its channel
    count (AAC refuses unordered layouts); more than eight channels are mixed to stereo."""
    if layout.name in _LAYOUTS.values():
        return str(layout.name)
    return _LAYOUTS.get(layout.nb_channels, "stereo")


class _Writer:
    """The output container: H.264 video plus the audio track, copied or re-encoded."""

    def __init__(
        self,
        path: Path,
        source_video: Any,
        source_audio: Any | None,
        size: tuple[int, int],
        rate: Fraction,
        rotation: int,
        *,
        copy_audio: bool,
    ) -> None:
        import av

        width, height = size
        self.container = av.open(str(path), mode="w")
        try:
            self.codec = video_codec()
            self.source_tb = Fraction(source_video.time_base)
            # MPEG-4 part 2 cannot count time finer than 1/65535 s: fall back to one tick a frame
            fine = self.codec != "libx264" and self.source_tb.denominator > 65535
            self.time_base = Fraction(rate.denominator, rate.numerator) if fine else self.source_tb
            # yuv420p needs even sizes in x264; odd ones keep full chroma instead
            self.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            video = self.container.add_stream(self.codec, rate=rate)
            video.width, video.height, video.pix_fmt = width, height, self.pix_fmt
            video.time_base = self.time_base
            video.codec_context.time_base = self.time_base
            video.codec_context.framerate = rate
            src_ctx = source_video.codec_context
            if src_ctx.sample_aspect_ratio:
                video.codec_context.sample_aspect_ratio = src_ctx.sample_aspect_ratio
            for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
                with contextlib.suppress(AttributeError, ValueError, TypeError):
                    setattr(video.codec_context, attr, getattr(src_ctx, attr))
            if self.codec == "libx264":
                video.codec_context.options = {"crf": "18", "preset": "medium"}
            else:
                video.codec_context.bit_rate = int(width * height * float(rate) * 0.25)
            if rotation:
                video.set_display_rotation(rotation)
            self.video = video
            self.colorspace = int(src_ctx.colorspace or 0) or None
            self.color_range = int(src_ctx.color_range or 0) or None
            self.audio: Any | None = None
            self.audio_mode: Literal["copied", "re-encoded", "none"] = "none"
            if source_audio is not None:
                if copy_audio:
                    self.audio = self.container.add_stream_from_template(source_audio)
                    self.audio_mode = "copied"
                else:
                    ctx = source_audio.codec_context
                    self.audio = self.container.add_stream("aac", rate=ctx.sample_rate)
                    self.audio.codec_context.layout = _aac_layout(ctx.layout)
                    self.audio_mode = "re-encoded"
            self.container.start_encoding()
        except BaseException:
            self.container.close()
            raise
        self.rate = rate
        self.frames = 0
        self._last_pts: int | None = None
        self._step = max(1, round(1 / (rate * self.time_base)))

    def write_video(self, rgb: np.ndarray, pts: int | None) -> None:
        import av

        if pts is not None and self.time_base != self.source_tb:
            pts = round(pts * self.source_tb / self.time_base)
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # the colour matrix and range the source was decoded with, so colours round-trip
        frame = frame.reformat(
            format=self.pix_fmt,
            dst_colorspace=self.colorspace,
            dst_color_range=self.color_range,
            interpolation=_conversion(),
        )
        frame.pts = pts
        frame.time_base = self.time_base
        self.container.mux(self.video.encode(frame))
        self.frames += 1

    def write_audio(self, packet: Any) -> None:
        if self.audio is None:
            return
        if self.audio_mode == "copied":
            if packet.dts is None:  # the demuxer's end-of-stream marker
                return
            packet.stream = self.audio
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder's resampler retimes the samples
            self.container.mux(self.audio.encode(frame))

    def close(self) -> None:
        self.container.mux(self.video.encode(None))
        if self.audio is not None and self.audio_mode == "re-encoded":
            self.container.mux(self.audio.encode(None))
        self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


def _open_writer(
    path: Path, video: Any, audio: Any | None, size: tuple[int, int], rate: Fraction, rotation: int
) -> _Writer:
    """Copy the audio when the container takes its codec; otherwise start over with AAC."""
    import av

    if audio is not None:
        try:
            return _Writer(path, video, audio, size, rate, rotation, copy_audio=True)
        except (av.FFmpegError, ValueError):
            path.unlink(missing_ok=True)
    return _Writer(path, video, audio, size, rate, rotation, copy_audio=False)


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame the way a player shows it (``rotation`` is counter-clockwise)."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, -turns)) if turns else rgb


def transcode_video(
    source: str | Path, target: str | Path, process: FrameFn, *, progress: bool = True, desc: str = "apply"
) -> VideoResult:
    """Decode ``source``, pass each upright RGB frame and its time in seconds to ``process``,
    and encode what it returns into ``target``.

    ``process`` may change the frame size (the same for every frame), e.g. to put a
    before and an after side by side.
    """
    import av

    src, dst = Path(source), Path(target)
    _check_input_file(src)
    if dst.suffix.lower() not in VIDEO_FORMATS:
        raise MediaError(f"{dst}: not a video extension ({', '.join(VIDEO_FORMATS)})")
    try:
        container = av.open(str(src), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise MediaError(f"{src}: not a video this program can read ({exc})") from None
    writer: _Writer | None = None
    with container, atomic_output(dst) as tmp:
        try:
            writer = _transcode(container, src, tmp, process, progress=progress, desc=desc)
            writer.close()
        except av.FFmpegError as exc:
            if writer is not None:
                writer.abort()
            raise MediaError(f"{src}: the video could not be decoded or encoded ({exc})") from None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    return VideoResult(
        frames=writer.frames,
        width=writer.video.width,
        height=writer.video.height,
        rate=writer.rate,
        codec=writer.codec,
        audio=writer.audio_mode,
    )


def _transcode(container: Any, src: Path, tmp: Path, process: FrameFn, *, progress: bool, desc: str) -> _Writer:
    from tqdm import tqdm

    if not container.streams.video:
        raise MediaError(f"{src}: the file has no video track")
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    audio = container.streams.audio[0] if container.streams.audio else None
    guess = video.average_rate or video.guessed_rate or video.base_rate or Fraction(30)
    rate = Fraction(guess.numerator, guess.denominator)
    time_base = Fraction(video.time_base)
    start = video.start_time or 0
    writer: _Writer | None = None
    pending: list[Any] = []  # audio that arrives before the first picture is decoded
    last_t = -1.0
    rotation = 0
    with tqdm(total=video.frames or None, desc=desc, unit="frame", file=sys.stderr, disable=not progress) as bar:
        try:
            for packet in container.demux(*([video] if audio is None else [video, audio])):
                if packet.stream.type == "audio":
                    if writer is None:
                        pending.append(packet)
                    else:
                        writer.write_audio(packet)
                    continue
                for frame in packet.decode():
                    if writer is None:
                        rotation = int(frame.rotation or 0)
                    rng = int(frame.color_range or 0) or None
                    decoded = frame.to_ndarray(format="rgb24", src_color_range=rng, interpolation=_conversion())
                    rgb = _upright(decoded, rotation)
                    t = float((frame.pts - start) * time_base) if frame.pts is not None else last_t + float(1 / rate)
                    t = max(t, last_t + 1e-6)
                    last_t = t
                    out = _stored(process(rgb, t), rotation)
                    if writer is None:
                        writer = _open_writer(tmp, video, audio, (out.shape[1], out.shape[0]), rate, rotation)
                        for p in pending:
                            writer.write_audio(p)
                        pending.clear()
                    writer.write_video(out, frame.pts)
                    bar.update(1)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is None:
        raise MediaError(f"{src}: the video has no frames")
    return writer
