"""The processing stage: tracking, makeup and background for every source, one thread.

Each round takes the newest frame of every source that has one and sends them
through the stages together, so the tracker's and the segmenter's model calls
are batched across sources. A stage that raises costs only that stage for that
frame: the frame goes on without it (pass-through) and the error is logged at a
bounded rate. Control commands are applied between rounds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from facetory_cam.daemon.commands import Command, ControlState, SetSource
from facetory_cam.daemon.memory import settle_heap
from facetory_cam.daemon.ratelimit import RateLimitedLog
from facetory_cam.daemon.slot import Closed, Slot
from facetory_cam.daemon.stats import PipelineStats
from facetory_cam.interfaces import Frame
from facetory_cam.looks.background import BackgroundCompositor
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Look
from facetory_cam.vision.segmentation import PersonSegmenter
from facetory_cam.vision.tracker import Face, FaceTracker

log = logging.getLogger(__name__)


@dataclass
class Lane:
    """One source's way through the processor: its slots and its stateful per-source stages."""

    key: str
    inputs: Slot[Frame]
    outputs: Slot[Frame]
    renderer: LookRenderer | None = None
    compositor: BackgroundCompositor | None = None
    size: tuple[int, int] | None = None
    faces: list[Face] = field(default_factory=list)


@dataclass
class _Work:
    """One round between the two stages: the frames, the look to apply and the faces found."""

    batch: list[tuple[Lane, Frame]]
    look: Look | None
    faces: list[list[Face]]
    times: list[float]
    resized: set[str] = field(default_factory=set)  # lanes whose frame size changed this round
    seconds: float = 0.0  # time the first stage took


class Processor:
    def __init__(
        self,
        lanes: Sequence[Lane],
        *,
        tracker: FaceTracker | None,
        segmenter: Callable[[bool], PersonSegmenter] | None,
        stats: PipelineStats,
        state: ControlState,
        wake: threading.Condition,
        media_fps: float | None = None,
        on_switch: Callable[[SetSource], None] | None = None,
        split: bool = False,
    ) -> None:
        self.lanes = list(lanes)
        self.tracker = tracker
        self._segmenter_for = segmenter  # landscape flag -> segmenter, opened on first use
        self._segmenters: dict[bool, PersonSegmenter] = {}
        self.stats = stats
        self.state = state
        self.wake = wake
        self.media_fps = media_fps  # offline runs: time from frame numbers, not the wall clock
        self.on_switch = on_switch
        self.commands: queue.Queue[Command] = queue.Queue()
        self._errors = RateLimitedLog(log, every=5.0)
        self._stop = threading.Event()
        self._look: Look | None = None  # what the first stage hands on
        self._look_has_layers = False  # whether it paints faces (else tracking is skipped)
        self._set_look(state.effective_look())
        self._rendered_look: Look | None = None  # what the renderers were last set to
        self._apply_look(self._look)
        self.on_frame: Callable[[Lane, Frame, np.ndarray], None] | None = None  # sees every processed frame
        # Split: tracking of round n+1 overlaps makeup of round n on a second core. Throughput
        # doubles when both stages are heavy (a crowd); a frame's own latency stays the same.
        self._mid: Slot[_Work] | None = Slot(lossless=True) if split else None
        self._inflight = 0  # rounds handed to the second stage and not yet sent
        self._settled = False  # whether the heap was settled after the first round (see memory.py)
        self._count_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name="processing", daemon=True)]
        if split:
            self._threads.append(threading.Thread(target=self._run_finish, name="processing-finish", daemon=True))

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        if self._mid is not None:
            self._mid.close()
        with self.wake:
            self.wake.notify_all()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        return not any(t.is_alive() for t in self._threads)

    def submit(self, cmd: Command) -> None:
        self.commands.put(cmd)
        with self.wake:
            self.wake.notify_all()

    def _drain_commands(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(cmd, SetSource):
                if self.on_switch is not None:
                    self.on_switch(cmd)
                continue
            try:
                self.state = self.state.apply(cmd)
            except ValueError as exc:
                log.error("ignored command %s: %s", cmd, exc)
                continue
            self._set_look(self.state.effective_look())  # the second stage picks it up with the next round

    def _set_look(self, look: Look | None) -> None:
        self._look = look
        self._look_has_layers = look is not None and bool(look.layers.model_dump(exclude_none=True))

    def _apply_look(self, look: Look | None) -> None:
        self._rendered_look = look
        for lane in self.lanes:
            if look is None:
                lane.renderer = None
                lane.compositor = None
                continue
            if lane.renderer is None:
                lane.renderer = LookRenderer(look)
            else:
                lane.renderer.set_look(look)
            old = lane.compositor
            if old is None or old.settings != look.background:
                try:
                    lane.compositor = BackgroundCompositor(look.background) if look.background.mode != "none" else None
                except Exception as exc:  # e.g. a background image that went missing
                    self._errors.error("background switched off: %s", exc)
                    lane.compositor = None

    # -- the loop ------------------------------------------------------------------------
    def _gather(self) -> list[tuple[Lane, Frame]]:
        with self.wake:
            self.wake.wait_for(
                lambda: (
                    self._stop.is_set()
                    or not self.commands.empty()
                    or any(lane.inputs.peek_ready() or lane.inputs.closed for lane in self.lanes)
                ),
                timeout=0.1,
            )
        got = []
        for lane in self.lanes:
            frame = lane.inputs.take()
            if frame is not None:
                got.append((lane, frame))
        return got

    def _run(self) -> None:
        """Gather, track and (when not split) finish each round on this thread."""
        while not self._stop.is_set():
            self._drain_commands()
            batch = self._gather()
            for lane in self.lanes:
                ended = lane.inputs.closed and not lane.inputs.peek_ready()
                if ended and not lane.outputs.closed and not any(b[0] is lane for b in batch):
                    if self._inflight == 0:
                        lane.outputs.close()  # the source ended and its last frame is out: the output can finish
            if not batch:
                continue
            t0 = time.perf_counter()
            work = self._track(batch)
            work.seconds = time.perf_counter() - t0
            if self._mid is None:
                self._finish_and_send(work)
                continue
            with self._count_lock:
                self._inflight += 1
            try:
                while not self._mid.put(work, timeout=0.5):
                    if self._stop.is_set():
                        return
            except Closed:
                return

    def _run_finish(self) -> None:
        """The second stage when split: makeup and background of the round the first stage tracked."""
        assert self._mid is not None
        while not self._stop.is_set():
            work = self._mid.take(timeout=0.1)
            if work is not None:
                try:
                    self._finish_and_send(work)
                finally:
                    with self._count_lock:
                        self._inflight -= 1

    def _finish_and_send(self, work: _Work) -> None:
        t0 = time.perf_counter()
        images = self._finish(work)
        self.stats.stage("process", work.seconds + time.perf_counter() - t0)
        for (lane, frame), image in zip(work.batch, images):
            if self.on_frame is not None:
                self.on_frame(lane, frame, image)
            try:
                while not lane.outputs.put(Frame(image, frame.seq, frame.t_capture, lane.key), timeout=0.5):
                    if self._stop.is_set():
                        return
            except Closed:
                continue
        if not self._settled:  # the first round is out: modules are imported, models open, buffers made
            self._settled = True
            settle_heap()

    def _time(self, frame: Frame) -> float:
        return frame.seq / self.media_fps if self.media_fps else frame.t_capture

    def _track(self, batch: list[tuple[Lane, Frame]]) -> _Work:
        """First stage: the look to use and the faces of every frame of the round."""
        frames = [f for _, f in batch]
        lanes = [lane for lane, _ in batch]
        look = None if self.state.bypass else self._look
        times = [self._time(f) for f in frames]
        faces: list[list[Face]] = [[] for _ in frames]
        work = _Work(batch, look, faces, times)
        if look is None:
            return work
        images = [f.image for f in frames]
        for lane, image in zip(lanes, images):
            size = (image.shape[1], image.shape[0])
            if lane.size != size:  # a reconnect at another resolution: old tracks mean nothing
                if lane.size is not None and self.tracker is not None:
                    self.tracker.reset(lane.key)
                lane.size = size
                work.resized.add(lane.key)
        if self.tracker is not None and self._look_has_layers:
            t0 = time.perf_counter()
            try:
                work.faces = self.tracker.process_many(images, times, [lane.key for lane in lanes])
            except Exception as exc:
                self._stage_failed("track", exc)
                for lane in lanes:
                    self.tracker.reset(lane.key)
            self.stats.stage("track", time.perf_counter() - t0)
        return work

    def _finish(self, work: _Work) -> list[np.ndarray]:
        """Second stage: makeup on the tracked faces, then the background."""
        frames = [f for _, f in work.batch]
        lanes = [lane for lane, _ in work.batch]
        images = [f.image for f in frames]
        if work.look is None:
            for lane in lanes:
                lane.faces = []
            return images
        if work.look is not self._rendered_look:
            self._apply_look(work.look)
        for lane in lanes:
            if lane.key in work.resized and lane.compositor is not None:
                lane.compositor.reset()
        out = list(images)
        t0 = time.perf_counter()
        for i, lane in enumerate(lanes):
            lane.faces = work.faces[i]
            if lane.renderer is None or not work.faces[i]:
                continue
            try:
                out[i] = lane.renderer.render(images[i], work.faces[i], work.times[i])
            except Exception as exc:
                self._stage_failed("render", exc)
        self.stats.stage("render", time.perf_counter() - t0)
        want = [i for i, lane in enumerate(lanes) if lane.compositor is not None]
        if want and self._segmenter_for is not None:
            out = self._background(out, images, lanes, work.times, want)
        return out

    def _background(
        self, out: list[np.ndarray], images: list[np.ndarray], lanes: list[Lane], times: list[float], want: list[int]
    ) -> list[np.ndarray]:
        t0 = time.perf_counter()
        masks: dict[int, np.ndarray] = {}
        try:
            for landscape in (True, False):
                group = [i for i in want if (images[i].shape[1] > images[i].shape[0]) == landscape]
                if group:
                    seg = self._segmenter(landscape)
                    masks.update(zip(group, seg.run([images[i] for i in group], native=True)))
        except Exception as exc:
            self._stage_failed("person_mask", exc)
            return out
        t1 = time.perf_counter()
        self.stats.stage("person_mask", t1 - t0)
        for i in want:
            compositor = lanes[i].compositor
            if compositor is None or i not in masks:
                continue
            try:
                out[i] = compositor.apply(out[i], masks[i], times[i])
            except Exception as exc:
                self._stage_failed("background", exc)
        self.stats.stage("background", time.perf_counter() - t1)
        return out

    def _segmenter(self, landscape: bool) -> PersonSegmenter:
        if landscape not in self._segmenters:
            assert self._segmenter_for is not None
            self._segmenters[landscape] = self._segmenter_for(landscape)
        return self._segmenters[landscape]

    def _stage_failed(self, stage: str, exc: Exception) -> None:
        self.stats.count("stage_errors")
        self._errors.error("%s failed, frame passed through: %s", stage, exc, exc_info=True)
