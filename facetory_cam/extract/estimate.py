"""What each layer's estimator returns, and the shared statistics they are built from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

__all__ = ["LayerEstimate", "logistic", "texture_residual", "trimmed_colour"]


@dataclass(frozen=True)
class LayerEstimate:
    """One layer read from the photo: its settings (None when nothing could be read) and how sure it is."""

    key: str  # field name in ``Layers``
    settings: Any | None  # the layer's pydantic model, ready for the look
    confidence: float  # 0..1 that the layer is really there
    detail: dict[str, float] = field(default_factory=dict)  # the statistics it was decided on

    def present(self, threshold: float) -> bool:
        return self.settings is not None and self.confidence >= threshold


def logistic(x: float) -> float:
    """A confidence in (0, 1) from a score in units where 0 is undecided and +-1 is fairly sure."""
    return 1.0 / (1.0 + math.exp(-4.0 * max(-10.0, min(10.0, x))))


def trimmed_colour(lab: np.ndarray, *, below: float = 65.0) -> np.ndarray:
    """A region's colour with highlights left out: L is the median, a and b the mean below a lightness percentile.

    Specular highlights (and a gloss's shine) sit in the brightest third of a lip or lid; the
    median lightness is below them and chroma is read only where no shine can be.
    """
    if len(lab) == 0:
        return np.full(3, np.nan, np.float32)
    light = lab[:, 0]
    lo, hi = np.percentile(light, (5.0, below))
    keep = (light >= lo) & (light <= hi)
    ab = lab[keep, 1:].mean(axis=0) if keep.any() else lab[:, 1:].mean(axis=0)
    return np.array([float(np.median(light)), float(ab[0]), float(ab[1])], np.float32)


def texture_residual(lab: np.ndarray) -> float:
    """Median chroma scatter that lightness does not explain (Lab units).

    A product laid over the lips replaces their chroma by its own, so what is left is a function of
    the lightness alone (shading and shine); bare lips carry chroma detail of their own (lines,
    the vermilion's patches). Pixels are sorted by lightness and each one's a/b compared with a
    running median of its neighbours in lightness: the median distance is the scatter.
    """
    if len(lab) < 20:
        return float("nan")
    order = np.argsort(lab[:, 0], kind="stable")
    ab = lab[order, 1:].astype(np.float64)
    window = max(5, len(ab) // 40) | 1
    smooth = median_filter(ab, size=(window, 1), mode="nearest")
    return float(np.median(np.hypot(*(ab - smooth).T)))
