"""Where frames come from: a webcam, a video file, a still image or a scripted fake camera.

:func:`open_source` turns the ``--source`` text into a source object without opening it;
the capture thread calls ``open()`` (and reopens after ``SourceLost``).
"""

from __future__ import annotations

import re
from pathlib import Path

from facetory_cam.errors import ImageError
from facetory_cam.interfaces import FrameSource
from facetory_cam.sources.image import ImageSource
from facetory_cam.sources.scripted import (
    Disconnect,
    Freeze,
    Normal,
    Raise,
    ScriptedSource,
    Slow,
    Stall,
    Step,
    decode_seq,
    default_script,
    paint_seq,
)
from facetory_cam.sources.video import VideoFileSource
from facetory_cam.sources.webcam import Negotiated, WebcamSource

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Disconnect",
    "Freeze",
    "ImageSource",
    "Negotiated",
    "Normal",
    "Raise",
    "ScriptedSource",
    "Slow",
    "Stall",
    "Step",
    "VideoFileSource",
    "WebcamSource",
    "decode_seq",
    "default_script",
    "open_source",
    "paint_seq",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}
)
_CAMERA = re.compile(r"^(\d+|/dev/video\d+)$")
_SCRIPTED = re.compile(r"^scripted(?::(?:(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?)?$")
_ACCEPTED = (
    "a camera index (0), a camera device (/dev/video0), a video file (.mp4, .mkv, .mov, .avi, .webm, ...), "
    "an image (.png, .jpg, .jpeg, .webp, .bmp) or scripted:[WxH[@FPS]]"
)


def _refuse(spec: str, why: str) -> ValueError:
    return ValueError(f"source {spec!r}: {why}; a source is {_ACCEPTED}")


def open_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    loop: bool = False,
    realtime: bool = True,
) -> FrameSource:
    """Build the source ``spec`` names (it is not opened); ``ValueError`` for a spec that can never work.

    ``width``/``height``/``fps`` are requested from a camera, size and pace a still
    image or a scripted source (the spec's own ``WxH@FPS`` wins), and are ignored for a
    video file, which plays at its own size and rate. ``loop`` and ``realtime`` apply to
    video files.
    """
    text = spec.strip()
    if not text:
        raise _refuse(spec, "empty")
    if _CAMERA.match(text):
        return WebcamSource(int(text) if text.isdigit() else text, width=width, height=height, fps=fps, name=text)
    if text.startswith("scripted"):
        m = _SCRIPTED.match(text)
        if m is None:
            raise _refuse(spec, "a scripted source is written scripted: or scripted:WxH or scripted:WxH@FPS")
        w = int(m.group(1)) if m.group(1) else (width or 640)
        h = int(m.group(2)) if m.group(2) else (height or 480)
        rate = float(m.group(3)) if m.group(3) else (fps or 30.0)
        if w < 30 or h < 9 or rate <= 0:
            raise _refuse(spec, f"{w}x{h}@{rate:g} is too small (at least 30x9 at a positive rate)")
        return ScriptedSource((w, h), rate, default_script(rate), name=text)
    path = Path(text).expanduser()
    if not path.exists():
        raise _refuse(spec, "no such file or camera")
    if not path.is_file():
        raise _refuse(spec, "not a file")
    size = (width, height) if width is not None and height is not None else None
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return ImageSource(path, fps=fps or 30.0, size=size, name=text)
    if suffix in VIDEO_EXTENSIONS:
        return VideoFileSource(path, loop=loop, realtime=realtime, name=text)
    from facetory_cam.media import probe  # the name says nothing: look at the content

    try:
        kind = probe(path)
    except ImageError:
        raise _refuse(spec, "the file is neither an image nor a video this program can read") from None
    if kind == "image":
        return ImageSource(path, fps=fps or 30.0, size=size, name=text)
    return VideoFileSource(path, loop=loop, realtime=realtime, name=text)
