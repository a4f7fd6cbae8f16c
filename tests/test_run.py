"""`facetory run` end to end: real clips and models, the real virtual camera class, signals, start-up errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import pyvirtualcam

from facetory_cam.config import Settings
from facetory_cam.daemon.runner import RunPlan, build_pipeline, run_pipeline
from facetory_cam.looks.library import resolve_look
from facetory_cam.sources.scripted import decode_seq

REPO = Path(__file__).resolve().parents[1]


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_real_clip_to_file_every_frame_made_up(perception, shared_data: Path, tmp_path: Path) -> None:
    clip = shared_data / "videos" / "liveportrait_d0.mp4"
    out = tmp_path / "out.mp4"
    plan = RunPlan(
        sources=(str(clip),),
        sinks=(str(out),),
        look=resolve_look("bold-red-lip"),
        size=None,
        fps=25.0,
        paced=False,
        loop=False,
    )
    split = Settings.model_validate({"daemon": {"split_stages": True}})
    pipe = build_pipeline(split, plan, perception=perception)
    assert pipe.processor._mid is not None  # tracking and makeup on two threads: order and count still hold
    record: list[tuple[int, int, float]] = []

    def watched(lane, f, img) -> None:
        change = 0.0
        for face in lane.faces:  # mean change inside the lips of each tracked face
            lips = face.landmarks[[61, 291, 0, 17], :2]
            x0, y0 = np.floor(lips.min(0)).astype(int)
            x1, y1 = np.ceil(lips.max(0)).astype(int)
            a = f.image[y0:y1, x0:x1].astype(np.int16)
            b = img[y0:y1, x0:x1].astype(np.int16)
            change = max(change, float(np.abs(a - b).mean()))
        record.append((f.seq, len(lane.faces), change))

    pipe.processor.on_frame = watched
    snap = run_pipeline(pipe, startup_timeout=10.0)
    n_in = _frame_count(clip)
    assert len(record) == n_in == 78
    assert [r[0] for r in record] == sorted(r[0] for r in record)
    assert _frame_count(out) == n_in
    tracked = [r for r in record if r[1] > 0]
    assert len(tracked) >= 0.95 * n_in  # a talking head: tracked (almost) throughout
    # The look fades in over 200 ms (5 frames at 25 fps), rising each frame, then is on in every tracked frame.
    fade = [r[2] for r in tracked[:5]]
    assert fade == sorted(fade) and fade[-1] > 3.0
    assert all(r[2] > 3.0 for r in tracked[5:]), min(r[2] for r in tracked[5:])
    assert snap["counters"].get("stage_errors", 0) == 0
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (512, 512)
        assert float(s.average_rate) == pytest.approx(25.0)


class RecordingBackend:
    """A pyvirtualcam backend that keeps what the real ``pyvirtualcam.Camera`` hands it."""

    instances: list[RecordingBackend] = []

    def __init__(self, width: int, height: int, fps: float, fourcc: int, device: str | None = None, **kw) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.frames: list[int | None] = []
        self.closed = False
        RecordingBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        assert frame.size == self.height * self.width * 3  # pyvirtualcam hands over the RGB bytes
        self.frames.append(decode_seq(np.ascontiguousarray(frame).reshape(self.height, self.width, 3)))

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "recording-camera"

    def native_fourcc(self) -> int | None:
        return None


def test_two_sources_two_virtual_cameras(perception) -> None:
    pyvirtualcam.register_backend("facetory-recording", RecordingBackend)
    RecordingBackend.instances.clear()
    settings = Settings.model_validate({"daemon": {"virtualcam_backend": "facetory-recording"}})
    plan = RunPlan(
        sources=("scripted:320x240@30", "scripted:640x360@30"),
        sinks=("virtualcam", "virtualcam"),
        look=resolve_look("natural"),
        size=None,
        fps=30.0,
    )
    pipe = build_pipeline(settings, plan, perception=perception)
    import threading

    stop = threading.Event()
    threading.Timer(2.5, stop.set).start()
    run_pipeline(pipe, stop=stop)
    cams = RecordingBackend.instances
    assert [(c.width, c.height) for c in cams] == [(320, 240), (640, 360)]
    for cam in cams:
        assert cam.closed
        assert 60 <= len(cam.frames) <= 85  # 30 fps for ~2.5 s
        codes = [c for c in cam.frames if c is not None]
        assert len(codes) >= 50 and codes == sorted(codes)  # every camera gets its own source, in order


def _run_cli(args: list[str], **kw) -> subprocess.Popen:
    """``facetory ARGS`` in a subprocess; ``run`` without the control API (its own tests cover it)."""
    if "run" in args:
        at = args.index("run") + 1
        args = [*args[:at], "--no-api", *args[at:]]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "facetory_cam", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        **kw,
    )


def _wait_for(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """Read stderr lines until one contains ``text``."""
    deadline = time.monotonic() + timeout
    seen = []
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} not seen in: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_within_two_seconds(store, sig: int) -> None:
    proc = _run_cli(
        [
            "run",
            "--source",
            "scripted:320x240@30",
            "--sink",
            "null",
            "--look",
            "natural",
            "--stats-every",
            "0.5",
            "--json",
        ]
    )
    try:
        _wait_for(proc, "in fps", 60.0)  # running, with statistics printed
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10.0)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert elapsed < 2.0 + 0.5, elapsed  # stop budget, plus process exit
    assert "stopped in" in err
    import json

    stats = json.loads(out)
    assert stats["counters"]["frames_out"] > 0


def test_second_signal_forces_exit(monkeypatch) -> None:
    import facetory_cam.daemon.runner as runner

    exits: list[int] = []
    monkeypatch.setattr(runner.os, "_exit", exits.append)
    with runner.SignalStop() as stop:
        assert signal.getsignal(signal.SIGINT) == stop._handle
        stop._handle(signal.SIGINT, None)
        assert stop.event.is_set() and exits == []  # the first asks for a clean stop
        stop._handle(signal.SIGTERM, None)
        assert exits == [128 + signal.SIGTERM]  # the second exits at once
    assert signal.getsignal(signal.SIGINT) != stop._handle  # handlers restored


def test_missing_models_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run_cli(["run", "--source", "scripted", "--sink", "null", "--cache-dir", str(tmp_path / "empty")])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "facetory models fetch" in err


def test_absent_camera_is_a_clear_error(store) -> None:
    proc = _run_cli(["run", "--source", "/dev/video97", "--sink", "null", "--look", "none"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert "/dev/video97" in err and "facetory doctor" in err


def test_no_virtual_camera_is_a_clear_error(store) -> None:
    if sys.platform.startswith("linux") and Path("/sys/module/v4l2loopback").exists():
        pytest.skip("this machine has a v4l2loopback device")
    proc = _run_cli(["run", "--source", "scripted", "--sink", "virtualcam", "--look", "none"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert "v4l2loopback" in err or "OBS" in err


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[daemon]\nfps = -3\n")
    proc = _run_cli(["--config", str(cfg), "run", "--source", "scripted", "--sink", "null"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "daemon.fps" in err and str(cfg) in err
