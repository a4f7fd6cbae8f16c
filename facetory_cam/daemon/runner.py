"""Builds a pipeline from settings and runs it until a signal or the end of its sources.

Start-up problems (missing models, no virtual camera, a camera that is busy or absent,
a bad config) surface before the loop with a message that says how to fix them. The
first SIGINT/SIGTERM stops the pipeline within two seconds and releases the camera and
the virtual camera; a second one exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from facetory_cam.config import Settings
from facetory_cam.daemon.commands import ControlState
from facetory_cam.daemon.pipeline import Pipeline
from facetory_cam.daemon.stats import format_stats
from facetory_cam.errors import SourceError
from facetory_cam.interfaces import FrameSource, Sink
from facetory_cam.looks.schema import Look

log = logging.getLogger(__name__)

STOP_TIMEOUT = 2.0


@dataclass(frozen=True)
class RunPlan:
    """What to run: resolved from the command line over the ``daemon`` settings."""

    sources: tuple[str, ...]
    sinks: tuple[str, ...]
    look: Look | None
    size: tuple[int, int] | None  # output size; None: each source's own size when it knows it
    fps: float
    paced: bool = True
    loop: bool = True


def sink_specs(sources: Sequence[str], sinks: Sequence[str]) -> tuple[str, ...]:
    """One sink per source, in order."""
    if len(sinks) == len(sources):
        return tuple(sinks)
    raise ValueError(f"{len(sources)} sources need {len(sources)} --sink options (one each), got {len(sinks)}")


def build_pipeline(
    settings: Settings,
    plan: RunPlan,
    *,
    perception: Any | None = None,
    extra_sinks: Callable[[int, tuple[int, int], float], list[Sink]] | None = None,
) -> Pipeline:
    """Open sources, sinks and models for ``plan``; raises with a fix-it message when one cannot open."""
    from facetory_cam.models.store import ModelStore
    from facetory_cam.sinks import open_sink
    from facetory_cam.sources import open_source
    from facetory_cam.vision.perception import Perception

    d = settings.daemon
    specs = sink_specs(plan.sources, plan.sinks)

    def opener(spec: str) -> FrameSource:
        return open_source(spec, width=d.width, height=d.height, fps=plan.fps, loop=plan.loop, realtime=plan.paced)

    sources = [opener(s) for s in plan.sources]
    if perception is None:
        perception = Perception(
            ModelStore(settings.models.resolved_cache_dir()),
            backend=settings.models.backend,
            threads=settings.models.threads,
        )
    tracker = perception.tracker_from_settings(settings, live=plan.paced)  # opens the models: missing ones fail here
    sinks: list[list[Sink]] = []
    try:
        for i, (source, spec) in enumerate(zip(sources, specs)):
            size = plan.size or _known_size(source) or (d.width, d.height)
            outs = [open_sink(spec, size=size, fps=plan.fps, backend=d.virtualcam_backend)]
            if extra_sinks is not None:
                outs.extend(extra_sinks(i, size, plan.fps))
            sinks.append(outs)
    except BaseException:
        for outs in sinks:
            for sink in outs:
                sink.close()
        raise
    return Pipeline(
        sources,
        sinks,
        tracker=tracker,
        segmenter=lambda landscape: perception.segmenter(landscape=landscape),
        state=ControlState(look=plan.look),
        fps=plan.fps,
        paced=plan.paced,
        hang_after=d.hang_after,
        placeholder_after=d.placeholder_after,
        opener=opener,
        split_stages=d.split_stages,
    )


def _known_size(source: FrameSource) -> tuple[int, int] | None:
    size = getattr(source, "size", None)
    if size is None:
        return None
    w, h = size
    return (int(w), int(h)) if w and h else None


def wait_for_first_frames(pipeline: Pipeline, timeout: float) -> None:
    """Raise ``SourceError`` (and stop the pipeline) when a source delivers nothing at start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.last_frame_at is not None or c.finished.is_set() for c in pipeline.captures):
            return
        time.sleep(0.02)
    silent = [c for c in pipeline.captures if c.last_frame_at is None and not c.finished.is_set()]
    reasons = "; ".join(f"{c.source_name}: {c.error or 'no frame'}" for c in silent)
    pipeline.stop(STOP_TIMEOUT)
    raise SourceError(f"no frames within {timeout:.0f} s from {reasons}. Run `facetory doctor` to check the camera.")


class SignalStop:
    """First SIGINT/SIGTERM asks for a clean stop; the second exits at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s: stopping (press Ctrl+C again to force)", signal.Signals(signum).name)
        self.event.set()

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run_pipeline(
    pipeline: Pipeline,
    *,
    stats_every: float = 0.0,
    startup_timeout: float = 5.0,
    stop: threading.Event | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run until stopped by a signal, by ``stop``, or by the end of every source; returns the last stats."""
    with SignalStop() as signals:
        pipeline.start()
        wait_for_first_frames(pipeline, startup_timeout)
        last_print = time.monotonic()
        while not signals.event.is_set() and not (stop is not None and stop.is_set()) and not pipeline.finished:
            signals.event.wait(0.1)
            now = time.monotonic()
            if stats_every > 0 and now - last_print >= stats_every:
                last_print = now
                snap = pipeline.snapshot()
                log.info("%s", format_stats(snap))
                if on_stats is not None:
                    on_stats(snap)
        snap = pipeline.snapshot()
        t0 = time.monotonic()
        clean = pipeline.stop(STOP_TIMEOUT)
        log.info("stopped in %.2f s%s", time.monotonic() - t0, "" if clean else " (some threads still busy)")
    return snap
