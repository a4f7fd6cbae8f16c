"""A webcam read through OpenCV (V4L2 on Linux).

``open`` negotiates the pixel format (MJPG first: it carries 720p/1080p at full rate
over USB 2, where raw YUYV tops out at a few frames a second; YUYV when the camera
refuses it), the size and rate asked for, and a one-frame driver queue so frames are
fresh; what the camera actually granted is kept in ``negotiated``.

A grabber thread owns the ``VideoCapture``: it reads continuously and keeps only the
newest frame. That is what lets ``read`` honour its timeout (OpenCV's ``read`` cannot
be interrupted) and lets ``close`` from another thread unblock a hung ``read`` without
releasing the capture under a read in progress, which OpenCV does not survive. A slow
consumer therefore gets the newest frame, like a real camera with a short queue,
rather than a backlog.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from facetory_cam.interfaces import Frame, SourceLost

DEFAULT_FOURCCS: tuple[str, ...] = ("MJPG", "YUYV")
_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` this source uses (a fake in tests)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str, int], Capture]


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the camera granted; ``fps`` is 0.0 when the driver does not say."""

    fourcc: str
    width: int
    height: int
    fps: float


def fourcc_code(name: str) -> int:
    """The integer OpenCV uses for a four-character pixel format name."""
    return int(cv2.VideoWriter.fourcc(*name))


def fourcc_name(value: float) -> str:
    """The four characters of a FOURCC as ``CAP_PROP_FOURCC`` reports it ('' when unknown)."""
    code = int(value)
    if code <= 0:
        return ""
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00")


def _cv_capture(device: int | str, api: int) -> Capture:
    return cv2.VideoCapture(device, api)


def device_node_exists(device: int | str) -> bool | None:
    """Whether the camera's device node exists (Linux); ``None`` where that cannot be told beforehand."""
    if isinstance(device, str):
        return Path(device).exists()
    if sys.platform.startswith("linux"):
        return Path(f"/dev/video{device}").exists()
    return None


class _Grabber:
    """The thread that owns the capture: reads, keeps the newest frame, and releases the capture when done."""

    def __init__(self, cap: Capture, name: str) -> None:
        self.cap = cap
        self.cond = threading.Condition()
        self.latest: tuple[np.ndarray, float] | None = None
        self.frames = 0
        self.failed = False
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=f"webcam-{name}", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stopped:
                ok, image = self.cap.read()
                t = time.monotonic()
                with self.cond:
                    if self.stopped:
                        break
                    if not ok or image is None:
                        self.failed = True
                        self.cond.notify_all()
                        break
                    self.latest = (image, t)
                    self.frames += 1
                    self.cond.notify_all()
        except Exception:  # a driver error ends the stream like a failed read
            with self.cond:
                self.failed = True
                self.cond.notify_all()
        finally:
            self.cap.release()

    def stop(self, join_timeout: float) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if threading.current_thread() is not self.thread and self.thread.is_alive():
            self.thread.join(join_timeout)  # a hung driver keeps the thread; it releases the capture when it returns


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class WebcamSource:
    """A camera by index (``0``) or device path (``/dev/video0``).

    ``capture_factory(device, api)`` builds the capture (``cv2.VideoCapture`` by default)
    and ``device_exists(device)`` says whether the camera is there at all (``None``:
    unknown); both are injectable so the negotiation and error paths can be tested
    without a camera.
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourccs: tuple[str, ...] = DEFAULT_FOURCCS,
        first_frame_timeout: float = 3.0,
        capture_factory: CaptureFactory | None = None,
        device_exists: Callable[[int | str], bool | None] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self.device: int | str = device
        self.name = name if name is not None else str(device)
        self.width, self.height, self.fps = width, height, fps
        self.fourccs = fourccs
        self.first_frame_timeout = first_frame_timeout
        self.negotiated: Negotiated | None = None
        self._factory: CaptureFactory = capture_factory if capture_factory is not None else _cv_capture
        self._exists = device_exists if device_exists is not None else device_node_exists
        self._api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        self._grabber: _Grabber | None = None
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def size(self) -> tuple[int, int] | None:
        """The granted (width, height) once opened; ``None`` before, when only the camera knows."""
        n = self.negotiated
        return (n.width, n.height) if n is not None else None

    def _busy(self, what: str) -> SourceLost:
        return SourceLost(
            f"camera {self.name}: {what}; it may be in use by another program - close the other program "
            "(a video call, a browser tab, OBS) or pick another camera with --source"
        )

    def open(self) -> None:
        """Open and negotiate; raises ``SourceLost`` for a missing or busy camera (the caller retries)."""
        self.close()
        exists = self._exists(self.device)
        if exists is False:
            where = self.device if isinstance(self.device, str) else f"/dev/video{self.device}"
            raise SourceLost(
                f"camera {self.name}: no such camera ({where} does not exist); "
                "run `facetory doctor` to list the cameras this machine has"
            )
        cap = self._factory(self.device, self._api)
        if not cap.isOpened():
            cap.release()
            if exists is None:
                raise SourceLost(
                    f"camera {self.name}: could not be opened; it may not exist (run `facetory doctor` to list "
                    "cameras) or be in use by another program (close it or pick another --source)"
                )
            raise self._busy("the camera exists but could not be opened")
        try:
            fourcc = self._negotiate(cap)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        except Exception:
            cap.release()
            raise
        grabber = _Grabber(cap, self.name)
        grabber.thread.start()
        with grabber.cond:
            grabber.cond.wait_for(lambda: grabber.frames > 0 or grabber.failed, self.first_frame_timeout)
            first = grabber.latest
        if first is None:
            grabber.stop(0.5)
            raise self._busy(f"opened but delivered no frame within {self.first_frame_timeout:g} s")
        h, w = first[0].shape[:2]  # the frame is the truth; some drivers report sizes they do not deliver
        self.negotiated = Negotiated(fourcc=fourcc, width=int(w), height=int(h), fps=fps)
        with self._lock:
            self._grabber = grabber

    def _negotiate(self, cap: Capture) -> str:
        """Pixel format first (drivers reset the size when it changes), then size, rate and queue depth."""
        for name in self.fourccs:
            cap.set(cv2.CAP_PROP_FOURCC, fourcc_code(name))
            if fourcc_name(cap.get(cv2.CAP_PROP_FOURCC)) == name:
                break
        if self.width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height is not None:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return fourcc_name(cap.get(cv2.CAP_PROP_FOURCC))

    def read(self, *, timeout: float) -> Frame | None:
        """The newest frame not yet delivered, waiting at most ``timeout`` s; ``SourceLost`` when the camera fails."""
        grabber = self._grabber
        if grabber is None:
            raise SourceLost(f"camera {self.name}: not open")
        deadline = time.monotonic() + max(0.0, timeout)
        with grabber.cond:
            while grabber.latest is None and not grabber.failed and not grabber.stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                grabber.cond.wait(left)
            if grabber.stopped:
                raise SourceLost(f"camera {self.name}: closed while reading")
            taken, grabber.latest = grabber.latest, None
        if taken is None:
            raise SourceLost(f"camera {self.name}: stopped delivering frames (unplugged, or taken by another program)")
        image, t_capture = taken
        seq = self._seq
        self._seq += 1
        return Frame(image=_to_rgb(image), seq=seq, t_capture=t_capture, source=self.name)

    def close(self) -> None:
        """Stop the grabber; idempotent, callable from any thread."""
        with self._lock:
            grabber, self._grabber = self._grabber, None
        if grabber is not None:
            grabber.stop(0.5)
