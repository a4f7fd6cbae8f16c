"""Foundation and skin smoothing: the face's skin against its own neck and its own fine detail.

Foundation (looks/layers/foundation.py) moves the face's skin colour towards a tone and evens its
blotches, and stops at the face's outline: the neck keeps its own colour. A face whose skin no
longer matches the neck under it, in chroma relative to lightness (which a shadow under the jaw
does not change), wears foundation; its tone is the face's skin colour.

Skin smoothing (looks/layers/skin_smoothing.py) removes blotchiness, the mid-sized unevenness of
the skin, and keeps its fine detail (pores, hairs). The ratio of mid-scale to fine-scale lightness
variation over the skin, against the ratio bare faces have, gives the strength. A photo that was
blurred or retouched all over loses both scales and is not taken for smoothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.extract.baseline import Baseline
from facetory_cam.extract.estimate import LayerEstimate, logistic
from facetory_cam.extract.forward import hex_of_lab
from facetory_cam.extract.view import FaceView
from facetory_cam.looks.schema import Foundation, SkinSmoothing

__all__ = ["estimate_foundation", "estimate_smoothing", "neck_mismatch", "blotchiness"]

_JAW = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)  # along the jaw, under the chin
_NECK_DROP = (0.06, 0.16)  # the neck band: this far under the jaw line, fraction of the face
# Bare faces (medians and spreads over bare MT faces): necks differ from faces by nature, and bare
# skin's blotchiness varies a lot, so only a clear departure is taken for foundation or smoothing.
_BARE_MISMATCH = 0.08  # chroma/(L + 16) distance between bare face skin and neck
_MISMATCH_SPREAD = 0.045
_BARE_BLOTCH = 12.7  # mid-scale over fine-scale lightness variation of bare skin
_BLOTCH_SPREAD = 3.0
_FOUNDATION_AT_HALF = 4.0  # bare necks differ from faces by up to 3 spreads
_SMOOTHING_AT_HALF = 3.0


def _relative(lab: np.ndarray) -> np.ndarray:
    return lab[..., 1:] / (lab[..., :1] + 16.0)


def neck_mismatch(view: FaceView, base: Baseline) -> float | None:
    """Distance in relative chroma between the face's skin and the neck below the jaw, or None without a neck."""
    pts = view.landmarks[list(_JAW), :2]
    face = view.face_size
    h, w = view.rgb.shape[:2]
    band = np.zeros((h, w), np.uint8)
    top = pts + np.array([0.0, _NECK_DROP[0] * face])
    bottom = pts + np.array([0.0, _NECK_DROP[1] * face])
    poly = np.concatenate([top, bottom[::-1]])
    cv2.fillPoly(band, [np.rint(poly).astype(np.int32)], 1)
    sel = band > 0
    if sel.sum() < 40:
        return None
    lab = cv2.cvtColor(view.rgb[sel].reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    # The neck is skin-coloured: clothes, hair and background in the band are far from the face's skin.
    rel = _relative(lab)
    skin_rel = _relative(base.skin[None])[0]
    near = np.hypot(*(rel - skin_rel).T) < 0.25
    if near.sum() < 30:
        return None
    return float(np.hypot(*(np.median(rel[near], axis=0) - skin_rel)))


def blotchiness(view: FaceView) -> float | None:
    """Mid-scale over fine-scale lightness variation over the skin (about 1 and 5 % of the face)."""
    light = view.lab[..., 0]
    skin = view.mask("skin") > 0.9
    if skin.sum() < 200:
        return None
    s_fine = max(0.6, 0.004 * view.face_size)
    s_mid = max(1.5, 0.02 * view.face_size)
    s_wide = max(3.0, 0.06 * view.face_size)
    a = cv2.GaussianBlur(light, (0, 0), s_fine)
    b = cv2.GaussianBlur(light, (0, 0), s_mid)
    c = cv2.GaussianBlur(light, (0, 0), s_wide)
    fine = float(np.median(np.abs(light - a)[skin]))
    mid = float(np.median(np.abs(b - c)[skin]))
    if fine < 1e-3:
        return None
    return mid / fine


def estimate_foundation(view: FaceView, base: Baseline) -> LayerEstimate:
    mismatch = neck_mismatch(view, base)
    if mismatch is None:
        return LayerEstimate("foundation", None, 0.0, {"neck": 0.0})
    evidence = (mismatch - _BARE_MISMATCH) / _MISMATCH_SPREAD
    confidence = logistic(evidence / _FOUNDATION_AT_HALF - 1.0)
    coverage = float(np.clip(0.2 + mismatch * 4.0, 0.2, 1.0))
    layer = Foundation(tone=hex_of_lab(base.skin), coverage=round(coverage, 3))
    return LayerEstimate(
        "foundation", layer, confidence, {"mismatch": round(mismatch, 4), "evidence": round(evidence, 3)}
    )


def estimate_smoothing(view: FaceView, base: Baseline) -> LayerEstimate:
    ratio = blotchiness(view)
    if ratio is None:
        return LayerEstimate("skin_smoothing", None, 0.0, {})
    evidence = (_BARE_BLOTCH - ratio) / _BLOTCH_SPREAD
    confidence = logistic(evidence / _SMOOTHING_AT_HALF - 1.0)
    strength = float(np.clip(1.0 - ratio / _BARE_BLOTCH, 0.0, 1.0))
    layer = SkinSmoothing(strength=round(max(strength, 0.1), 3))
    return LayerEstimate(
        "skin_smoothing", layer, confidence, {"ratio": round(ratio, 4), "evidence": round(evidence, 3)}
    )
