"""The small protocols at the project's seams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs one model on a batch.

    ``run`` takes an NHWC float32 batch already normalised to the model's input
    range and returns the model's outputs in manifest order, each with the batch
    as its first dimension. Raises ``ValueError`` for a batch of the wrong shape.
    """

    name: str
    model_name: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured picture and where it came from.

    ``seq`` rises by one per frame a source delivers (it never repeats, even across
    reconnects) and ``t_capture`` is ``time.monotonic()`` when the frame was read, so
    latency is measured from the capture, not guessed.
    """

    image: np.ndarray  # HxWx3 uint8, RGB
    seq: int
    t_capture: float
    source: str = "0"


class SourceLost(RuntimeError):
    """The source stopped delivering (unplugged, busy, hung); the capture thread reopens it."""


class EndOfStream(Exception):
    """A finite source (a file played once) has no more frames; nothing to reopen."""


@runtime_checkable
class FrameSource(Protocol):
    """Delivers frames; owned and read by one capture thread.

    ``open`` raises ``SourceLost`` when the device cannot be opened now (the caller
    retries with backoff) and ``ValueError`` for a spec that can never work.
    ``read`` blocks until the next frame (at most ``timeout`` seconds; ``None`` on a
    timeout), raises ``SourceLost`` when the source is gone and ``EndOfStream`` when a
    finite source is done. ``close`` is idempotent and may be called from another thread
    to unblock a hung ``read``.
    """

    name: str

    def open(self) -> None: ...

    def read(self, *, timeout: float) -> Frame | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Receives output frames at a size and rate fixed when it was made.

    ``send`` takes an RGB image of exactly ``size`` (width, height); it raises
    ``ValueError`` on any other shape, so a consumer never sees the format change.
    ``close`` is idempotent.
    """

    name: str
    size: tuple[int, int]
    fps: float

    def send(self, image: np.ndarray, *, seq: int, t_capture: float) -> None: ...

    def close(self) -> None: ...
