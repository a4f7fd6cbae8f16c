"""Colour helpers shared by the makeup layers.

Makeup is applied in CIELAB so that lightness (shading, texture, highlights)
comes from the original skin while chroma moves towards the product colour.
"""

from __future__ import annotations

import cv2
import numpy as np


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float32 sRGB in [0, 1] -> Lab (L 0..100, a/b about -128..127)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def color_lab(rgb: tuple[float, float, float]) -> np.ndarray:
    """Lab of one sRGB colour, shape (3,)."""
    return rgb_to_lab(np.asarray(rgb, dtype=np.float32).reshape(1, 1, 3)).reshape(3)


def active_box(mask: np.ndarray, threshold: float = 1e-3) -> tuple[slice, slice] | None:
    """The smallest (rows, cols) slices holding every mask value above threshold, or None."""
    rows = np.flatnonzero(mask.max(axis=1) > threshold)
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].max(axis=0) > threshold)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of (h, w, c) values weighted by an (h, w) mask."""
    total = float(weights.sum())
    if total <= 1e-6:
        return values.reshape(-1, values.shape[-1]).mean(axis=0)
    return (values * weights[..., None]).reshape(-1, values.shape[-1]).sum(axis=0) / total


def blend(base: np.ndarray, color: np.ndarray, alpha: np.ndarray, mode: str = "normal") -> np.ndarray:
    """``color`` (flat or per-pixel) composited over ``base`` with a blend mode and (h, w) coverage."""
    c = np.asarray(color, dtype=np.float32)
    if c.ndim == 1:
        c = c.reshape(1, 1, 3)
    if mode == "multiply":
        top = base * c
    elif mode == "soft_light":  # Pegtop soft light: smooth, keeps texture
        top = (1.0 - 2.0 * c) * base * base + 2.0 * c * base
    elif mode == "screen":
        top = 1.0 - (1.0 - base) * (1.0 - c)
    else:
        top = np.broadcast_to(c, base.shape)
    return base + (top - base) * alpha[..., None]


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged downscale to ``size`` (width, height), fast for effects that work at low resolution.

    Exact 2x2 averages (bilinear at exactly half size) while the image is at least twice the target,
    then one bilinear step: as smooth as ``INTER_AREA`` but several times cheaper, since OpenCV's area
    resampling is slow for non-integer factors.
    """
    w, h = max(1, int(size[0])), max(1, int(size[1]))
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
    if (image.shape[1], image.shape[0]) != (w, h):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image


def apply_gain(image: np.ndarray, gain: np.ndarray) -> None:
    """Multiply a per-pixel gain (1 = unchanged), usually low-resolution, into an (h, w, 3) float image, in place.

    The gain is upsampled bilinearly; where it is exactly 1 (outside an effect) it stays exactly 1, so
    those pixels are left as they were. A gain keeps everything finer than its own resolution (texture,
    pores, fine shading) as it was, which is why skin effects are built as gains.
    """
    h, w = image.shape[:2]
    full = np.ascontiguousarray(gain, dtype=np.float32)
    if full.shape[:2] != (h, w):
        full = cv2.resize(full, (w, h), interpolation=cv2.INTER_LINEAR)
    if full.ndim == 2:
        full = cv2.merge([full, full, full])
    brighter = float(gain.max()) > 1.0
    if image.dtype == np.float32 and image.strides[1:] == (12, 4):  # OpenCV writes into such a view directly
        cv2.multiply(image, full, dst=image)
        if brighter:
            cv2.threshold(image, 1.0, 1.0, cv2.THRESH_TRUNC, dst=image)
    else:
        np.multiply(image, full, out=image)
        if brighter:
            np.minimum(image, 1.0, out=image)
