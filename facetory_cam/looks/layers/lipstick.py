"""Lipstick: chroma from the product, lightness detail from the lips, a finish, optional gloss."""

from __future__ import annotations

import numpy as np

from facetory_cam.looks.color import active_box, color_lab, lab_to_rgb, rgb_to_lab, weighted_mean
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import Lipstick

# How far the lips' mean lightness moves to the product's, per finish: matte covers most.
_LIGHTNESS = {"matte": 0.75, "satin": 0.6, "gloss": 0.5}
# Built-in shine of each finish, added to the layer's own gloss amount.
_SHINE = {"matte": 0.0, "satin": 0.25, "gloss": 0.7}


def render(ctx: FaceContext, s: Lipstick, strength: float) -> None:
    lips = np.clip(ctx.mask("upper_lip") + ctx.mask("lower_lip"), 0.0, 1.0)
    alpha = lips * (s.opacity * strength)
    box = active_box(alpha)
    if box is None:
        return
    a = alpha[box]
    lab = rgb_to_lab(ctx.rgb[box])
    orig_l = lab[..., 0].copy()
    w = lips[box]
    target = color_lab(s.color.rgb)
    core = orig_l[w > 0.5]
    # the bare lips' lightness at the 70th, 85th and 99.5th percentile, read once
    p70, p85, p995 = np.percentile(core, [70, 85, 99.5]) if core.size else (100.0, 100.0, 100.0)

    if s.finish == "matte":
        # A matte product scatters light: flatten the lips' own specular peaks.
        lab[..., 0] -= np.maximum(orig_l - p85, 0.0) * 0.6 * a

    mean_l = float(weighted_mean(lab[..., :1], a)[0])
    lab[..., 0] += (float(target[0]) - mean_l) * _LIGHTNESS[s.finish] * a
    lab[..., 1] += (float(target[1]) - lab[..., 1]) * a
    lab[..., 2] += (float(target[2]) - lab[..., 2]) * a

    shine = min(1.0, _SHINE[s.finish] + s.gloss) * strength
    if shine > 0 and core.size:
        # Specular lobe that follows the lips' real highlights: the brightest parts of the
        # bare lip get brighter and less saturated, like light on a wet surface.
        t = np.clip((orig_l - p70) / max(float(p995 - p70), 1e-3), 0.0, 1.0)
        spec = (t * t * (3 - 2 * t)) ** 2 * shine * w
        lab[..., 0] += spec * (100.0 - lab[..., 0]) * 0.45
        lab[..., 1:] *= (1.0 - 0.5 * spec)[..., None]
    ctx.rgb[box] = lab_to_rgb(lab)
