"""One Euro filter for landmark smoothing, vectorised over whole arrays.

The 1-euro filter (Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based
Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012) is a
first-order low-pass whose cutoff rises with the signal's speed: a still face
is smoothed hard (no jitter) while a moving face is followed closely (little
lag). Every element of the input array is filtered independently, the way
MediaPipe's LandmarksSmoothingCalculator runs one filter per coordinate.

Scale normalisation follows MediaPipe: the speed that drives the cutoff is
measured in units of ``scale`` per second (for landmarks, face sizes per
second), which is the same as dividing ``beta`` by ``scale``. Positions are
low-passed in their own units, so for a constant scale the output equals
filtering ``x / scale`` and multiplying back, and a scale that changes from
frame to frame cannot make the output jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["OneEuroFilter"]

_F64 = NDArray[np.float64]


def _alpha(cutoff: float | _F64, dt: float) -> float | _F64:
    """Smoothing factor of an exponential low-pass with ``cutoff`` Hz over a step of ``dt`` seconds."""
    # alpha = 1 / (1 + tau / dt) with tau = 1 / (2 pi cutoff).
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))


@dataclass(frozen=True, slots=True)
class _State:
    """Everything the filter remembers between frames, replaced whole so a rejected frame leaves no trace."""

    t: float
    x_raw: _F64  # previous input, for the speed estimate
    x_hat: _F64  # previous output
    dx_hat: _F64  # low-passed speed, in units of scale per second


class OneEuroFilter:
    """Speed-adaptive low-pass filter for arrays of any shape sampled at increasing timestamps.

    ``min_cutoff`` (Hz) sets the smoothing of a still signal: lower means less jitter
    but more lag. ``beta`` (per scale-normalised unit of speed) sets how fast the
    cutoff rises with speed: higher means less lag when moving. ``d_cutoff`` (Hz)
    smooths the speed estimate itself.
    """

    __slots__ = ("_beta", "_d_cutoff", "_min_cutoff", "_state")

    def __init__(self, *, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        if not (math.isfinite(min_cutoff) and min_cutoff > 0.0):
            raise ValueError(f"min_cutoff must be a positive number of Hz, got {min_cutoff!r}")
        if not (math.isfinite(beta) and beta >= 0.0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if not (math.isfinite(d_cutoff) and d_cutoff > 0.0):
            raise ValueError(f"d_cutoff must be a positive number of Hz, got {d_cutoff!r}")
        self._min_cutoff = float(min_cutoff)
        self._beta = float(beta)
        self._d_cutoff = float(d_cutoff)
        self._state: _State | None = None

    @property
    def min_cutoff(self) -> float:
        return self._min_cutoff

    @property
    def beta(self) -> float:
        return self._beta

    @property
    def d_cutoff(self) -> float:
        return self._d_cutoff

    def reset(self) -> None:
        """Forget the history, e.g. when a track is lost; the next call passes its input through."""
        self._state = None

    def __call__(self, x: ArrayLike, t: float, *, scale: float = 1.0) -> np.ndarray:
        """Filter one frame ``x`` taken at ``t`` seconds and return the smoothed array.

        ``scale`` is the size of the object in the units of ``x`` (e.g. the face width
        in pixels), so that the same parameters suit near and far faces. The result has
        the shape of ``x`` and, for floating-point input, its dtype (other input comes
        back as float64). The first call after construction or :meth:`reset` returns a
        copy of ``x``. Timestamps must increase strictly; a frame that is out of order,
        changes shape, or holds NaN/inf raises ValueError and leaves the state untouched.
        """
        arr = np.asarray(x)
        out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
        values = arr.astype(np.float64)  # always a copy: the caller may reuse its buffer
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"timestamp must be finite, got {t!r}")
        if not (math.isfinite(scale) and scale > 0.0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if not np.isfinite(values).all():
            raise ValueError("input contains NaN or infinity")

        state = self._state
        if state is None:
            self._state = _State(t=t, x_raw=values, x_hat=values, dx_hat=np.zeros_like(values))
            return values.astype(out_dtype)
        if values.shape != state.x_raw.shape:
            raise ValueError(f"input shape {values.shape} differs from the previous {state.x_raw.shape}")
        dt = t - state.t
        if dt <= 0.0:
            raise ValueError(f"timestamp {t!r} s is not after the previous frame's {state.t!r} s")

        dx = (values - state.x_raw) / (dt * scale)
        dx_hat = state.dx_hat + _alpha(self._d_cutoff, dt) * (dx - state.dx_hat)
        cutoff = self._min_cutoff + self._beta * np.abs(dx_hat)
        x_hat = state.x_hat + _alpha(cutoff, dt) * (values - state.x_hat)
        self._state = _State(t=t, x_raw=values, x_hat=x_hat, dx_hat=dx_hat)
        return x_hat.astype(out_dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_cutoff={self._min_cutoff!r}, beta={self._beta!r}, d_cutoff={self._d_cutoff!r})"
        )
