"""Lipstick: colour, opacity and finish, measured against the lips this person would have bare.

How the renderer paints a lipstick (looks/layers/lipstick.py): in CIELAB, chroma moves from the
lip's own towards the product's by the opacity, the lips' mean lightness moves part of the way
to the product's, and a finish adds a specular lobe on the lips' own highlights (gloss) or
flattens them (matte). Read backwards:

- Opacity. Over a product, the lips' chroma becomes a function of their lightness (the product's
  colour at each pixel's shading); bare lips have chroma detail of their own, which the product
  keeps only in proportion to ``1 - opacity``. The scatter of chroma that lightness does not
  explain, against a bare lip's typical scatter, gives the opacity. A real photo's lipstick has
  texture of its own (the scatter does not fall), so the opacity is also held up by what the
  colour needs: the smallest opacity that can reach the observed colour from the natural lip
  with a colour in the sRGB gamut.
- Colour. With the opacity known, the product colour is solved with the renderer itself: the
  colour which, painted at that opacity and finish onto the natural lip expected of this skin,
  gives the colour observed at the lips' core (highlights left out).
- Finish. Gloss brightens and whitens the lips' own highlights: the chroma kept at the brightest
  pixels, against the lips' body, and how far the brightest pixels stand above it, separate
  gloss, satin and matte.

Teeth, the mouth's opening and a lip's specular spots are kept out of the colour by the masks'
cut of the mouth opening, a chroma gate round the core's median and lightness trimming.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from facetory_cam.extract.baseline import LIP_SPREAD, Baseline
from facetory_cam.extract.estimate import LayerEstimate, logistic, texture_residual, trimmed_colour
from facetory_cam.extract.forward import Forward, hex_of_lab, lab_of, rgb_of_lab, solve_lab
from facetory_cam.extract.view import FaceView
from facetory_cam.looks.schema import Layers, Lipstick

__all__ = ["LipStats", "estimate_lipstick", "lip_stats"]

# Chroma scatter of bare lips not explained by lightness (see ``texture_residual``), at the analysis
# face size: the median over the bare MT faces (both folders of the data set; between people it
# varies by about a quarter), and the floor left at full opacity (8-bit rounding).
_BARE_SCATTER = 1.8
_FLOOR = 0.4
_MIN_OPACITY = 0.3
_Z_AT_HALF = 3.5  # distance from the natural lip (in its spreads) that alone makes a lipstick as likely as not
_TEXTURE_FREE = 0.5  # loss of chroma detail bare lips can show
_CORE = 0.85  # lip mask value from which a pixel counts as the lip's body
_CHROMA_GATE = 8.0  # Lab units: floor of the distance from the core's median chroma that is still lip
_DEEP_PX = 2.5  # texture is read this far inside the lip-coloured area
_LIGHTNESS_SHARE = 0.6  # first guess of how much of a product's lightness the lips take (satin)


class LipStats:
    """What the lips of a face show: colour, texture and highlight statistics.

    ``select`` is the set of ROI pixels the colour is read from (the gated body of the lips), so a
    probe painted onto the same face is read from the same pixels.
    """

    def __init__(self, lab: np.ndarray, lips: np.ndarray, opening: np.ndarray) -> None:
        core = (lips > _CORE) & (opening < 0.05)
        self.select = core
        self.pixels = int(core.sum())
        self.colour = np.full(3, np.nan, np.float32)
        self.scatter = self.shine = self.whiten = float("nan")
        if self.pixels < 30:
            return
        # The lips by colour as well as by landmarks: teeth, a moustache, and skin that slightly
        # misplaced landmarks let in are far from the core's median chroma.
        centre = np.median(lab[core][:, 1:], axis=0)
        dist = np.hypot(lab[..., 1] - centre[0], lab[..., 2] - centre[1])
        gate = max(_CHROMA_GATE, 3.0 * 1.4826 * float(np.median(dist[core])))
        lip_coloured = (lips > 0.3) & (opening < 0.05) & (dist <= gate)
        self.select = lip_coloured & (lips > 0.6)
        body = lab[self.select]
        if len(body) < 30:
            return
        self.colour = trimmed_colour(body)
        # Texture only well inside the lip-coloured area: its rim mixes in the skin or a product's edge.
        inside = cv2.distanceTransform(lip_coloured.astype(np.uint8), cv2.DIST_L2, 3)
        deep = self.select & (inside >= _DEEP_PX) & (lips > 0.9)
        self.scatter = texture_residual(lab[deep] if deep.sum() >= 30 else body)
        light = body[:, 0]
        chroma = np.hypot(body[:, 1], body[:, 2])
        p30, p50, p70, p97 = np.percentile(light, (30.0, 50.0, 70.0, 97.0))
        top = light >= p97
        middle = (light >= p30) & (light <= p70)
        body_chroma = float(np.median(chroma[middle])) if middle.any() else float(np.median(chroma))
        self.whiten = 1.0 - float(np.median(chroma[top])) / max(body_chroma, 1e-3)
        self.shine = float(np.mean(light[top]) - p50)


def lip_stats(view: FaceView) -> LipStats:
    """The lips of a face view."""
    return LipStats(view.lab, _lips(view.mask("upper_lip"), view.mask("lower_lip")), view.mask("mouth_inner"))


def _lips(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    return np.minimum(upper + lower, 1.0)


def _finish(stats: LipStats) -> tuple[str, float]:
    """Finish (and extra gloss) from how far the brightest lip pixels are whitened and lifted.

    Thresholds fitted on lipsticks rendered onto bare faces: a matte product flattens the lips'
    own highlights, a gloss whitens and lifts them. Natural highlights vary a lot between photos,
    so this is the least certain of the lipstick's parameters (about half right on rendered looks).
    """
    whiten, shine = stats.whiten, stats.shine
    if not np.isfinite(whiten):
        return "satin", 0.0
    if whiten < 0.08 or shine < 12.0:
        return "matte", 0.0
    if whiten > 0.26 or shine > 26.0:
        return "gloss", 0.0
    return "satin", 0.0


def _opacity_from_texture(scatter: float) -> float:
    if not np.isfinite(scatter):
        return 0.0
    left = np.sqrt(max(scatter * scatter - _FLOOR * _FLOOR, 0.0)) / _BARE_SCATTER
    return float(np.clip(1.0 - left, 0.0, 1.0))


class _LipProbe:
    """Paints candidate lipsticks onto this face with its lips made bare, and reads them like the photo.

    The bare lips keep the photo's lightness detail (shading and highlights, which the renderer's
    finish and mean-lightness step depend on), shifted back by the lipstick's estimated lightness
    change, with the natural lip chroma expected of this skin.
    """

    def __init__(self, view: FaceView, forward: Forward, base: Baseline, observed: np.ndarray) -> None:
        self.forward = forward
        lips = _lips(forward.small_region("upper_lip"), forward.small_region("lower_lip"))
        opening = forward.small_region("mouth_inner")
        image = forward.small_image(view.rgb).astype(np.float32) * np.float32(1.0 / 255.0)
        lab = lab_of(image)
        bare = lab.copy()
        bare[..., 0] -= float(observed[0] - base.lip[0])
        bare[..., 1] = base.lip[1]
        bare[..., 2] = base.lip[2]
        m = lips[..., None]
        canvas = rgb_of_lab(bare) * m + image * (1.0 - m)
        self.canvas = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
        self.stats = LipStats(lab, lips, opening)

    def paint(self, layer: Lipstick) -> np.ndarray:
        out = self.forward.paint(Layers(lipstick=layer), self.canvas, small=True)
        return trimmed_colour(lab_of(out)[self.stats.select])


def _start(natural: np.ndarray, observed: np.ndarray, opacity: float) -> np.ndarray:
    """The product colour a plain opacity mix would need (lightness moves only part of the way)."""
    gain = np.array([opacity * _LIGHTNESS_SHARE, opacity, opacity], np.float32)
    return natural + (observed - natural) / gain


def _reachable_from(natural: np.ndarray, observed: np.ndarray) -> float:
    """The least opacity at which a colour inside the sRGB gamut can turn the natural lip into the observed one."""
    lo, hi = _MIN_OPACITY, 1.0
    if _in_gamut(_start(natural, observed, lo)):
        return lo
    for _ in range(8):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _in_gamut(_start(natural, observed, mid)) else (mid, hi)
    return hi


def _in_gamut(lab: np.ndarray) -> bool:
    return float(np.linalg.norm(lab_of(rgb_of_lab(lab)) - lab)) < 2.0


def _solve(
    produce: Callable[[np.ndarray], np.ndarray], natural: np.ndarray, observed: np.ndarray, opacity: float
) -> tuple[np.ndarray, float]:
    jacobian = np.diag([opacity * _LIGHTNESS_SHARE, opacity, opacity])
    return solve_lab(produce, observed, _start(natural, observed, opacity), jacobian)


def estimate_lipstick(view: FaceView, base: Baseline, forward: Forward) -> LayerEstimate:
    stats = lip_stats(view)
    if not np.all(np.isfinite(stats.colour)):
        return LayerEstimate("lipstick", None, 0.0, {"pixels": float(stats.pixels)})
    observed = stats.colour
    z = float(np.linalg.norm((observed - base.lip) / LIP_SPREAD))
    tex_op = _opacity_from_texture(stats.scatter)
    finish, gloss = _finish(stats)
    # Evidence: how far the lips are from a bare lip of this skin, and how much of their own chroma
    # detail is gone. Bare lips: z about 1.5 (under 3), chroma detail lost up to about half (a smile
    # stretches the lips thin).
    score = max(z / _Z_AT_HALF, 0.0) + max(tex_op - _TEXTURE_FREE, 0.0) / 0.25 - 1.0
    confidence = logistic(score)
    probe = _LipProbe(view, forward, base, observed)
    if not probe.stats.select.any():
        return LayerEstimate("lipstick", None, 0.0, {"pixels": float(stats.pixels)})

    def painted(opacity: float) -> Callable[[np.ndarray], np.ndarray]:
        def produce(target: np.ndarray) -> np.ndarray:
            return probe.paint(Lipstick(color=hex_of_lab(target), opacity=opacity, finish=finish, gloss=gloss))

        return produce

    opacity = max(tex_op, _MIN_OPACITY, _reachable_from(base.lip, observed))
    target, miss = _solve(painted(opacity), base.lip, observed, opacity)
    if miss > 2.0 and opacity < 1.0:  # out of reach at this opacity: more product, a less extreme colour
        opacity = min(1.0, opacity + 0.2)
        target, miss = _solve(painted(opacity), base.lip, observed, opacity)
    layer = Lipstick(color=hex_of_lab(target), opacity=round(opacity, 3), finish=finish, gloss=gloss)
    detail = {
        "z": round(z, 3),
        "scatter": round(stats.scatter, 3),
        "texture_opacity": round(tex_op, 3),
        "whiten": round(stats.whiten, 3),
        "shine": round(stats.shine, 3),
        "miss": round(miss, 3),
    }
    return LayerEstimate("lipstick", layer, confidence, detail)
