"""Renders a look onto every tracked face of a frame.

Work happens only inside each face's ROI. A face that appears fades in over
``fade_s`` seconds; a face that is lost takes its makeup with it at once, so no
makeup is ever left where there is no face. A layer that raises is skipped for
the rest of the renderer's life and logged once: the frame still goes out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import cv2
import numpy as np

from facetory_cam.looks.context import build_context
from facetory_cam.looks.layers import ORDER, LayerFn, layer_functions
from facetory_cam.looks.schema import Look
from facetory_cam.vision.tracker import Face

log = logging.getLogger(__name__)

# Fine-detail layers: on a face a few dozen pixels wide (a crowd, a far-away guest) a liner, a lash
# or a brow hair is under a pixel and skin smoothing has no pores to keep; what still shows is the
# colour of lips, lids, cheeks and skin. Skipping the rest makes a small face cost a fraction.
DETAIL_LAYERS = frozenset(
    {"eyeliner", "mascara", "lip_liner", "iris", "teeth_whitening", "brows", "skin_smoothing", "contour"}
)
DETAIL_MIN_FACE_PX = 120.0


class LookRenderer:
    def __init__(
        self,
        look: Look,
        *,
        fade_s: float = 0.2,
        feather: float | None = None,
        detail_min_face_px: float = DETAIL_MIN_FACE_PX,
    ) -> None:
        self.look = look
        self.fade_s = fade_s
        self.feather = feather
        self.detail_min_face_px = detail_min_face_px
        self._layers: dict[str, LayerFn] = layer_functions()
        self._first_seen: dict[int, float] = {}
        self._failed: set[str] = set()
        self._resources: dict[str, object] = {}  # decoded textures and the like, kept across frames

    def set_look(self, look: Look) -> None:
        self.look = look
        self._resources.clear()
        self._failed.clear()

    def _fade(self, track_id: int, timestamp: float | None) -> float:
        if timestamp is None or self.fade_s <= 0:
            return 1.0
        start = self._first_seen.setdefault(track_id, timestamp)
        return float(np.clip((timestamp - start) / self.fade_s, 0.0, 1.0))

    def render(self, frame: np.ndarray, faces: Sequence[Face], timestamp: float | None = None) -> np.ndarray:
        """A new RGB uint8 frame with the look on every face (``frame`` is not modified).

        ``timestamp`` (seconds, increasing) drives fade-in; None renders at full strength.
        """
        out = frame.copy()
        present = {f.track_id for f in faces}
        self._first_seen = {k: v for k, v in self._first_seen.items() if k in present}
        for face in faces:
            fade = self._fade(face.track_id, timestamp)
            if fade <= 0.0:
                continue
            self.render_face(out, face.landmarks, fade, detail=face.size >= self.detail_min_face_px)
        return out

    def render_face(self, frame: np.ndarray, landmarks: np.ndarray, fade: float = 1.0, *, detail: bool = True) -> None:
        """Paint the look onto one face of ``frame`` (RGB uint8), in place; ``detail=False`` skips DETAIL_LAYERS."""
        look = self.look
        ctx = build_context(frame, landmarks, feather=self.feather, resources=self._resources)
        if ctx is None:
            return
        for key in ORDER:
            settings = getattr(look.layers, key)
            fn = self._layers.get(key)
            if settings is None or not settings.enabled or fn is None or key in self._failed:
                continue
            if not detail and key in DETAIL_LAYERS:
                continue
            strength = float(look.intensity * settings.intensity * fade)
            if strength <= 0.0:
                continue
            try:
                fn(ctx, settings, strength)
            except Exception:  # one broken layer must not take the frame down
                log.exception("makeup layer %s failed; it is switched off", key)
                self._failed.add(key)
        x0, y0, x1, y1 = ctx.box
        roi = frame[y0:y1, x0:x1]
        rgb = ctx.rgb
        if all(math.isfinite(s) for s in cv2.sumElems(rgb)):  # NaN and infinity survive a sum
            # Rounded and saturated in one pass, straight into the frame. Pixels no layer touched come back
            # exactly as they were (v / 255 * 255 rounds back to v), so the whole ROI can be written.
            cv2.addWeighted(rgb, 255.0, rgb, 0.0, 0.0, dst=roi, dtype=cv2.CV_8U)
        else:  # a layer left NaN or infinity: only the pixels it changed measurably, NaN never
            changed = np.abs(ctx.rgb - ctx.original).max(axis=2) > (0.25 / 255.0)
            roi[changed] = np.clip(np.rint(ctx.rgb[changed] * 255.0), 0, 255).astype(np.uint8)
