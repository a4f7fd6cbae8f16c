"""Where output frames go: the virtual webcam, a video file, the web preview, or nowhere.

Every sink follows :class:`facetory_cam.interfaces.Sink`: size and rate are fixed when it
is made and ``send`` refuses any other frame shape. :func:`open_sink` turns a short spec
from the command line or the config into a sink.
"""

from __future__ import annotations

import sys
from pathlib import Path

from facetory_cam.interfaces import Sink
from facetory_cam.media import VIDEO_FORMATS
from facetory_cam.sinks.base import SinkClosed, check_frame, check_geometry
from facetory_cam.sinks.file import FileSink
from facetory_cam.sinks.null import NullSink, SendRecord
from facetory_cam.sinks.preview import PreviewSink, mjpeg_part
from facetory_cam.sinks.virtualcam import VirtualCameraSink, setup_hint

__all__ = [
    "FileSink",
    "NullSink",
    "PreviewSink",
    "SendRecord",
    "SinkClosed",
    "VirtualCameraSink",
    "check_frame",
    "check_geometry",
    "mjpeg_part",
    "open_sink",
    "setup_hint",
]

SPEC_HELP = (
    "use virtualcam, virtualcam:DEVICE (e.g. virtualcam:/dev/video10), null, preview, "
    f"or a video file path ending in {', '.join(VIDEO_FORMATS)}"
)


def open_sink(
    spec: str,
    *,
    size: tuple[int, int],
    fps: float,
    backend: str | None = None,
    preview_max_width: int = 640,
    preview_quality: int = 80,
    platform: str = sys.platform,
) -> Sink:
    """Make the sink ``spec`` names, at ``size`` (width, height) and ``fps``.

    ``virtualcam`` takes the first free virtual camera, ``virtualcam:DEVICE`` a given one
    (``backend`` picks a pyvirtualcam backend by name and is ignored by the other sinks, so
    one configured backend can go with any spec); ``file:PATH`` or a bare path with a
    video extension records to a file. Raises ``ValueError`` for a spec that names no sink
    and :class:`~facetory_cam.errors.VirtualCameraError` when the virtual camera cannot open.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    if not text:
        raise ValueError(f"empty sink spec; {SPEC_HELP}")
    kind, sep, arg = text.partition(":")
    kind_l = kind.lower()
    if kind_l == "virtualcam":
        if sep and not arg.strip():
            raise ValueError(f"sink spec {spec!r} names no device after 'virtualcam:'; {SPEC_HELP}")
        device = arg.strip() or None
        return VirtualCameraSink(size, fps, device=device, backend=backend, platform=platform)
    if kind_l == "null" and not sep:
        return NullSink(size, fps)
    if kind_l == "preview" and not sep:
        return PreviewSink(size, fps, max_width=preview_max_width, quality=preview_quality)
    path_text = arg if kind_l == "file" and sep else text
    path = Path(path_text.strip()).expanduser()
    if path_text.strip() and path.suffix.lower() in VIDEO_FORMATS:
        return FileSink(path, size, fps)
    raise ValueError(f"unknown sink {spec!r}; {SPEC_HELP}")
