"""The person's own bare colours, against which makeup is measured.

Makeup is a change from how the face would look bare, not a raw pixel colour: a rosy lip is
not lipstick, and cheeks a little redder than the forehead are not blush. The baseline is the
skin away from where makeup usually goes (forehead, temples, chin, jaw and the skin under the
eyes; never the cheeks, lips, lids or brows), read with robust statistics so that hair over the
forehead, a beard, glasses frames, highlights and shadows do not move it: lightness is trimmed
to its middle percentiles and pixels far from the median chroma are dropped. From the skin the
natural lip is predicted (lips are darker and redder than the skin around them by amounts that
vary little between people, measured on bare faces), with how far real lips stray from that
prediction, so a lip is only called made up when it lies well outside a bare lip's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetory_cam.extract.forward import rgb_of_lab
from facetory_cam.extract.view import FaceView

__all__ = ["Baseline", "measure_baseline", "robust_mean"]

# Natural lips against the skin baseline (Lab): mean offset and spread between people, measured on
# bare faces of the MT data set at the analysis face size.
LIP_OFFSET = np.array([-18.0, 19.0, -1.5], np.float32)
LIP_SPREAD = np.array([4.5, 6.0, 4.0], np.float32)
_SKIN_TRIM = (15.0, 90.0)  # lightness percentiles kept for the skin colour (shadows, highlights out)
_CHROMA_MADS = 3.0  # skin pixels this many MADs from the median chroma are hair, stubble or frames


@dataclass(frozen=True)
class Baseline:
    """Bare colours of one face, in CIELAB."""

    skin: np.ndarray  # (3,) robust skin colour
    skin_spread: np.ndarray  # (3,) robust spread (1.4826 MAD) of the skin pixels
    lip: np.ndarray  # (3,) the lip colour expected of this skin without makeup
    pixels: int  # skin pixels the estimate rests on

    @property
    def skin_rgb(self) -> np.ndarray:
        return rgb_of_lab(self.skin)


def robust_mean(values: np.ndarray, *, trim: tuple[float, float] = (10.0, 90.0), column: int = 0) -> np.ndarray:
    """Mean of (n, c) rows whose ``column`` lies within the given percentiles: highlights and shadows out."""
    if len(values) == 0:
        return np.full(values.shape[1], np.nan, np.float32)
    lo, hi = np.percentile(values[:, column], trim)
    keep = (values[:, column] >= lo) & (values[:, column] <= hi)
    return values[keep].mean(axis=0) if keep.any() else values.mean(axis=0)


def _skin_pixels(view: FaceView) -> np.ndarray:
    """Lab of the skin where makeup seldom goes: the skin mask less the cheeks and a ring round the mouth."""
    skin = view.mask("skin")
    cheeks = np.maximum(view.mask("left_cheek"), view.mask("right_cheek"))
    keep = (skin > 0.9) & (cheeks < 0.02)
    lab = view.lab[keep]
    if len(lab) < 50:  # a face mostly off the photo: take what skin there is
        lab = view.lab[skin > 0.5]
    return lab


def measure_baseline(view: FaceView) -> Baseline:
    """The face's bare skin colour and the natural lip colour expected from it."""
    lab = _skin_pixels(view)
    if len(lab) == 0:
        raise ValueError("no skin pixels in the face view")
    lo, hi = np.percentile(lab[:, 0], _SKIN_TRIM)
    lab = lab[(lab[:, 0] >= lo) & (lab[:, 0] <= hi)]
    ab = lab[:, 1:]
    centre = np.median(ab, axis=0)
    dist = np.hypot(*(ab - centre).T)
    mad = max(float(np.median(dist)), 0.5)
    lab = lab[dist <= _CHROMA_MADS * 1.4826 * mad]
    skin = np.median(lab, axis=0).astype(np.float32)
    spread = (1.4826 * np.median(np.abs(lab - skin), axis=0)).astype(np.float32)
    lip = skin + LIP_OFFSET
    return Baseline(skin=skin, skin_spread=spread, lip=lip.astype(np.float32), pixels=len(lab))
