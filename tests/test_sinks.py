"""Output sinks: what reaches the virtual camera, the video file and the preview, frame by frame."""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.camera import BACKENDS
from pyvirtualcam.util import encode_fourcc

from facetory_cam.errors import FacetoryError, VirtualCameraError
from facetory_cam.interfaces import Sink
from facetory_cam.sinks import (
    FileSink,
    NullSink,
    PreviewSink,
    SinkClosed,
    VirtualCameraSink,
    mjpeg_part,
    open_sink,
)

FAKE = "facetory-test-fake"


@dataclass
class FakeCamera:
    """What the fake pyvirtualcam backend saw."""

    fail: str | None = None
    opened: list[dict[str, Any]] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    closes: int = 0


@pytest.fixture()
def fake_cam() -> Any:
    """Register a backend with the real pyvirtualcam registry; the real ``Camera`` drives it."""
    seen = FakeCamera()

    class Backend:
        def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any):
            if seen.fail is not None:
                raise RuntimeError(seen.fail)
            seen.opened.append({"width": width, "height": height, "fps": fps, "fourcc": fourcc, "device": device})
            self._device = device or "/dev/video42"

        def send(self, frame: np.ndarray) -> None:
            assert frame.ndim == 1 and frame.dtype == np.uint8 and frame.flags.c_contiguous
            seen.frames.append(frame.copy())

        def close(self) -> None:
            seen.closes += 1

        def device(self) -> str:
            return self._device

        def native_fourcc(self) -> int | None:
            return None

    pyvirtualcam.register_backend(FAKE, Backend)
    try:
        yield seen
    finally:
        BACKENDS.pop(FAKE, None)


def _frames(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w, h = size
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _smooth_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Gradients with a moving square: content a lossy codec keeps well, different in every frame."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        img = np.stack([xx / w * 255, yy / h * 255, np.full_like(xx, (i * 9) % 256)], axis=-1)
        x0 = 4 + 3 * i
        img[20:44, x0 : x0 + 24] = (250, 30, 200)
        out.append(img.clip(0, 255).astype(np.uint8))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# ---------------------------------------------------------------- virtual camera


def test_virtualcam_every_frame_arrives_exact_and_in_order(fake_cam: FakeCamera) -> None:
    size = (64, 48)
    sink = VirtualCameraSink(size, 30, backend=FAKE)
    assert isinstance(sink, Sink)
    assert fake_cam.opened == [
        {"width": 64, "height": 48, "fps": 30.0, "fourcc": encode_fourcc("raw "), "device": None}
    ]
    assert sink.device == "/dev/video42" and sink.backend == FAKE and sink.name == "virtualcam:/dev/video42"
    sent = _frames(12, size)
    sent[5] = np.ascontiguousarray(sent[5][:, ::-1])[:, ::-1]  # a non-contiguous view is sent as the picture
    assert not sent[5].flags.c_contiguous
    for i, img in enumerate(sent):
        sink.send(img, seq=100 + i, t_capture=time.monotonic())
    assert len(fake_cam.frames) == 12 and sink.frames == 12 and sink.last_seq == 111
    for got, want in zip(fake_cam.frames, sent):
        np.testing.assert_array_equal(got.reshape(48, 64, 3), want)
    sink.close()
    sink.close()
    assert fake_cam.closes == 1 and sink.closed


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((48, 64, 4), np.uint8),
        np.zeros((64, 48, 3), np.uint8),
        np.zeros((48, 64), np.uint8),
        np.zeros((48, 64, 3), np.float32),
        np.zeros((48, 64, 3), np.uint16),
        [[0, 0, 0]],
    ],
    ids=["rgba", "transposed", "gray", "float", "uint16", "list"],
)
def test_virtualcam_wrong_frame_is_refused_before_the_device(fake_cam: FakeCamera, bad: Any) -> None:
    with VirtualCameraSink((64, 48), 30, backend=FAKE) as sink:
        with pytest.raises(ValueError, match="expected"):
            sink.send(bad, seq=0, t_capture=0.0)
        assert fake_cam.frames == [] and sink.frames == 0
        sink.send(np.zeros((48, 64, 3), np.uint8), seq=1, t_capture=0.0)  # the sink still works afterwards
    assert len(fake_cam.frames) == 1 and fake_cam.closes == 1


def test_virtualcam_send_after_close_reaches_nothing(fake_cam: FakeCamera) -> None:
    sink = VirtualCameraSink((32, 32), 30, device="/dev/video7", backend=FAKE)
    assert sink.device == "/dev/video7" and fake_cam.opened[0]["device"] == "/dev/video7"
    sink.close()
    with pytest.raises(SinkClosed):
        sink.send(np.zeros((32, 32, 3), np.uint8), seq=0, t_capture=0.0)
    assert fake_cam.frames == []


def test_virtualcam_does_not_pace(fake_cam: FakeCamera, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(self: Any) -> None:
        raise AssertionError("the sink must not pace; the output thread does")

    monkeypatch.setattr(pyvirtualcam.Camera, "sleep_until_next_frame", forbidden)
    frame = np.zeros((48, 64, 3), np.uint8)
    with VirtualCameraSink((64, 48), 2, backend=FAKE) as sink:
        t0 = time.monotonic()
        for i in range(20):  # 10 s of video at 2 fps
            sink.send(frame, seq=i, t_capture=0.0)
        assert time.monotonic() - t0 < 1.0
    assert len(fake_cam.frames) == 20


@pytest.mark.parametrize(
    ("platform", "needles"),
    [
        (
            "linux",
            [
                'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Facetory Camera"',
                "config/v4l2loopback.conf",
                "/etc/modprobe.d/",
                "sudo usermod -aG video $USER",
            ],
        ),
        ("win32", ["OBS Studio", "Start Virtual Camera"]),
        ("darwin", ["OBS Studio 30", "Start Virtual Camera", "system extension"]),
    ],
)
def test_virtualcam_failure_says_how_to_fix(fake_cam: FakeCamera, platform: str, needles: list[str]) -> None:
    fake_cam.fail = "No v4l2 loopback device found at /dev/video[0-99]."
    with pytest.raises(VirtualCameraError) as info:
        VirtualCameraSink((64, 48), 30, backend=FAKE, platform=platform)
    message = str(info.value)
    assert "No v4l2 loopback device found" in message  # the backend's own reason is kept
    for needle in needles:
        assert needle in message
    assert isinstance(info.value, FacetoryError) and info.value.exit_code not in (0, 1)
    assert fake_cam.opened == []


def test_virtualcam_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown virtual camera backend 'nope'"):
        VirtualCameraSink((64, 48), 30, backend="nope")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or Path("/sys/module/v4l2loopback").exists(),
    reason="needs a Linux machine without v4l2loopback loaded",
)
def test_real_backend_without_v4l2loopback_explains_modprobe() -> None:
    with pytest.raises(VirtualCameraError, match="modprobe v4l2loopback"):
        VirtualCameraSink((64, 48), 30, backend="v4l2loopback")


def test_sink_geometry_is_validated() -> None:
    for size in [(0, 10), (10,), (10.5, 8), (True, 8), "640x480"]:
        with pytest.raises(ValueError, match="size"):
            NullSink(size, 30)  # type: ignore[arg-type]
    for fps in [0, -1, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="fps"):
            NullSink((8, 8), fps)


# ---------------------------------------------------------------- file


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_file_sink_writes_every_frame(tmp_path: Path, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV's FFmpeg has no {codec}")
    size = (160, 96)
    target = tmp_path / "rec" / "deep" / "out.mp4"
    sent = _smooth_frames(20, size)
    sink = FileSink(target, size, 29.97, codec=codec)
    assert isinstance(sink, Sink) and sink.rate == Fraction(2997, 100)
    for i, img in enumerate(sent):
        sink.send(img, seq=i, t_capture=0.0)
        assert not target.exists()  # the target appears only when complete
    with pytest.raises(ValueError, match="shape"):
        sink.send(np.zeros((96, 161, 3), np.uint8), seq=99, t_capture=0.0)
    sink.close()
    sink.close()
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.mp4"]  # no temp file left
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == size
        assert stream.codec_context.name in {"h264", "mpeg4"}
        assert float(stream.average_rate) == pytest.approx(29.97, abs=0.01)
        got = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(got) == 20
    for i, (g, s) in enumerate(zip(got, sent)):
        assert _psnr(g, s) > 30, f"frame {i}: psnr {_psnr(g, s):.1f}"
    # frames are in order: each decoded frame matches its own source best
    assert all(_psnr(got[i], sent[i]) > _psnr(got[i], sent[(i + 5) % 20]) for i in range(20))
    with pytest.raises(SinkClosed):
        sink.send(sent[0], seq=0, t_capture=0.0)


def test_file_sink_integer_rate_timestamps(tmp_path: Path) -> None:
    target = tmp_path / "out.mkv"
    with FileSink(target, (64, 48), 25, codec="mpeg4") as sink:
        for i, img in enumerate(_smooth_frames(10, (64, 48))):
            sink.send(img, seq=i, t_capture=0.0)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
    assert times == pytest.approx([i / 25 for i in range(10)], abs=1e-3)


def test_file_sink_abort_and_empty_leave_no_file(tmp_path: Path) -> None:
    aborted = FileSink(tmp_path / "a.mp4", (64, 48), 30)
    aborted.send(np.zeros((48, 64, 3), np.uint8), seq=0, t_capture=0.0)
    assert aborted.temp_path.exists() and aborted.temp_path.name.startswith(".a.")
    aborted.abort()
    aborted.close()
    empty = FileSink(tmp_path / "b.mov", (64, 48), 30)
    empty.close()
    assert list(tmp_path.iterdir()) == []


def test_file_sink_failing_flush_leaves_no_file(tmp_path: Path) -> None:
    class FlushFails:
        def __init__(self, real: Any) -> None:
            self.real = real

        def encode(self, frame: Any) -> Any:
            if frame is None:
                raise OSError("disk full")
            return self.real.encode(frame)

    sink = FileSink(tmp_path / "x.mp4", (64, 48), 30)
    sink._stream = FlushFails(sink._stream)
    sink.send(np.zeros((48, 64, 3), np.uint8), seq=0, t_capture=0.0)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
    sink.close()  # idempotent even after a failed close
    assert list(tmp_path.iterdir()) == []


def test_file_sink_refuses_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extension"):
        FileSink(tmp_path / "out.txt", (64, 48), 30)
    with pytest.raises(ValueError, match="even"):
        FileSink(tmp_path / "out.mp4", (63, 48), 30, codec="mpeg4")
    assert list(tmp_path.iterdir()) == []


def test_file_sink_odd_size_keeps_full_chroma(tmp_path: Path) -> None:
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV's FFmpeg has no libx264")
    sent = [f[:47, :63].copy() for f in _smooth_frames(5, (64, 48))]
    with FileSink(tmp_path / "odd.mp4", (63, 47), 30) as sink:
        assert sink.pix_fmt == "yuv444p"
        for i, img in enumerate(sent):
            sink.send(img, seq=i, t_capture=0.0)
    with av.open(str(tmp_path / "odd.mp4")) as container:
        got = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(got) == 5 and got[0].shape == (47, 63, 3)
    assert min(_psnr(g, s) for g, s in zip(got, sent)) > 30


# ---------------------------------------------------------------- null


def test_null_sink_counts_and_remembers() -> None:
    ticks = iter(np.arange(100.0, 200.0, 0.5))
    sink = NullSink((8, 4), 30, history=3, keep_images=True, clock=lambda: float(next(ticks)))
    assert isinstance(sink, Sink)
    frames = _frames(5, (8, 4))
    for i, img in enumerate(frames):
        sink.send(img, seq=10 + i, t_capture=99.0 + i)
    with pytest.raises(ValueError):
        sink.send(np.zeros((8, 4, 3), np.uint8), seq=99, t_capture=0.0)
    assert sink.frames == 5 and sink.rejected == 1
    assert sink.seqs() == [12, 13, 14]
    assert [r.t_sent for r in sink.records()] == [101.0, 101.5, 102.0]
    np.testing.assert_allclose(sink.latencies(), [0.0, -0.5, -1.0])
    frames[4][:] = 0  # the kept image is a copy
    assert sink.last_image is not None and sink.last_image.any()
    sink.close()
    sink.close()
    with pytest.raises(SinkClosed):
        sink.send(frames[0], seq=20, t_capture=0.0)
    assert sink.frames == 5 and NullSink((8, 4)).last_image is None


# ---------------------------------------------------------------- preview

_PART = re.compile(rb"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: (\d+)\r\n\r\n")


def _parse_part(part: bytes) -> np.ndarray:
    m = _PART.match(part)
    assert m, part[:80]
    n = int(m.group(1))
    jpeg = part[m.end() : m.end() + n]
    assert part[m.end() + n :] == b"\r\n"
    return _decode(jpeg)


def _decode(jpeg: bytes) -> np.ndarray:
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _flat(size: tuple[int, int], rgb: tuple[int, int, int]) -> np.ndarray:
    w, h = size
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def _run(target: Any, *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def test_preview_does_not_encode_without_viewers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = cv2.imencode
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: calls.append(1) or real(*a, **k))
    sink = PreviewSink((1280, 720), 30)
    assert isinstance(sink, Sink) and sink.preview_size == (640, 360)
    assert sink.latest_jpeg() is None
    for i, img in enumerate(_smooth_frames(30, (1280, 720))):
        sink.send(img, seq=i, t_capture=0.0)
    assert sink.frames == 30 and sink.encodes == 0 and calls == []
    jpeg = sink.latest_jpeg()
    assert jpeg is not None and sink.latest_jpeg() is jpeg  # a second snapshot reuses the encode
    assert sink.encodes == 1 and len(calls) == 1
    small = _decode(jpeg)
    assert small.shape == (360, 640, 3)
    want = cv2.resize(_smooth_frames(30, (1280, 720))[-1], (640, 360), interpolation=cv2.INTER_AREA)
    assert _psnr(small, want) > 30


def test_preview_part_format_and_quality() -> None:
    image = _smooth_frames(1, (320, 240))[0]
    sink = PreviewSink((320, 240), 30, quality=95)
    sink.send(image, seq=0, t_capture=0.0)
    part = mjpeg_part(sink.latest_jpeg() or b"")
    decoded = _parse_part(part)
    assert decoded.shape == (240, 320, 3)  # narrower than max_width: not resized
    low = PreviewSink((320, 240), 30, quality=10)
    low.send(image, seq=0, t_capture=0.0)
    assert len(low.latest_jpeg() or b"") < len(sink.latest_jpeg() or b"")
    assert sink.content_type == "multipart/x-mixed-replace; boundary=frame" and sink.boundary == "frame"


def test_preview_viewers_share_one_encode() -> None:
    sink = PreviewSink((800, 600), 30, max_width=400)
    sink.send(_flat((800, 600), (10, 200, 30)), seq=0, t_capture=0.0)
    barrier = threading.Barrier(4)
    results: list[tuple[int, bytes] | None] = []

    def viewer() -> None:
        barrier.wait()
        results.append(sink.next_jpeg(0, timeout=5))

    threads = [_run(viewer) for _ in range(4)]
    for t in threads:
        t.join(5)
    assert len(results) == 4 and sink.encodes == 1
    assert all(r is not None and r[0] == 1 and r[1] == results[0][1] for r in results)  # type: ignore[index]
    assert _decode(results[0][1]).shape == (300, 400, 3)  # type: ignore[index]


def test_preview_streams_share_encodes_frame_by_frame() -> None:
    sink = PreviewSink((1280, 720), 30)
    n_viewers, n_frames = 3, 4
    got: list[list[np.ndarray]] = [[] for _ in range(n_viewers)]
    arrived = [threading.Semaphore(0) for _ in range(n_viewers)]
    stop = threading.Event()

    def watch(k: int) -> None:
        for part in sink.mjpeg_chunks(stop_event=stop, poll_s=0.05):
            got[k].append(_parse_part(part))
            arrived[k].release()

    threads = [_run(watch, k) for k in range(n_viewers)]
    deadline = time.monotonic() + 5
    while sink.viewers < n_viewers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.viewers == n_viewers
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    for i in range(n_frames):
        sink.send(_flat((1280, 720), colours[i]), seq=i, t_capture=0.0)
        for sem in arrived:
            assert sem.acquire(timeout=5), f"a viewer never got frame {i}"
    stop.set()
    for t in threads:
        t.join(2)
        assert not t.is_alive()
    assert sink.viewers == 0
    assert sink.encodes == n_frames  # one encode per frame, not per viewer
    for frames in got:
        assert len(frames) == n_frames
        for img, colour in zip(frames, colours):
            assert img.shape == (360, 640, 3)
            np.testing.assert_allclose(img.reshape(-1, 3).mean(0), colour, atol=4)


def test_preview_blocked_viewer_wakes_on_next_frame() -> None:
    sink = PreviewSink((64, 48), 30)
    sink.send(_flat((64, 48), (0, 0, 0)), seq=0, t_capture=0.0)
    out: list[Any] = []
    t = _run(lambda: out.append(sink.next_jpeg(sink.version, timeout=10)))
    time.sleep(0.2)
    assert t.is_alive() and out == [] and sink.encodes == 0  # waiting, not polling the old frame
    t_send = time.monotonic()
    sink.send(_flat((64, 48), (255, 255, 255)), seq=1, t_capture=0.0)
    t.join(5)
    assert time.monotonic() - t_send < 2.0 and not t.is_alive()
    version, jpeg = out[0]
    assert version == 2 and _decode(jpeg).mean() > 245


def test_preview_timeout_stop_event_and_close_end_waits() -> None:
    sink = PreviewSink((64, 48), 30)
    t0 = time.monotonic()
    assert sink.next_jpeg(0, timeout=0.1) is None
    assert 0.09 <= time.monotonic() - t0 < 2.0
    stop = threading.Event()
    parts: list[bytes] = []
    t = _run(lambda: parts.extend(sink.mjpeg_chunks(stop_event=stop, poll_s=0.05)))
    time.sleep(0.1)
    assert t.is_alive() and sink.viewers == 1
    stop.set()
    t.join(2)
    assert not t.is_alive() and parts == [] and sink.viewers == 0
    t = _run(lambda: parts.extend(sink.mjpeg_chunks(poll_s=10)))
    time.sleep(0.1)
    sink.close()  # wakes the viewer at once, long before poll_s
    t.join(2)
    assert not t.is_alive() and sink.viewers == 0
    with pytest.raises(SinkClosed):
        sink.send(_flat((64, 48), (1, 2, 3)), seq=0, t_capture=0.0)


def test_preview_max_fps_limits_a_viewer() -> None:
    sink = PreviewSink((64, 48), 30)
    stop = threading.Event()
    parts: list[bytes] = []
    viewer = _run(lambda: parts.extend(sink.mjpeg_chunks(max_fps=5, stop_event=stop, poll_s=0.05)))
    t_end = time.monotonic() + 1.0
    i = 0
    while time.monotonic() < t_end:
        sink.send(_flat((64, 48), (i % 256, 0, 0)), seq=i, t_capture=0.0)
        i += 1
        time.sleep(0.005)
    stop.set()
    viewer.join(2)
    assert i > 50 and 1 <= len(parts) <= 7  # about 5 in one second, never one per frame
    assert sink.encodes == len(parts)


# ---------------------------------------------------------------- open_sink


def test_open_sink_specs(tmp_path: Path, fake_cam: FakeCamera) -> None:
    size = (64, 48)
    null = open_sink("null", size=size, fps=30)
    assert isinstance(null, NullSink) and null.size == size and null.fps == 30.0
    preview = open_sink("preview", size=(1280, 720), fps=25, preview_max_width=320, preview_quality=50)
    assert isinstance(preview, PreviewSink) and preview.preview_size == (320, 180) and preview.quality == 50
    cam = open_sink("virtualcam", size=size, fps=30, backend=FAKE)
    assert isinstance(cam, VirtualCameraSink) and cam.device == "/dev/video42"
    cam.close()
    cam = open_sink("virtualcam:/dev/video10", size=size, fps=30, backend=FAKE)
    assert isinstance(cam, VirtualCameraSink) and cam.device == "/dev/video10"
    cam.close()
    for spec in [str(tmp_path / "a.mp4"), f"file:{tmp_path / 'b.MKV'}", str(tmp_path / "c.mov")]:
        sink = open_sink(spec, size=size, fps=30)
        assert isinstance(sink, FileSink) and sink.size == size
        sink.send(np.zeros((48, 64, 3), np.uint8), seq=0, t_capture=0.0)
        sink.close()
        assert sink.path.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty sink spec"),
        ("   ", "empty sink spec"),
        ("bogus", "unknown sink 'bogus'"),
        ("virtualcam:", "names no device"),
        ("out.txt", "unknown sink"),
        ("null:x", "unknown sink"),
        ("file:", "unknown sink"),
    ],
)
def test_open_sink_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_sink(spec, size=(64, 48), fps=30)
    assert "virtualcam" in str(info.value) and ".mp4" in str(info.value)


def test_open_sink_backend_is_ignored_by_other_sinks() -> None:
    sink = open_sink("null", size=(64, 48), fps=30, backend="obs")  # one configured backend, any spec
    assert isinstance(sink, NullSink)
