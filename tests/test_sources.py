"""Frame sources: pacing, seq/t_capture stamping, scripted faults, webcam negotiation and spec parsing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from facetory_cam.interfaces import EndOfStream, Frame, FrameSource, SourceLost
from facetory_cam.media import video_codec
from facetory_cam.sources import (
    Disconnect,
    Freeze,
    ImageSource,
    Normal,
    Raise,
    ScriptedSource,
    Slow,
    Stall,
    VideoFileSource,
    WebcamSource,
    decode_seq,
    open_source,
    paint_seq,
)
from facetory_cam.sources.scripted import synthetic_pattern
from facetory_cam.sources.webcam import fourcc_code, fourcc_name

CLIP_FRAMES, CLIP_FPS, CLIP_SIZE = 30, 30, (160, 120)


def read_frame(source: FrameSource, timeout: float = 2.0) -> Frame:
    """A frame, failing the test on a timeout."""
    frame = source.read(timeout=timeout)
    assert frame is not None, "timed out"
    return frame


# -------------------------------------------------------------------- seq code


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("seq", [0, 1, 2, 255, 256, 4660, 65535, 65536 + 77, 1_000_003])
def test_decode_seq_survives_half_size_and_jpeg(seq: int) -> None:
    image = paint_seq(synthetic_pattern((640, 480)), seq)
    assert decode_seq(image) == seq & 0xFFFF
    half = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
    assert decode_seq(_jpeg(half, 70)) == seq & 0xFFFF


def test_decode_seq_survives_letterboxing() -> None:
    image = paint_seq(synthetic_pattern((640, 480)), 31337)
    small = cv2.resize(image, (480, 360), interpolation=cv2.INTER_LINEAR)
    pillarbox = np.zeros((360, 640, 3), np.uint8)
    pillarbox[:, 80:560] = small
    letterbox = np.zeros((600, 480, 3), np.uint8)
    letterbox[120:480] = small
    assert decode_seq(_jpeg(pillarbox, 70)) == 31337
    assert decode_seq(_jpeg(letterbox, 70)) == 31337


def test_decode_seq_refuses_pictures_without_a_code() -> None:
    assert decode_seq(synthetic_pattern((640, 480))) is None
    assert decode_seq(np.zeros((48, 64, 3), np.uint8)) is None
    assert decode_seq(np.full((48, 64, 3), 255, np.uint8)) is None


# -------------------------------------------------------------------- scripted


def test_scripted_frames_carry_seq_move_and_are_paced() -> None:
    src = ScriptedSource((320, 240), 50.0)
    src.open()
    start = time.monotonic()
    frames = [read_frame(src) for _ in range(11)]
    elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 0.6  # 10 periods of 20 ms
    assert [f.seq for f in frames] == list(range(11))
    assert [decode_seq(f.image) for f in frames] == list(range(11))
    assert all(b.t_capture > a.t_capture for a, b in zip(frames, frames[1:]))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    below_code = slice(240 // 2, 240)
    assert not np.array_equal(frames[0].image[below_code], frames[1].image[below_code])
    assert frames[0].source == "scripted"
    src.close()


def test_scripted_seq_keeps_rising_across_reopen() -> None:
    src = ScriptedSource((64, 48), 200.0)
    seqs: list[int] = []
    for _ in range(3):
        src.open()
        seqs += [read_frame(src).seq for _ in range(3)]
        src.close()
        src.close()  # idempotent
    assert seqs == sorted(set(seqs)) and len(seqs) == 9
    with pytest.raises(SourceLost):
        src.read(timeout=0.1)


def test_scripted_read_honours_timeout_between_frames() -> None:
    src = ScriptedSource((64, 48), 2.0)
    src.open()
    read_frame(src)
    start = time.monotonic()
    assert src.read(timeout=0.05) is None
    assert time.monotonic() - start < 0.15


def test_scripted_raise_is_a_generic_error_n_times() -> None:
    src = ScriptedSource((64, 48), 100.0, [Normal(1), Raise(2), Normal(1)])
    src.open()
    assert read_frame(src).seq == 0
    for _ in range(2):
        with pytest.raises(RuntimeError, match="scripted failure") as info:
            src.read(timeout=1.0)
        assert not isinstance(info.value, SourceLost)
    assert read_frame(src).seq == 1


def test_scripted_stall_returns_none_then_resumes_without_cpu() -> None:
    src = ScriptedSource((64, 48), 100.0, [Normal(1), Stall(1.0), Normal(1)])
    src.open()
    read_frame(src)
    start, cpu = time.monotonic(), time.process_time()
    nones, longest = 0, 0.0
    while True:
        t = time.monotonic()
        frame = src.read(timeout=0.1)
        longest = max(longest, time.monotonic() - t)
        if frame is not None:
            break
        nones += 1
    elapsed, cpu_used = time.monotonic() - start, time.process_time() - cpu
    assert 0.95 <= elapsed < 1.4
    assert nones >= 8
    assert longest < 0.16  # each read kept to its timeout
    assert cpu_used < 0.2
    assert frame.seq == 1


def test_scripted_slow_frames_take_their_delay_past_the_timeout() -> None:
    src = ScriptedSource((64, 48), 100.0, [Normal(1), Slow(2, 0.15), Normal(1)])
    src.open()
    read_frame(src)
    for _ in range(2):
        start = time.monotonic()
        frame = src.read(timeout=0.01)
        assert frame is not None
        assert time.monotonic() - start >= 0.15
    start = time.monotonic()
    read_frame(src)
    assert time.monotonic() - start < 0.1


def test_scripted_disconnect_blocks_open_then_reconnects_at_new_size() -> None:
    src = ScriptedSource((320, 240), 100.0, [Normal(2), Disconnect(0.4, size=(160, 120)), Normal(3)])
    src.open()
    assert [read_frame(src).seq for _ in range(2)] == [0, 1]
    lost_at = time.monotonic()
    with pytest.raises(SourceLost, match="disconnect"):
        src.read(timeout=1.0)
    with pytest.raises(SourceLost):
        src.read(timeout=0.1)
    src.close()
    cpu = time.process_time()
    attempts = 0
    while True:
        try:
            src.open()
            break
        except SourceLost:
            attempts += 1
            time.sleep(0.05)
    assert time.monotonic() - lost_at >= 0.4
    assert attempts >= 5
    assert time.process_time() - cpu < 0.2
    frame = read_frame(src)
    assert frame.image.shape == (120, 160, 3)
    assert frame.seq == 2 and decode_seq(frame.image) == 2


def test_scripted_freeze_hangs_until_closed_and_reopened() -> None:
    src = ScriptedSource((64, 48), 100.0, [Normal(1), Freeze(), Normal(1)], repeat_last=False)
    src.open()
    read_frame(src)
    for _ in range(3):
        start = time.monotonic()
        assert src.read(timeout=0.1) is None
        assert time.monotonic() - start < 0.16
    closer = threading.Timer(0.2, src.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(SourceLost):
        src.read(timeout=5.0)
    assert time.monotonic() - start < 0.5
    closer.join()
    src.open()
    assert read_frame(src).seq == 1
    with pytest.raises(EndOfStream):
        src.read(timeout=1.0)


def test_scripted_close_from_another_thread_unblocks_a_slow_read() -> None:
    src = ScriptedSource((64, 48), 100.0, [Slow(1, 10.0)])
    src.open()
    closer = threading.Timer(0.1, src.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(SourceLost):
        src.read(timeout=0.01)
    assert time.monotonic() - start < 0.5
    closer.join()


def test_scripted_base_image_is_resized_and_bad_steps_refused() -> None:
    base = np.zeros((100, 50, 3), np.uint8)
    base[..., 1] = 200
    src = ScriptedSource((160, 120), 100.0, base_image=base)
    src.open()
    frame = read_frame(src)
    assert frame.image.shape == (120, 160, 3)
    assert frame.image[100, 100, 1] == 200
    with pytest.raises(ValueError):
        Normal(-1)
    with pytest.raises(ValueError):
        Stall(-0.5)


# -------------------------------------------------------------------- video files


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of 160x120 at 30 fps, frame i carrying seq code i."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(video_codec(), rate=Fraction(CLIP_FPS))
        stream.width, stream.height, stream.pix_fmt = *CLIP_SIZE, "yuv420p"
        base = synthetic_pattern(CLIP_SIZE)
        for i in range(CLIP_FRAMES):
            rgb = paint_seq(np.roll(base, i, axis=1), i)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def test_video_offline_delivers_every_frame_in_order(clip: Path) -> None:
    src = VideoFileSource(clip, realtime=False)
    assert src.size == CLIP_SIZE  # known before open, so a sink can be sized
    src.open()
    assert src.fps == pytest.approx(CLIP_FPS)
    assert src.size == CLIP_SIZE
    assert src.frame_count == CLIP_FRAMES
    start = time.monotonic()
    frames = [read_frame(src) for _ in range(CLIP_FRAMES)]
    assert time.monotonic() - start < 1.5
    assert [decode_seq(f.image) for f in frames] == list(range(CLIP_FRAMES))
    assert [f.seq for f in frames] == list(range(CLIP_FRAMES))
    assert all(b.t_capture >= a.t_capture for a, b in zip(frames, frames[1:]))
    assert frames[0].image.shape == (120, 160, 3) and frames[0].source == str(clip)
    for _ in range(2):
        with pytest.raises(EndOfStream):
            src.read(timeout=1.0)
    src.close()


def test_video_realtime_is_paced_to_the_file_rate(clip: Path) -> None:
    src = VideoFileSource(clip, realtime=True)
    src.open()
    start = time.monotonic()
    frames: list[Frame] = []
    with pytest.raises(EndOfStream):
        while True:
            frame = src.read(timeout=1.0)
            if frame is not None:
                frames.append(frame)
    elapsed = time.monotonic() - start
    assert 0.85 <= elapsed < 2.0  # 29 periods of 1/30 s
    assert len(frames) + src.dropped == CLIP_FRAMES
    assert len(frames) >= CLIP_FRAMES - 5
    codes = [decode_seq(f.image) for f in frames]
    assert codes == sorted(codes) and codes[0] == 0


def test_video_realtime_read_times_out_before_the_next_frame(clip: Path) -> None:
    src = VideoFileSource(clip)
    src.open()
    read_frame(src)
    start = time.monotonic()
    assert src.read(timeout=0.005) is None
    assert time.monotonic() - start < 0.03
    assert read_frame(src, 0.2).seq == 1


def test_video_late_consumer_skips_to_the_frame_due_now(clip: Path) -> None:
    src = VideoFileSource(clip)
    src.open()
    first = read_frame(src)
    time.sleep(0.3)  # about nine frame periods
    start = time.monotonic()
    late = read_frame(src)
    assert time.monotonic() - start < 0.1  # no pacing wait for a frame that is already due
    code = decode_seq(late.image)
    assert code is not None and code >= 7
    assert src.dropped == code - 1
    assert late.seq == first.seq + 1


def test_video_loop_restarts_and_seq_keeps_rising(clip: Path) -> None:
    src = VideoFileSource(clip, loop=True, realtime=False)
    src.open()
    frames = [read_frame(src) for _ in range(2 * CLIP_FRAMES + 15)]
    assert [decode_seq(f.image) for f in frames] == [i % CLIP_FRAMES for i in range(len(frames))]
    assert [f.seq for f in frames] == list(range(len(frames)))
    src.close()
    src.open()
    assert read_frame(src).seq == len(frames)
    assert decode_seq(read_frame(src).image) == 1


def test_video_rotated_file_is_delivered_upright(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(video_codec(), rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # players turn it a quarter counter-clockwise
        stored = np.zeros((32, 64, 3), np.uint8)
        stored[:, :32] = (255, 0, 0)
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode(None))
    src = VideoFileSource(path, realtime=False)
    assert src.size == (32, 64)
    src.open()
    image = read_frame(src).image
    assert image.shape == (64, 32, 3)
    assert image[56, 16, 0] > 200 and image[8, 16, 0] < 60  # the stored left half is now at the bottom


def test_video_open_refuses_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such video file"):
        VideoFileSource(tmp_path / "missing.mp4").open()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="broken.mp4"):
        VideoFileSource(broken).open()
    assert VideoFileSource(broken).size is None and VideoFileSource(broken).fps == 0.0
    with pytest.raises(SourceLost):
        VideoFileSource(broken).read(timeout=0.1)


# -------------------------------------------------------------------- still images


def test_image_source_paces_and_hands_out_copies(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    Image.fromarray(synthetic_pattern((64, 48))).save(path)
    src = ImageSource(path, fps=20.0)
    assert src.size == (64, 48)
    src.open()
    start = time.monotonic()
    frames = [read_frame(src) for _ in range(10)]
    assert 0.4 <= time.monotonic() - start < 1.0  # 9 periods of 50 ms
    assert [f.seq for f in frames] == list(range(10))
    frames[0].image[:] = 0
    assert frames[1].image.any()
    assert src.read(timeout=0.001) is None
    src.close()
    src.open()
    assert read_frame(src).seq == 10


def test_image_source_applies_exif_orientation_and_size(tmp_path: Path) -> None:
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = (255, 0, 0)  # left half red
    stored[:, 32:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    src = ImageSource(path)
    src.open()
    image = read_frame(src).image
    assert image.shape == (64, 32, 3)
    assert image[8, 16, 0] > 200 and image[8, 16, 2] < 60  # the red half is now on top
    assert image[56, 16, 2] > 200 and image[56, 16, 0] < 60
    resized = ImageSource(path, size=(16, 20))
    resized.open()
    assert read_frame(resized).image.shape == (20, 16, 3)
    with pytest.raises(ValueError):
        ImageSource(tmp_path / "missing.png").open()
    assert ImageSource(tmp_path / "missing.png").size is None


# -------------------------------------------------------------------- webcam (fake capture)


class FakeCapture:
    """Enough of cv2.VideoCapture: supported formats and sizes, a call log, scripted read failures."""

    def __init__(
        self,
        *,
        opened: bool = True,
        formats: tuple[str, ...] = ("MJPG", "YUYV"),
        sizes: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720)),
        good_reads: int | None = None,
        hang: threading.Event | None = None,
    ) -> None:
        self.opened, self.formats, self.sizes = opened, formats, sizes
        self.good_reads, self.hang = good_reads, hang
        self.calls: list[tuple[int, float]] = []
        self.fourcc = fourcc_code("YUYV")
        self.width, self.height = sizes[0]
        self.fps = 30.0
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.calls.append((prop, value))
        if prop == cv2.CAP_PROP_FOURCC:
            if fourcc_name(value) not in self.formats:
                return False
            self.fourcc = int(value)
        elif prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.width = int(value)
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            want = (self.width, int(value))
            self.width, self.height = min(self.sizes, key=lambda s: abs(s[0] - want[0]) + abs(s[1] - want[1]))
        elif prop == cv2.CAP_PROP_FPS:
            self.fps = min(float(value), 30.0)
        return True

    def get(self, prop: int) -> float:
        return {
            cv2.CAP_PROP_FOURCC: float(self.fourcc),
            cv2.CAP_PROP_FRAME_WIDTH: float(self.width),
            cv2.CAP_PROP_FRAME_HEIGHT: float(self.height),
            cv2.CAP_PROP_FPS: self.fps,
        }.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(0.01)
        self.reads += 1
        if self.hang is not None and self.reads > 1:
            self.hang.wait(5.0)
        if self.good_reads is not None and self.reads > self.good_reads:
            return False, None
        bgr = np.zeros((self.height, self.width, 3), np.uint8)
        bgr[..., 0] = 255  # blue in OpenCV's order
        return True, bgr

    def release(self) -> None:
        self.released = True


def factory_for(*caps: FakeCapture) -> tuple[Callable[[int | str, int], FakeCapture], list[tuple[int | str, int]]]:
    """A capture factory handing out ``caps`` in turn, and the log of its calls."""
    log: list[tuple[int | str, int]] = []
    queue = list(caps)

    def make(device: int | str, api: int) -> FakeCapture:
        log.append((device, api))
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return make, log


def webcam(*caps: FakeCapture, exists: bool | None = True, **kwargs: object) -> tuple[WebcamSource, list]:
    make, log = factory_for(*caps)
    src = WebcamSource(0, capture_factory=make, device_exists=lambda _d: exists, **kwargs)  # type: ignore[arg-type]
    return src, log


def test_webcam_tries_mjpg_first_and_records_what_was_granted() -> None:
    cap = FakeCapture()
    src, log = webcam(cap, width=1920, height=1080, fps=60.0)
    assert src.size is None
    src.open()
    assert src.size == (1280, 720)
    if sys.platform.startswith("linux"):
        assert log == [(0, cv2.CAP_V4L2)]
    props = [p for p, _ in cap.calls]
    assert cap.calls[0] == (cv2.CAP_PROP_FOURCC, fourcc_code("MJPG"))
    assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_WIDTH)
    assert (cv2.CAP_PROP_BUFFERSIZE, 1) in cap.calls
    assert src.negotiated is not None
    assert (src.negotiated.fourcc, src.negotiated.width, src.negotiated.height) == ("MJPG", 1280, 720)
    assert src.negotiated.fps == 30.0
    frame = read_frame(src)
    assert frame.image.shape == (720, 1280, 3)
    assert frame.image[0, 0].tolist() == [0, 0, 255]  # BGR blue arrives as RGB blue
    src.close()
    assert cap.released


def test_webcam_falls_back_to_yuyv_when_mjpg_is_refused() -> None:
    cap = FakeCapture(formats=("YUYV",))
    src, _ = webcam(cap)
    src.open()
    fourccs = [fourcc_name(v) for p, v in cap.calls if p == cv2.CAP_PROP_FOURCC]
    assert fourccs == ["MJPG", "YUYV"]
    assert src.negotiated is not None and src.negotiated.fourcc == "YUYV"
    assert (src.negotiated.width, src.negotiated.height) == (640, 480)
    src.close()


def test_webcam_missing_camera_suggests_doctor() -> None:
    cap = FakeCapture()
    src, log = webcam(cap, exists=False)
    with pytest.raises(SourceLost, match="no such camera") as info:
        src.open()
    assert "facetory doctor" in str(info.value)
    assert log == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device nodes are a Linux thing")
def test_webcam_default_existence_check_sees_no_device_node() -> None:
    src = WebcamSource("/dev/video987", capture_factory=factory_for(FakeCapture())[0])
    with pytest.raises(SourceLost, match="no such camera"):
        src.open()


@pytest.mark.parametrize(
    "cap", [FakeCapture(opened=False), FakeCapture(good_reads=0)], ids=["cannot-open", "no-first-frame"]
)
def test_webcam_busy_camera_names_the_fix(cap: FakeCapture) -> None:
    src, _ = webcam(cap, first_frame_timeout=0.3)
    with pytest.raises(SourceLost, match="in use by another program") as info:
        src.open()
    assert "--source" in str(info.value)
    assert cap.released


def test_webcam_failed_read_is_source_lost_and_seq_survives_reopen() -> None:
    src, _ = webcam(FakeCapture(good_reads=3), FakeCapture())
    src.open()
    seqs = []
    with pytest.raises(SourceLost, match="stopped delivering"):
        for _ in range(10):
            frame = src.read(timeout=1.0)
            if frame is not None:
                seqs.append(frame.seq)
    src.close()
    src.open()
    after = read_frame(src)
    assert seqs and after.seq == seqs[-1] + 1
    assert seqs == list(range(len(seqs)))
    src.close()
    src.close()


def test_webcam_read_timeout_and_close_from_another_thread() -> None:
    release = threading.Event()
    cap = FakeCapture(hang=release)
    src, _ = webcam(cap)
    src.open()
    read_frame(src)
    start = time.monotonic()
    assert src.read(timeout=0.05) is None
    assert time.monotonic() - start < 0.15
    closer = threading.Timer(0.1, src.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(SourceLost):
        src.read(timeout=5.0)
    assert time.monotonic() - start < 0.4
    release.set()
    closer.join()
    with pytest.raises(SourceLost, match="not open"):
        src.read(timeout=0.1)


# -------------------------------------------------------------------- open_source


def test_open_source_picks_the_kind(clip: Path, tmp_path: Path) -> None:
    cam = open_source("0", width=1280, height=720, fps=30)
    assert isinstance(cam, WebcamSource) and cam.device == 0 and (cam.width, cam.height, cam.fps) == (1280, 720, 30)
    dev = open_source("/dev/video3")
    assert isinstance(dev, WebcamSource) and dev.device == "/dev/video3" and dev.name == "/dev/video3"
    video = open_source(str(clip), loop=True, realtime=False)
    assert isinstance(video, VideoFileSource) and video.loop and not video.realtime
    still = tmp_path / "still.jpg"
    Image.fromarray(synthetic_pattern((64, 48))).save(still)
    image = open_source(str(still), fps=10)
    assert isinstance(image, ImageSource) and image.fps == 10
    nameless = tmp_path / "clip_without_extension"
    nameless.write_bytes(clip.read_bytes())
    assert isinstance(open_source(str(nameless)), VideoFileSource)
    for source in (cam, dev, video, image):
        assert isinstance(source, FrameSource)


def test_open_source_scripted_specs() -> None:
    default = open_source("scripted:")
    assert isinstance(default, ScriptedSource)
    assert (default.size, default.fps) == ((640, 480), 30.0) and default.script
    custom = open_source("scripted:320x240@15")
    assert isinstance(custom, ScriptedSource) and (custom.size, custom.fps) == ((320, 240), 15.0)
    sized = open_source("scripted:", width=160, height=120, fps=10)
    assert isinstance(sized, ScriptedSource) and (sized.size, sized.fps) == ((160, 120), 10.0)
    assert isinstance(sized, FrameSource)


@pytest.mark.parametrize("spec", ["", "nope.mp4", "scripted:big", "scripted:10x10@30", "/dev/null", "notes.txt"])
def test_open_source_refuses_with_a_clear_message(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError) as info:
        open_source(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert "camera index" in message and "video file" in message and "scripted:" in message
