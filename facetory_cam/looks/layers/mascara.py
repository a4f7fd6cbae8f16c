"""Mascara: a thin, soft darkening of the lash lines, strongest where lashes already are.

Lashes are too fine to find at webcam resolution, so mascara is a narrow band right at
the lid edge, blurred a little wider than a liner; pixels already darker than the skin
around them (the lashes) take more of it, which keeps the fringe's texture.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.layers._eyes import SIDES, darken, face_lids, luma_of, off_eyeball, soft_coverage
from facetory_cam.looks.schema import Mascara

# Band widths as a share of face size: a touch wider than a default eyeliner, lower lashes half that.
_UPPER_WIDTH = 0.011
_LOWER_WIDTH = 0.0055
_LOWER_LEVEL = 0.45  # the lower lashes take this much of the upper ones' density
_BELOW = 0.1  # share of the band over the lid contour, onto the lash margin
_SOFTNESS = 0.35  # blur sigma as a share of the upper band's width
_LASH_GAIN = 0.45  # how much extra darkening the already-dark lash pixels get
_LASH_RANGE = 0.25  # luma below the band's light level over which a pixel counts fully as lash
_LIDS = tuple((side, upper) for upper in (False, True) for side, _ in SIDES)  # lower lids first
_IS_UPPER = np.array([up for _, up in _LIDS])[:, None]
_WIDTHS = np.where(_IS_UPPER, _UPPER_WIDTH, _LOWER_WIDTH)


def render(ctx: FaceContext, s: Mascara, strength: float) -> None:
    amount = float(s.opacity * strength)
    if amount <= 0.0 or ctx.face_size <= 0.0:
        return
    color = np.asarray(s.color.rgb, np.float32)
    sigma = min(max(_SOFTNESS * _UPPER_WIDTH * ctx.face_size, 0.35), 1.5)
    lines = face_lids(ctx, _LIDS)
    # Lashes are longer and denser towards the outer corner; the lower ones grow mostly there.
    along = np.where(_IS_UPPER, 0.45 + 0.55 * lines.s, np.clip((lines.s - 0.15) / 0.55, 0.0, 1.0))
    width = along * (_WIDTHS * ctx.face_size)
    polys = lines.band(width * _BELOW, width * (1.0 - _BELOW))
    half = len(SIDES)
    for i, (_, name) in enumerate(SIDES):
        # Lower band first, so the upper one wins where both meet at the corners.
        painted = soft_coverage(ctx.shape, [polys[i], polys[half + i]], sigma, [_LOWER_LEVEL, 1.0])
        if painted is None:
            continue
        box, cover = painted
        luma = luma_of(ctx.rgb[box])
        inside = luma[cover > 0.25]
        if inside.size:
            k = int(0.85 * (inside.size - 1))
            light = float(np.partition(inside, k)[k])
        else:
            light = float(luma.max())
        lash = cv2.addWeighted(luma, -_LASH_GAIN / _LASH_RANGE, luma, 0.0, light * _LASH_GAIN / _LASH_RANGE)
        np.clip(lash, 0.0, _LASH_GAIN, out=lash)
        lash += np.float32(1.0 - _LASH_GAIN)
        cover *= lash
        cover *= off_eyeball(ctx, name, box)
        cover *= amount
        darken(ctx.rgb, box, cover, color, 0.0)
