"""Wires sources, the processor and sinks into threads, and stops them cleanly.

Threads: one capture per source, one processor for all, one output per source.
Live mode (``paced``): sources keep only their newest frame and outputs run on a
clock. Offline mode: nothing is dropped and every input frame comes out once, in
order, as fast as the machine allows (files in, files out; throughput benchmarks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from facetory_cam.daemon.capture import CaptureWorker
from facetory_cam.daemon.commands import Command, ControlState, SetSource
from facetory_cam.daemon.output import OutputWorker
from facetory_cam.daemon.processing import Lane, Processor
from facetory_cam.daemon.slot import Slot
from facetory_cam.daemon.stats import PipelineStats
from facetory_cam.interfaces import Frame, FrameSource, Sink
from facetory_cam.vision.segmentation import PersonSegmenter
from facetory_cam.vision.tracker import FaceTracker

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        sources: Sequence[FrameSource],
        sinks: Sequence[Sequence[Sink]],
        *,
        tracker: FaceTracker | None,
        segmenter: Callable[[bool], PersonSegmenter] | None,
        state: ControlState,
        fps: float = 30.0,
        paced: bool = True,
        hang_after: float = 2.0,
        placeholder_after: float = 0.5,
        opener: Callable[[str], FrameSource] | None = None,
        stats_window: int = 300,
        split_stages: bool = False,
    ) -> None:
        if not sources:
            raise ValueError("a pipeline needs at least one source")
        if len(sinks) != len(sources):
            raise ValueError(f"{len(sources)} sources but sinks for {len(sinks)}: give each source its sinks")
        self.stats = PipelineStats(window=stats_window)
        self.paced = paced
        wake = threading.Condition()
        self.captures: list[CaptureWorker] = []
        self.outputs: list[OutputWorker] = []
        lanes: list[Lane] = []
        for i, (source, outs) in enumerate(zip(sources, sinks)):
            key = str(i)
            inputs: Slot[Frame] = Slot(lossless=not paced, on_change=wake)
            results: Slot[Frame] = Slot(lossless=not paced)
            capture = CaptureWorker(source, inputs, self.stats, key=key, hang_after=hang_after, opener=opener)
            self.captures.append(capture)
            lanes.append(Lane(key, inputs, results))
            self.outputs.append(
                OutputWorker(
                    outs,
                    results,
                    self.stats,
                    key=key,
                    fps=fps,
                    paced=paced,
                    last_frame_at=lambda c=capture: c.last_frame_at,
                    placeholder_after=placeholder_after,
                )
            )
        self.lanes = lanes
        self.processor = Processor(
            lanes,
            tracker=tracker,
            segmenter=segmenter,
            stats=self.stats,
            state=state,
            wake=wake,
            media_fps=None if paced else fps,
            on_switch=self._switch,
            split=split_stages,
        )
        self._started = False
        self._stopped = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a pipeline starts once")
        self._started = True
        for worker in (*self.captures, self.processor, *self.outputs):
            worker.start()

    def submit(self, cmd: Command) -> None:
        """Queue a control command; it takes effect before the next frame is processed."""
        if isinstance(cmd, SetSource) and not 0 <= cmd.index < len(self.captures):
            raise ValueError(f"no source {cmd.index}; this pipeline has {len(self.captures)}")
        self.processor.submit(cmd)

    def _switch(self, cmd: SetSource) -> None:
        self.captures[cmd.index].switch(cmd.spec)

    @property
    def finished(self) -> bool:
        """Every output is done (all sources were finite and have been played out)."""
        return all(o.done for o in self.outputs)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished or ``timeout``; True when finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def snapshot(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        snap["counters"]["dropped"] = sum(lane.inputs.dropped for lane in self.lanes)
        snap["state"] = {
            "look": None if self.processor.state.look is None else self.processor.state.look.name,
            "intensity": self.processor.state.intensity,
            "bypass": self.processor.state.bypass,
            "disabled_layers": sorted(self.processor.state.disabled_layers),
        }
        return snap

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop every thread and release the devices; True when all stopped within ``timeout``."""
        if self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout
        for capture in self.captures:
            capture.stop()
        self.processor.stop()
        for output in self.outputs:
            output.stop()
        for lane in self.lanes:
            lane.inputs.close()
            lane.outputs.close()
        ok = True
        for worker in (*self.captures, self.processor, *self.outputs):
            ok &= worker.join(max(deadline - time.monotonic(), 0.01))
        close = getattr(self.processor.tracker, "close", None)
        if close is not None:
            close()  # the detection worker
        if not ok:
            log.warning("some pipeline threads did not stop within %.1f s", timeout)
        return ok
