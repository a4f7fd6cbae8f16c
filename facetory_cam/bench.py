"""Per-stage timings of the frame pipeline: tracking, makeup rendering, background.

Stages run one after another on one thread (OpenCV and ONNX Runtime limited to
one core), so the figures say what one core of the machine can do per frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetory_cam.looks.background import BackgroundCompositor
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Background, Look
from facetory_cam.vision.perception import Perception

# Every face layer on, with everyday product colours: what a demanding look costs per frame.
EVERY_LAYER_LOOK: dict[str, Any] = {
    "name": "every face layer",
    "layers": {
        "foundation": {"tone": "#d9a88c", "coverage": 0.4},
        "skin_smoothing": {"strength": 0.5},
        "contour": {"contour": 0.3, "highlight": 0.3},
        "blush": {"color": "#e0707a", "opacity": 0.35},
        "eyeshadow": {"color": "#6b4a5a", "crease_color": "#a08070", "opacity": 0.5},
        "eyeliner": {"thickness": 0.01, "wing_length": 0.04},
        "mascara": {},
        "brows": {"color": "#4a3426", "opacity": 0.4},
        "lipstick": {"color": "#a01828", "finish": "satin", "opacity": 0.85},
        "lip_liner": {"color": "#801020"},
        "teeth_whitening": {"strength": 0.5},
        "iris": {"color": "#3a6a9a", "opacity": 0.5},
    },
}


def synthetic_webcam_frames(n: int, *, seed: int = 0) -> Iterator[np.ndarray]:
    """1280x720 frames of the public-domain astronaut portrait, face about 300 px, with sensor noise."""
    import skimage.data

    tile = cv2.resize(skimage.data.astronaut()[0:260, 100:350], (600, 624), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for i in range(n):
        canvas = np.full((720, 1280, 3), 90, np.uint8)
        dx = 40.0 * np.sin(i / 15.0)
        m = np.float32([[1, 0, 340 + dx], [0, 1, 60]])
        cv2.warpAffine(tile, m, (1280, 720), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
        noisy = canvas.astype(np.float32) + rng.normal(0.0, 3.0, canvas.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def video_frames(path: Path, n: int) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    try:
        for _ in range(n):
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


@dataclass
class StageTimes:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds * 1e3)

    def summary(self, warmup: int) -> dict[str, dict[str, float]]:
        out = {}
        for stage, ms in self.samples.items():
            arr = np.asarray(ms[warmup:] or ms)
            out[stage] = {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}
        return out


def run_bench(
    perception: Perception,
    frames: Iterator[np.ndarray],
    look: Look,
    *,
    fps: float = 30.0,
    warmup: int = 10,
    blur: bool = True,
) -> dict[str, Any]:
    """Time each stage per frame; returns p50/p95 per stage, frames processed and the face count."""
    cv2.setNumThreads(1)
    tracker = perception.tracker()
    renderer = LookRenderer(look, fade_s=0.0)
    segmenter = None
    compositor = None
    if blur:
        compositor = BackgroundCompositor(Background(mode="blur", blur=0.6))
    times = StageTimes()
    n = 0
    faces_seen = 0
    for i, frame in enumerate(frames):
        if segmenter is None and blur:
            segmenter = perception.segmenter(landscape=frame.shape[1] > frame.shape[0])
        t = i / fps
        t0 = time.perf_counter()
        faces = tracker.process(frame, t)
        t1 = time.perf_counter()
        out = renderer.render(frame, faces, t)
        t2 = time.perf_counter()
        times.add("track", t1 - t0)
        times.add("render", t2 - t1)
        if segmenter is not None and compositor is not None:
            (mask,) = segmenter.run([frame])
            t3 = time.perf_counter()
            compositor.apply(out, mask, t)
            t4 = time.perf_counter()
            times.add("person_mask", t3 - t2)
            times.add("background", t4 - t3)
            times.add("total", t4 - t0)
        else:
            times.add("total", t2 - t0)
        faces_seen += len(faces)
        n += 1
    return {
        "frames": n,
        "mean_faces": faces_seen / max(n, 1),
        "size": None if n == 0 else list(frame.shape[1::-1]),
        "stages": times.summary(min(warmup, max(n - 1, 0))),
    }


def format_bench(result: dict[str, Any]) -> str:
    lines = [f"frames {result['frames']}  size {result['size']}  faces/frame {result['mean_faces']:.2f}"]
    lines.append(f"{'stage':14s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for stage, st in result["stages"].items():
        lines.append(f"{stage:14s} {st['p50_ms']:8.2f} {st['p95_ms']:8.2f}")
    return "\n".join(lines)


class _FirstFrames:
    """A source that ends after ``n`` frames, so a benchmark processes exactly what it asked for."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = getattr(inner, "size", None)
        self.left = n

    def open(self) -> None:
        self.inner.open()

    def read(self, *, timeout: float) -> Any:
        from facetory_cam.interfaces import EndOfStream

        if self.left <= 0:
            raise EndOfStream("benchmark frame budget reached")
        frame = self.inner.read(timeout=timeout)
        if frame is not None:
            self.left -= 1
        return frame

    def close(self) -> None:
        self.inner.close()


def bench_pipeline(
    perception: Perception,
    settings: Any,
    source: Path,
    look: Look,
    *,
    frames: int,
    paced: bool,
) -> dict[str, Any]:
    """Run the real threaded pipeline on a video to a null sink: flat out (every frame) or paced in real time.

    Returns throughput, output rate, repeated and dropped frames, per-stage and
    capture-to-sink latency percentiles over the whole run, and CPU use (100 % is one core).
    """
    from facetory_cam.daemon.commands import ControlState
    from facetory_cam.daemon.pipeline import Pipeline
    from facetory_cam.sinks.null import NullSink
    from facetory_cam.sources.video import VideoFileSource

    video = VideoFileSource(source, loop=True, realtime=paced)
    src = _FirstFrames(video, frames)
    width, height = video.size
    fps = float(video.fps)
    sink = NullSink((width, height), fps, history=frames * 4 + 100)
    pipe = Pipeline(
        [src],
        [[sink]],
        tracker=perception.tracker_from_settings(settings, live=paced),
        segmenter=lambda landscape: perception.segmenter(landscape=landscape),
        state=ControlState(look=look),
        fps=fps,
        paced=paced,
        stats_window=frames + 10,
        split_stages=settings.daemon.split_stages,
    )
    cpu0, t0 = time.process_time(), time.monotonic()
    pipe.start()
    pipe.wait(timeout=frames / fps * 3 + 60)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    pipe.stop(2.0)
    snap = pipe.snapshot()
    records = sink.records()
    seen: set[int] = set()
    fresh = []
    for r in records:
        if r.seq not in seen:
            seen.add(r.seq)
            fresh.append(r.latency * 1000.0)
    lat = np.asarray(fresh) if fresh else np.zeros(1)
    counters = snap["counters"]
    return {
        "mode": "paced" if paced else "flat out",
        "source": str(source),
        "size": [width, height],
        "source_fps": fps,
        "frames_in": counters.get("frames_in", 0),
        "frames_processed": len(seen),
        "frames_out": sink.frames,
        "repeated": counters.get("repeated", 0),
        "dropped": counters.get("dropped", 0),
        "stage_errors": counters.get("stage_errors", 0),
        "elapsed_s": elapsed,
        "throughput_fps": len(seen) / elapsed if elapsed > 0 else 0.0,
        "output_fps": sink.frames / elapsed if elapsed > 0 else 0.0,
        "stages": {k: {"p50_ms": v["p50_ms"], "p95_ms": v["p95_ms"]} for k, v in snap["stages"].items()},
        "latency": {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))},
        "cpu_percent": 100.0 * cpu / elapsed if elapsed > 0 else 0.0,
    }


def format_pipeline_bench(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"pipeline {r['mode']}: {r['size'][0]}x{r['size'][1]} @ {r['source_fps']:.2f} fps, "
        f"{r['frames_processed']} frames processed in {r['elapsed_s']:.1f} s",
        f"  throughput {r['throughput_fps']:.1f} fps  output {r['output_fps']:.1f} fps  "
        f"repeated {r['repeated']}  dropped {r['dropped']}  errors {r['stage_errors']}  CPU {r['cpu_percent']:.0f} %",
        f"  latency capture->sink p50 {r['latency']['p50_ms']:.1f} ms  p95 {r['latency']['p95_ms']:.1f} ms",
    ]
    for stage, st in r["stages"].items():
        lines.append(f"  {stage:14s} {st['p50_ms']:8.2f} {st['p95_ms']:8.2f}")
    return "\n".join(lines)
