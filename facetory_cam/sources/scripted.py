"""A synthetic camera that misbehaves on cue, for fault-injection tests.

A :class:`ScriptedSource` runs a script of steps (:class:`Normal`, :class:`Slow`,
:class:`Stall`, :class:`Raise`, :class:`Freeze`, :class:`Disconnect`) in order and then,
with ``repeat_last=True``, delivers normal frames forever (otherwise ``EndOfStream``).
Every wait is a sleep on an event, so a stalled or disconnected source costs no CPU and
``close()`` from another thread wakes a blocked ``read`` at once.

Where the frame number sits: every frame carries the low 16 bits of its ``seq`` in a
block of square cells at the top-left corner of the picture, 10 cells wide and 3 tall.
Row 0 is a clock track (white, black, white, ...; the corner cell is always white), rows
1-2 hold 20 bits left to right, top row first: seq bits 0-15 (LSB first, white = 1)
then a 4-bit check. The cell side is about a 32nd of the width, so the block survives
scaling, letterboxing with black bars and ordinary JPEG/H.264 compression;
:func:`decode_seq` finds the block's corner, measures the cell size from the clock
track and reads it back. The rest of the picture is the base image shifted one pixel
to the right per frame, so consecutive frames differ.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facetory_cam.interfaces import EndOfStream, Frame, SourceLost
from facetory_cam.sources.pacing import next_due

_COLS = 10
_DATA_ROWS = 2
_SEQ_BITS = 16
_CHECK_BITS = 4


@dataclass(frozen=True, slots=True)
class Normal:
    """``n`` frames at the source's frame rate."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"Normal(n={self.n}): n must be >= 0")


@dataclass(frozen=True, slots=True)
class Slow:
    """``n`` frames, each delivered ``delay`` seconds late; ``read`` blocks past its timeout (that is the fault)."""

    n: int
    delay: float

    def __post_init__(self) -> None:
        if self.n < 0 or self.delay < 0:
            raise ValueError(f"Slow(n={self.n}, delay={self.delay}): both must be >= 0")


@dataclass(frozen=True, slots=True)
class Stall:
    """Nothing for ``seconds`` (``read`` returns ``None`` on its timeouts), then frames resume by themselves."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError(f"Stall(seconds={self.seconds}): seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class Raise:
    """The next ``n`` reads raise ``RuntimeError("scripted failure")``: a bug, not a lost device."""

    n: int = 1

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"Raise(n={self.n}): n must be >= 0")


@dataclass(frozen=True, slots=True)
class Freeze:
    """A hung driver: ``read`` returns ``None`` forever, until the source is closed and reopened."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Unplugged: ``read`` raises ``SourceLost`` and ``open`` keeps raising it for ``seconds``;
    the camera then comes back, at ``size`` (width, height) when given."""

    seconds: float
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError(f"Disconnect(seconds={self.seconds}): seconds must be >= 0")
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise ValueError(f"Disconnect(size={self.size}): width and height must be positive")


Step = Normal | Slow | Stall | Raise | Freeze | Disconnect


def default_script(fps: float = 30.0) -> tuple[Step, ...]:
    """A short tour of every recoverable fault between stretches of normal frames (used by ``scripted:``)."""
    second = max(1, round(fps))
    return (
        Normal(3 * second),
        Slow(max(1, second // 3), 0.05),
        Normal(2 * second),
        Stall(1.5),
        Normal(2 * second),
        Raise(1),
        Normal(2 * second),
        Disconnect(1.0),
    )


def cell_size(width: int, height: int) -> int:
    """Side in pixels of one code cell for a frame of this size (the block is 10 x 3 cells)."""
    return max(3, min(width // 32, height // 12))


def _check(seq16: int) -> int:
    nibbles = (seq16 >> 0) & 0xF, (seq16 >> 4) & 0xF, (seq16 >> 8) & 0xF, (seq16 >> 12) & 0xF
    return (sum(nibbles) + 5) & 0xF


def _bits(seq: int) -> list[int]:
    seq16 = seq & 0xFFFF
    value = seq16 | (_check(seq16) << _SEQ_BITS)
    return [(value >> i) & 1 for i in range(_SEQ_BITS + _CHECK_BITS)]


def paint_seq(image: np.ndarray, seq: int) -> np.ndarray:
    """Draw the code for ``seq`` into the top-left corner of ``image`` (HxWx3 uint8, in place) and return it."""
    h, w = image.shape[:2]
    c = cell_size(w, h)
    if _COLS * c > w or (1 + _DATA_ROWS) * c > h:
        raise ValueError(f"a {w}x{h} frame is too small for the seq code (needs {_COLS * 3}x{3 * 3})")
    for col in range(_COLS):
        image[0:c, col * c : (col + 1) * c] = 255 if col % 2 == 0 else 0
    for i, bit in enumerate(_bits(seq)):
        row, col = 1 + i // _COLS, i % _COLS
        image[row * c : (row + 1) * c, col * c : (col + 1) * c] = 255 * bit
    return image


def _corner(bright: np.ndarray) -> tuple[int, int] | None:
    """Top-left of the picture inside any black bars: the always-white clock cell is its first bright pixel."""
    rows = np.flatnonzero(bright.any(axis=1))
    if rows.size == 0:
        return None
    y0 = int(rows[0])
    cols = np.flatnonzero(bright[y0 : y0 + 3].any(axis=0))
    return (int(cols[0]), y0) if cols.size else None


def _sample(gray: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    xi = np.clip(np.floor(xs).astype(np.intp), 0, w - 1)
    yi = np.clip(np.floor(ys).astype(np.intp), 0, h - 1)
    return gray[yi, xi]


def decode_seq(image: np.ndarray) -> int | None:
    """The low 16 bits of the seq painted by :func:`paint_seq`, or ``None`` when no valid code is found.

    Works on the frame as delivered and after scaling, letterboxing (black bars) and mild
    lossy compression; it tries the clock positions that fit best and accepts the first
    whose check bits agree, so a damaged code reads as ``None`` rather than a wrong number.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        return None
    rgb = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = gray.shape
    corner = _corner(gray > 128)
    if corner is None:
        return None
    x0, y0 = corner
    probe_y = min(h - 1, y0 + 1)
    run = 0
    while x0 + run < w and gray[probe_y, x0 + run] > 128:
        run += 1
    if run < 2:
        return None
    sizes = np.arange(max(1.5, run * 0.6), run * 1.5 + 1.0, 0.25)
    shifts = np.array([(dx, dy) for dy in (-1.0, 0.0, 1.0) for dx in (-1.0, 0.0, 1.0)])
    # every (shift, cell size) pair at once: rows of the clock-track sample positions
    bx = np.repeat(x0 + shifts[:, 0], sizes.size)
    by = np.repeat(y0 + shifts[:, 1], sizes.size)
    cs = np.tile(sizes, len(shifts))
    xs = bx[:, None] + (np.arange(_COLS) + 0.5)[None, :] * cs[:, None]
    ys = np.broadcast_to((by + 0.5 * cs)[:, None], xs.shape)
    clock = np.where(np.arange(_COLS) % 2 == 0, 1.0, -1.0)
    worst = ((_sample(gray, xs, ys) - 128.0) * clock).min(axis=1)
    candidates = [(float(worst[i]), float(bx[i]), float(by[i]), float(cs[i])) for i in np.flatnonzero(worst > 20.0)]
    candidates.sort(reverse=True)
    for _, bx, by, c in candidates[:12]:
        value = _read_bits(gray, bx, by, c)
        if value is not None:
            return value
    return None


def _read_bits(gray: np.ndarray, bx: float, by: float, c: float) -> int | None:
    """Average the middle half of each data cell (robust to blur and ringing) and verify the check bits."""
    h, w = gray.shape
    half = max(0.5, c / 4)
    value = 0
    for i in range(_SEQ_BITS + _CHECK_BITS):
        row, col = 1 + i // _COLS, i % _COLS
        cx, cy = bx + (col + 0.5) * c, by + (row + 0.5) * c
        x1, x2 = max(0, math.floor(cx - half)), min(w, math.ceil(cx + half))
        y1, y2 = max(0, math.floor(cy - half)), min(h, math.ceil(cy + half))
        if x2 <= x1 or y2 <= y1:
            return None
        if float(gray[y1:y2, x1:x2].mean()) > 128:
            value |= 1 << i
    seq16 = value & 0xFFFF
    return seq16 if value >> _SEQ_BITS == _check(seq16) else None


def synthetic_pattern(size: tuple[int, int]) -> np.ndarray:
    """A deterministic test card (colour ramps, a face-like oval, bars) with enough texture to show motion."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (60 + 150 * xx / max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (60 + 150 * yy / max(1, h - 1)).astype(np.uint8)
    img[..., 2] = (120 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0)).astype(np.uint8)
    centre, axes = (w // 2, h // 2), (max(1, w // 6), max(1, h // 4))
    cv2.ellipse(img, centre, axes, 0, 0, 360, (224, 172, 140), -1)
    eye_dy, eye_dx = axes[1] // 4, axes[0] // 2
    for sx in (-1, 1):
        cv2.circle(img, (centre[0] + sx * eye_dx, centre[1] - eye_dy), max(1, axes[0] // 6), (40, 30, 30), -1)
    mouth = (centre[0], centre[1] + axes[1] // 2)
    cv2.ellipse(img, mouth, (max(1, axes[0] // 2), max(1, axes[1] // 8)), 0, 0, 360, (170, 60, 70), -1)
    for i in range(8):
        x = int(w * (0.05 + 0.11 * i))
        cv2.rectangle(img, (x, int(h * 0.85)), (x + max(1, w // 20), h - 1), (30 * i, 255 - 30 * i, 128), -1)
    return img


class ScriptedSource:
    """A camera that follows a script of faults; see the module docstring for the steps and the seq code.

    ``open`` and ``read`` belong to one capture thread; ``close`` may come from any thread
    and makes a blocked ``read`` raise ``SourceLost`` at once. The script position
    survives ``close``/``open``: only a reached :class:`Freeze` or :class:`Disconnect`
    is finished by a reopen.
    """

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        script: Sequence[Step] = (),
        *,
        base_image: np.ndarray | None = None,
        repeat_last: bool = True,
        name: str = "scripted",
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if base_image is not None and (base_image.ndim != 3 or base_image.shape[2] != 3):
            raise ValueError(f"base_image must be HxWx3 RGB, got shape {base_image.shape}")
        self.name = name
        self.fps = float(fps)
        self.script: tuple[Step, ...] = tuple(script)
        self.repeat_last = repeat_last
        self._base_source = None if base_image is None else np.ascontiguousarray(base_image, dtype=np.uint8)
        self.size = (0, 0)
        self._base = np.zeros((1, 1, 3), np.uint8)
        self._set_size(size)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._gen = 0
        self._opened = False
        self._seq = 0
        self._next_due = 0.0
        self._index = 0
        self._left: int | None = None  # frames or raises left in the current step
        self._stall_end: float | None = None
        self._frozen = False
        self._reconnect_at: float | None = None
        self._reconnect_size: tuple[int, int] | None = None

    @property
    def step(self) -> Step | None:
        """The step being run now (``None`` once the script is done)."""
        return self.script[self._index] if self._index < len(self.script) else None

    def _set_size(self, size: tuple[int, int]) -> None:
        w, h = int(size[0]), int(size[1])
        c = cell_size(w, h)
        if _COLS * c > w or 3 * c > h:
            raise ValueError(f"size {w}x{h} is too small for a scripted source (at least 30x9)")
        self.size = (w, h)
        if self._base_source is None:
            self._base = synthetic_pattern(self.size)
        else:
            self._base = cv2.resize(self._base_source, self.size, interpolation=cv2.INTER_AREA)

    def open(self) -> None:
        """Start delivering; raises ``SourceLost`` while a scripted disconnect lasts."""
        with self._lock:
            now = time.monotonic()
            if self._reconnect_at is not None:
                if now < self._reconnect_at:
                    left = self._reconnect_at - now
                    raise SourceLost(f"{self.name}: scripted disconnect, the camera comes back in {left:.2f} s")
                self._reconnect_at = None
                if self._reconnect_size is not None:
                    self._set_size(self._reconnect_size)
                    self._reconnect_size = None
            if self._frozen:
                self._frozen = False
                self._advance()
            if self._opened:
                self._wake.set()
            self._gen += 1
            self._wake = threading.Event()
            self._opened = True
            self._next_due = now

    def close(self) -> None:
        """Stop; idempotent and safe from any thread (wakes a blocked ``read``)."""
        with self._lock:
            if self._opened:
                self._opened = False
                self._gen += 1
            self._wake.set()

    def read(self, *, timeout: float) -> Frame | None:
        """Run the script until a frame is due (``None`` when ``timeout`` passes first; Slow ignores it)."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if not self._opened:
                raise SourceLost(f"{self.name}: the source is not open")
            wake, gen = self._wake, self._gen
        while True:
            step = self.step
            if step is None:
                if not self.repeat_last:
                    raise EndOfStream(f"{self.name}: the script is done")
                return self._frame(wake, gen, deadline)
            if isinstance(step, Normal | Slow):
                if self._left is None:
                    self._left = step.n
                if self._left <= 0:
                    self._advance()
                    continue
                if isinstance(step, Slow):
                    frame = self._frame(wake, gen, math.inf, delay=step.delay)
                else:
                    frame = self._frame(wake, gen, deadline)
                if frame is not None:
                    self._left -= 1
                    if self._left <= 0:
                        self._advance()
                return frame
            if isinstance(step, Stall):
                if self._stall_end is None:
                    self._stall_end = time.monotonic() + step.seconds
                if not self._wait(wake, gen, self._stall_end, deadline):
                    return None
                self._advance()
                self._next_due = max(self._next_due, time.monotonic())
                continue
            if isinstance(step, Raise):
                if self._left is None:
                    self._left = step.n
                if self._left <= 0:
                    self._advance()
                    continue
                self._left -= 1
                if self._left <= 0:
                    self._advance()
                raise RuntimeError("scripted failure")
            if isinstance(step, Freeze):
                self._frozen = True
                self._wait(wake, gen, math.inf, deadline)
                return None
            # Disconnect: the device is gone until the step's time has passed
            with self._lock:
                self._reconnect_at = time.monotonic() + step.seconds
                self._reconnect_size = step.size
                self._advance()
                if self._gen == gen:
                    self._opened = False
                    self._gen += 1
            raise SourceLost(f"{self.name}: scripted disconnect for {step.seconds:g} s")

    def _advance(self) -> None:
        self._index += 1
        self._left = None
        self._stall_end = None

    def _wait(self, wake: threading.Event, gen: int, until: float, deadline: float) -> bool:
        """Sleep until ``until`` (True) or ``deadline`` (False); raise ``SourceLost`` if closed meanwhile."""
        while True:
            if self._gen != gen:
                raise SourceLost(f"{self.name}: closed while reading")
            now = time.monotonic()
            if now >= until:
                return True
            if now >= deadline:
                return False
            wake.wait(min(until, deadline) - now)

    def _frame(self, wake: threading.Event, gen: int, deadline: float, *, delay: float = 0.0) -> Frame | None:
        """The next frame at its due time; a late consumer gets one frame at once, never a burst."""
        period = 1.0 / self.fps
        due = max(self._next_due, time.monotonic()) + delay if delay else self._next_due
        if not self._wait(wake, gen, due, deadline):
            return None
        self._next_due = next_due(due, period, time.monotonic())
        seq = self._seq
        self._seq += 1
        image = np.roll(self._base, seq % self.size[0], axis=1)
        paint_seq(image, seq)
        return Frame(image=image, seq=seq, t_capture=time.monotonic(), source=self.name)
