"""Blush: colour, strength and placement, read as a flush against the face's own skin.

The renderer (looks/layers/blush.py) lays a soft bell of colour on each cheek with soft light
and takes most of the change in lightness back out, so blush shows as a shift of hue and
saturation at about the skin's own lightness. The photo is therefore read in chroma relative to
lightness (a* and b* over L* + 16, which stay put when the same skin is lit more or less): its
deviation from the face's bare skin, over a wide patch of each cheek, is fitted by the blob the
renderer would paint for each candidate size and lift (painted by the renderer itself onto a flat
canvas) plus a constant for the cheek's own redness. The blob that explains the most gives the
placement; the fitted shift at the blob's peak gives the colour, solved with the renderer for
the opacity a typical blush has (the output depends on opacity and colour only through their
product, so one of them has to be chosen).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facetory_cam.extract.baseline import Baseline
from facetory_cam.extract.estimate import LayerEstimate, logistic
from facetory_cam.extract.forward import Forward, hex_of_lab, lab_of, rgb_of_lab, solve_lab
from facetory_cam.extract.view import FaceView
from facetory_cam.looks.schema import Blush, Layers

__all__ = ["estimate_blush"]

_SIZES = (0.75, 1.0, 1.3)
_LIFTS = (-0.6, 0.0, 0.6)
_OPACITY = 0.45  # a typical blush's opacity (opacity and colour are one product in the rendered cheek)
# The blob-shaped shift of a bare cheek against the rest of the skin (chroma over L + 16): its mean
# and spread between people, fitted on bare MT faces. Cheeks are a little redder and less yellow
# than the forehead and chin by nature.
_BARE_SHIFT = np.array([0.02, -0.036])
_BARE_SPREAD = np.array([0.045, 0.05])
_EVIDENCE_AT_HALF = 3.5  # bare cheeks reach 2.5 spreads
_PROBE = "#ff00ff"  # soft light of this colour moves green one way and red and blue the other: easy to read


@dataclass(frozen=True)
class _Shape:
    size: float
    lift: float
    bell: np.ndarray  # (h, w) on the small canvas, 1 at the peak


def _relative_chroma(lab: np.ndarray) -> np.ndarray:
    scale = 1.0 / (lab[..., 0] + 16.0)
    return lab[..., 1:] * scale[..., None]


def _bells(forward: Forward) -> list[_Shape]:
    """The renderer's blush blob, both cheeks, for each candidate size and lift, on the small canvas."""
    out = []
    for size in _SIZES:
        for lift in _LIFTS:
            layer = Blush(color=_PROBE, opacity=1.0, size=size, lift=lift)
            painted = forward.paint(Layers(blush=layer), (0.5, 0.5, 0.5), small=True)
            change = np.clip(0.5 - painted[..., 1], 0.0, None)
            peak = float(change.max())
            if peak > 0.0:
                out.append(_Shape(size, lift, change / peak))
    return out


def estimate_blush(view: FaceView, base: Baseline, forward: Forward) -> LayerEstimate:
    bells = _bells(forward)
    if not bells:
        return LayerEstimate("blush", None, 0.0)
    image = forward.small_image(view.rgb).astype(np.float32) * np.float32(1.0 / 255.0)
    lab = lab_of(image)
    rel = _relative_chroma(lab)
    skin = forward.small_region("skin")
    reach = np.max([b.bell for b in bells], axis=0)
    # The fit's patch: the skin the largest blob could touch and a ring of skin round it, so the
    # constant (the cheek's own redness) is pinned by skin the blush leaves alone.
    patch = (skin > 0.8) & (reach > 0.0)
    ring = (skin > 0.8) & (reach < 0.05)
    if patch.sum() < 30:
        return LayerEstimate("blush", None, 0.0)
    light = lab[..., 0]
    lo, hi = np.percentile(light[patch], (5.0, 97.0))
    use = patch & (light >= lo) & (light <= hi)
    y = rel[use] - _relative_chroma(base.skin[None])[0]
    best = None
    for shape in bells:
        x = shape.bell[use]
        design = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = float(((design @ coef - y) ** 2).sum())
        if best is None or residual < best[0]:
            best = (residual, shape, coef[1])
    assert best is not None
    _, shape, shift = best
    evidence = float(np.hypot(*((shift - _BARE_SHIFT) / _BARE_SPREAD)))
    if shift[0] <= _BARE_SHIFT[0]:  # a blush is warm: a blob that is less red than bare cheeks is not one
        evidence = 0.0
    confidence = logistic(evidence / _EVIDENCE_AT_HALF - 1.0)
    detail = {
        "evidence": round(evidence, 3),
        "shift_a": round(float(shift[0]), 4),
        "shift_b": round(float(shift[1]), 4),
    }
    detail["ring_pixels"] = float(ring.sum())

    # Colour: what soft-lit product turns this face's skin into its skin shifted by ``shift`` at the peak.
    peak = np.unravel_index(int(np.argmax(shape.bell)), shape.bell.shape)
    canvas = np.clip(np.rint(rgb_of_lab(base.skin) * 255.0), 0, 255).astype(np.uint8)
    skin_lab = lab_of(canvas.astype(np.float32) / 255.0)
    want = skin_lab.copy()
    want[1:] += (shift - _BARE_SHIFT) * (skin_lab[0] + 16.0)  # what the blush adds to a bare cheek

    def painted(opacity: float) -> Callable[[np.ndarray], np.ndarray]:
        def produce(target: np.ndarray) -> np.ndarray:
            layer = Blush(color=hex_of_lab(target), opacity=opacity, size=shape.size, lift=shape.lift)
            out = forward.paint(Layers(blush=layer), canvas / 255.0, small=True)
            return lab_of(out[peak])

        return produce

    opacity = _OPACITY
    start = skin_lab + (want - skin_lab) * 4.0
    target, miss = solve_lab(painted(opacity), want, start, np.diag([0.1, 0.3, 0.3]) * opacity / 0.5)
    while miss > 1.0 and opacity < 1.0:
        opacity = min(1.0, opacity + 0.25)
        target, miss = solve_lab(painted(opacity), want, target, np.diag([0.1, 0.3, 0.3]) * opacity / 0.5)
    detail["miss"] = round(miss, 3)
    layer = Blush(color=hex_of_lab(target), opacity=round(opacity, 3), size=shape.size, lift=shape.lift)
    return LayerEstimate("blush", layer, confidence, detail)
