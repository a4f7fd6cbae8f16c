"""Brows: colour and fill, read against what natural brows look like.

Every face has brows, so a brow product is recognised by what a bare brow does not do: the
renderer's fill (looks/layers/brows.py) covers the skin between the hairs, so the brow's lightest
pixels, which on a bare brow are skin showing between hairs, turn as dark as the hairs. The share
of the hair-to-skin contrast the gaps have lost is the fill; the colour is the brow's darker half.
Glasses frames and fringes over the brows are dark too, so the skin level is taken from the skin
just under the brow (the brow bone), and only pixels inside the brow mask's core are read.
"""

from __future__ import annotations

import numpy as np

from facetory_cam.extract.baseline import Baseline
from facetory_cam.extract.estimate import LayerEstimate, logistic
from facetory_cam.extract.forward import hex_of_rgb
from facetory_cam.extract.view import FaceView
from facetory_cam.looks.schema import Brows

__all__ = ["brow_fill", "estimate_brows"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_BARE_FILL = 0.27  # the gaps' lost contrast on bare brows (median of bare MT faces)
_FILL_SPREAD = 0.12
_EVIDENCE_AT_HALF = 3.0
_OPACITY = 0.6


def brow_fill(view: FaceView) -> tuple[float, np.ndarray, int]:
    """How much of the hair-to-skin contrast the brow's gaps have lost (0 bare .. 1 filled), the hair colour
    and the pixel count."""
    rgb = view.roi_rgb
    luma = rgb @ _LUMA
    fills, colours, count = [], [], 0
    for name in ("left", "right"):
        brow = view.mask(f"{name}_brow")
        core = brow > 0.7
        if core.sum() < 20:
            continue
        values = luma[core]
        hair, gaps = np.percentile(values, (10.0, 85.0))
        # The skin round the brow: just outside its mask, above the eyeshadow zone.
        ring = (
            (brow > 0.01) & (brow < 0.15) & (view.mask(f"{name}_eyeshadow") < 0.1) & (view.mask(f"{name}_eye") < 0.01)
        )
        if ring.sum() < 10:
            continue
        skin = float(np.median(luma[ring]))
        if skin - hair < 0.03:
            continue
        fills.append(float(np.clip((skin - gaps) / (skin - hair), 0.0, 1.0)))
        dark = core & (luma <= np.percentile(values, 50.0))
        colours.append(rgb[dark].mean(axis=0))
        count += int(core.sum())
    if not fills:
        return 0.0, np.zeros(3, np.float32), 0
    return float(np.mean(fills)), np.mean(colours, axis=0).astype(np.float32), count


def estimate_brows(view: FaceView, base: Baseline) -> LayerEstimate:
    fill, colour, count = brow_fill(view)
    if count == 0:
        return LayerEstimate("brows", None, 0.0, {"pixels": 0.0})
    evidence = (fill - _BARE_FILL) / _FILL_SPREAD
    confidence = logistic(evidence / _EVIDENCE_AT_HALF - 1.0)
    fill_setting = float(np.clip((fill - _BARE_FILL) / (1.0 - _BARE_FILL), 0.0, 1.0))
    layer = Brows(color=hex_of_rgb(colour), opacity=_OPACITY, fill=round(fill_setting, 3))
    return LayerEstimate("brows", layer, confidence, {"fill": round(fill, 4), "evidence": round(evidence, 3)})
