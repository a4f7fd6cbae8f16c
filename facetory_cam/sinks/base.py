"""Checks every sink shares, so a bad frame fails the same way whichever sink receives it."""

from __future__ import annotations

import math

import numpy as np


class SinkClosed(RuntimeError):
    """``send`` was called on a sink that was already closed."""


def check_geometry(size: tuple[int, int], fps: float) -> tuple[tuple[int, int], float]:
    """Validate a sink's fixed (width, height) and frame rate, which no later frame may change."""
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (width, height)):
        raise ValueError(f"size must be two integers, got {size!r}")
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise ValueError(f"size must be between 1 and 16384 pixels a side, got {width}x{height}")
    fps = float(fps)
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise ValueError(f"fps must be a number above 0 and at most 1000, got {fps!r}")
    return (int(width), int(height)), fps


def check_frame(image: np.ndarray, size: tuple[int, int]) -> None:
    """Raise ``ValueError`` unless ``image`` is an HxWx3 uint8 array of exactly ``size`` (width, height).

    Consumers of a virtual camera or a video file cannot follow a format change, so a frame
    of another size is a bug upstream and is refused rather than scaled.
    """
    width, height = size
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.shape != (height, width, 3):
        raise ValueError(f"expected an RGB image of shape {(height, width, 3)}, got {image.shape}")
