"""Live pipeline statistics: rates, counters, per-stage and end-to-end percentiles.

Every thread records into one ``PipelineStats``; readers (the stats printer, the
API) take ``snapshot()``. Samples live in bounded windows so a long run costs
constant memory and the figures describe the recent past.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np

WINDOW = 300  # samples kept per series: ten seconds at 30 fps


def percentiles(samples: deque[float] | list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "n": 0}
    arr = np.fromiter(samples, dtype=np.float64) * 1000.0
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)), "n": int(arr.size)}


class _Rate:
    """Events per second over the last few seconds."""

    def __init__(self, span: float = 3.0) -> None:
        self.span = span
        self.times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self.times.append(now)
        while self.times and now - self.times[0] > self.span:
            self.times.popleft()

    def value(self, now: float) -> float:
        while self.times and now - self.times[0] > self.span:
            self.times.popleft()
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-6)


class PipelineStats:
    def __init__(self, *, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._stages: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self._window))
        self._latency: deque[float] = deque(maxlen=window)
        self._in: dict[str, _Rate] = defaultdict(_Rate)
        self._out: dict[str, _Rate] = defaultdict(_Rate)
        self.counters: dict[str, int] = defaultdict(int)
        self.sources: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self._stages[name].append(seconds)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def frame_in(self, source: str, now: float) -> None:
        with self._lock:
            self._in[source].tick(now)
            self.counters["frames_in"] += 1

    def frame_out(
        self, sink: str, now: float, *, fresh: bool, latency: float | None, placeholder: bool = False
    ) -> None:
        """One frame sent; a frame that is neither fresh nor a placeholder repeats the last one."""
        with self._lock:
            self._out[sink].tick(now)
            self.counters["frames_out"] += 1
            if placeholder:
                self.counters["placeholder"] += 1
            elif not fresh:
                self.counters["repeated"] += 1
            if latency is not None:
                self._latency.append(latency)

    def source_state(self, source: str, **state: Any) -> None:
        with self._lock:
            self.sources.setdefault(source, {}).update(state)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            return {
                "uptime_s": now - self.started,
                "input_fps": {k: r.value(now) for k, r in self._in.items()},
                "output_fps": {k: r.value(now) for k, r in self._out.items()},
                "counters": dict(self.counters),
                "stages": {k: percentiles(v) for k, v in self._stages.items()},
                "latency": percentiles(self._latency),
                "sources": {k: dict(v) for k, v in self.sources.items()},
            }


def format_stats(snap: dict[str, Any]) -> str:
    """One log line: rates, counters, then stage and latency percentiles."""
    fin = " ".join(f"{k}:{v:.1f}" for k, v in snap["input_fps"].items()) or "-"
    fout = " ".join(f"{k}:{v:.1f}" for k, v in snap["output_fps"].items()) or "-"
    c = snap["counters"]
    stages = " ".join(f"{k} {v['p50_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in snap["stages"].items())
    lat = snap["latency"]
    return (
        f"in fps {fin} | out fps {fout} | repeated {c.get('repeated', 0)} dropped {c.get('dropped', 0)}"
        f" placeholder {c.get('placeholder', 0)}"
        f" errors {c.get('stage_errors', 0)} | ms p50/p95: {stages} | latency {lat['p50_ms']:.1f}/{lat['p95_ms']:.1f}"
    )
