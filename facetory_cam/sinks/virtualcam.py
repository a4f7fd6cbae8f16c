"""The virtual webcam that video-call apps read: a thin, strict wrapper round ``pyvirtualcam.Camera``.

Size and pixel format are fixed when the camera is opened, because apps that already
opened the device cannot follow a change. Pacing is the caller's job (its output thread
sends at the camera's rate), so ``sleep_until_next_frame`` is never used here. When the
device cannot be opened, the error says exactly how to set one up on this OS.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from facetory_cam.errors import VirtualCameraError
from facetory_cam.sinks.base import SinkClosed, check_frame, check_geometry

CARD_LABEL = "Facetory Camera"
MODPROBE_COMMAND = f'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="{CARD_LABEL}"'
RELOAD_COMMAND = f"sudo modprobe -r v4l2loopback && {MODPROBE_COMMAND}"
INSTALL_PACKAGE_HINT = (
    "install the module first if modprobe cannot find it: `sudo apt install v4l2loopback-dkms` (Debian/Ubuntu), "
    "`sudo dnf install v4l2loopback` (Fedora, RPM Fusion), `sudo pacman -S v4l2loopback-dkms` (Arch)"
)
PERSIST_HINT = (
    "to load it at every boot, copy the shipped files: "
    "`sudo cp config/v4l2loopback.conf /etc/modprobe.d/` and `sudo cp config/v4l2loopback-load.conf "
    "/etc/modules-load.d/v4l2loopback.conf`"
)
USERMOD_COMMAND = "sudo usermod -aG video $USER"
OBS_URL = "https://obsproject.com"


def setup_hint(platform: str = sys.platform) -> str:
    """How to get a virtual camera device on ``platform`` (a ``sys.platform`` value), as commands to run."""
    if platform.startswith("linux"):
        return (
            f"Load the v4l2loopback kernel module: `{MODPROBE_COMMAND}` ({INSTALL_PACKAGE_HINT}); "
            f"{PERSIST_HINT}. If the device exists but cannot be opened, join the video group: "
            f"`{USERMOD_COMMAND}`, then log out and back in. If another program (OBS, a second facetory) "
            "is already writing to it, stop that program or load the module with devices=2. "
            "`facetory doctor` checks all of this."
        )
    if platform == "darwin":
        return (
            f"Install OBS Studio 30 or newer ({OBS_URL}), click 'Start Virtual Camera' once and approve its "
            "system extension in System Settings > General > Login Items & Extensions > Camera Extensions "
            "(Privacy & Security on older macOS), then stop the virtual camera in OBS and quit OBS; "
            "OBS must not be using the virtual camera while facetory runs. `facetory doctor` checks this."
        )
    if platform in ("win32", "cygwin"):
        return (
            f"Install OBS Studio ({OBS_URL}), open it, click 'Start Virtual Camera' once (accept the administrator "
            "prompt), then stop it and close OBS; OBS must not be using the virtual camera while facetory runs. "
            "`facetory doctor` checks this."
        )
    return f"virtual cameras are supported on Linux (v4l2loopback), Windows and macOS (OBS), not on {platform!r}"


class VirtualCameraSink:
    """Publishes RGB frames of one fixed size to a virtual webcam.

    ``device`` and ``backend`` are what pyvirtualcam reports (``/dev/video10``, ``OBS Virtual
    Camera``; ``v4l2loopback``, ``obs``). ``send`` refuses a frame of another shape or dtype
    before anything reaches the device. Safe to ``close`` from another thread while the
    output thread sends.
    """

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        device: str | None = None,
        backend: str | None = None,
        platform: str = sys.platform,
    ) -> None:
        self.size, self.fps = check_geometry(size, fps)
        self.frames = 0
        self.last_seq: int | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._camera = _open_camera(self.size, self.fps, device=device, backend=backend, platform=platform)
        self.device: str = str(self._camera.device)
        self.backend: str = str(self._camera.backend)
        self.name = f"virtualcam:{self.device}"

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, image: np.ndarray, *, seq: int, t_capture: float) -> None:
        """Hand one frame to the device now; raises ``ValueError`` for a frame of another format."""
        check_frame(image, self.size)
        with self._lock:
            if self._closed:
                raise SinkClosed(f"{self.name} is closed")
            self._camera.send(image)
            self.frames += 1
            self.last_seq = seq

    def close(self) -> None:
        """Release the device (idempotent); apps reading it then see the stream end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._camera.close()

    def __enter__(self) -> VirtualCameraSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        return f"VirtualCameraSink({self.device!r}, {w}x{h} @ {self.fps:g} fps, backend={self.backend!r})"


def _open_camera(size: tuple[int, int], fps: float, *, device: str | None, backend: str | None, platform: str) -> Any:
    """Open ``pyvirtualcam.Camera`` in RGB, turning every way it can fail into an actionable error."""
    where = f" {device}" if device else ""
    try:
        import pyvirtualcam
        from pyvirtualcam.camera import BACKENDS
    except Exception as exc:  # a missing package or a native library that does not load
        raise VirtualCameraError(
            f"cannot use virtual cameras: pyvirtualcam does not import ({exc}); run `pip install pyvirtualcam`"
        ) from exc
    if backend is not None and backend not in BACKENDS:
        known = ", ".join(sorted(BACKENDS)) or "none on this OS"
        raise ValueError(f"unknown virtual camera backend {backend!r}; available: {known}")
    if not BACKENDS:
        raise VirtualCameraError(f"no virtual camera backend is available here. {setup_hint(platform)}")
    width, height = size
    try:
        return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device, backend=backend)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise VirtualCameraError(
            f"cannot open the virtual camera{where} at {width}x{height}: {reason}\n{setup_hint(platform)}"
        ) from exc
