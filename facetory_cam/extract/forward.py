"""The renderer as the extractor's measurement model.

Reading a look from a photo means inverting how the renderer paints it. Rather than restating
the layers' formulas (which would drift as the layers change), the extractor asks the renderer
itself, through its public API, what a setting does: a layer painted onto a flat canvas shaped
like the face shows where it reaches and how strongly (its alpha map), and what colour a product
turns a given skin or lip into. Colour probes run on a small copy of the face (the colour at a
region's core does not depend on the face's size), so a whole Newton solve costs a few ms.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from facetory_cam.extract.view import FaceView, face_size_of
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Color, Layers, Look
from facetory_cam.vision.masks import RegionMasks, face_region_masks

__all__ = ["Forward", "hex_of_lab", "hex_of_rgb", "lab_of", "lab_of_hex", "rgb_of_lab", "solve_lab"]

_FEATHER = 0.012  # the renderer's mask feather, fraction of the face size
_SMALL_FACE = 128.0  # px across, for colour probes


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (any leading shape, last axis 3) to CIELAB."""
    a = np.asarray(rgb, np.float32)
    return cv2.cvtColor(a.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(a.shape)


def rgb_of_lab(lab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB in [0, 1], clipped to the gamut."""
    a = np.asarray(lab, np.float32)
    return np.clip(cv2.cvtColor(a.reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(a.shape), 0.0, 1.0)


def hex_of_lab(lab: np.ndarray) -> Color:
    r, g, b = (int(round(float(v) * 255.0)) for v in rgb_of_lab(lab))
    return Color(f"#{r:02x}{g:02x}{b:02x}")


def hex_of_rgb(rgb: np.ndarray) -> Color:
    """``#rrggbb`` of an sRGB colour in [0, 1] (clipped)."""
    r, g, b = (int(round(float(v) * 255.0)) for v in np.clip(np.asarray(rgb, np.float32), 0.0, 1.0))
    return Color(f"#{r:02x}{g:02x}{b:02x}")


def lab_of_hex(colour: str) -> np.ndarray:
    return lab_of(np.asarray(Color(colour).rgb, np.float32))


class Forward:
    """Paints layers onto flat canvases shaped like one face, with the project's own renderer."""

    def __init__(self, view: FaceView) -> None:
        self.view = view
        self._renderer = LookRenderer(Look(name="probe"), fade_s=0.0)
        k = min(1.0, _SMALL_FACE / max(view.face_size, 1.0))
        self._small_k = k
        self._small_shape = (max(8, round(view.rgb.shape[0] * k)), max(8, round(view.rgb.shape[1] * k)))
        small = view.landmarks.copy()
        small[:, :2] = (small[:, :2] + 0.5) * k - 0.5
        small[:, 2] *= k
        self._small_landmarks = small
        self._small_masks: RegionMasks | None = None

    def paint(
        self, layers: Layers, canvas: np.ndarray | tuple[float, float, float], *, small: bool = False
    ) -> np.ndarray:
        """The canvas (an image like the view's, or one flat sRGB colour in [0, 1]) after painting ``layers``.

        Returns float32 sRGB in [0, 1] over the whole canvas.
        """
        shape = self._small_shape if small else self.view.rgb.shape[:2]
        landmarks = self._small_landmarks if small else self.view.landmarks
        if isinstance(canvas, np.ndarray) and canvas.ndim == 3:
            frame = np.ascontiguousarray(canvas, np.uint8).copy()
        else:
            value = np.clip(np.rint(np.asarray(canvas, np.float32) * 255.0), 0, 255).astype(np.uint8)
            frame = np.empty((*shape, 3), np.uint8)
            frame[...] = value
        self._renderer.set_look(Look(name="probe", layers=layers))
        self._renderer.render_face(frame, landmarks)
        return frame.astype(np.float32) * np.float32(1.0 / 255.0)

    def small_image(self, image: np.ndarray) -> np.ndarray:
        """A crop-sized image (uint8 or float) brought to the small canvas by area averaging."""
        return cv2.resize(image, self._small_shape[::-1], interpolation=cv2.INTER_AREA)

    def small_region(self, *names: str) -> np.ndarray:
        """The union of region masks over the small canvas, as the renderer builds them there."""
        if self._small_masks is None:
            size = face_size_of(self._small_landmarks)
            self._small_masks = face_region_masks(
                self._small_landmarks, self._small_shape, feather=max(1.0, _FEATHER * size)
            )
        out = np.zeros(self._small_shape, np.float32)
        for name in names:
            np.maximum(out, self._small_masks.full(name, self._small_shape), out=out)
        return out

    @property
    def small_scale(self) -> float:
        return self._small_k

    @property
    def small_landmarks(self) -> np.ndarray:
        """The landmarks on the small canvas (read-only)."""
        return self._small_landmarks

    @property
    def small_shape(self) -> tuple[int, int]:
        return self._small_shape


def solve_lab(
    produce: Callable[[np.ndarray], np.ndarray],
    want: np.ndarray,
    start: np.ndarray,
    jacobian: np.ndarray,
    *,
    iters: int = 6,
    tolerance: float = 0.4,
) -> tuple[np.ndarray, float]:
    """The target Lab whose ``produce`` (a probe: target Lab -> Lab it paints) comes closest to ``want``.

    Quasi-Newton: ``jacobian`` is a first guess of d(painted)/d(target) (what the layer's opacity
    and lightness share make it), refined by Broyden's rank-one updates, so each step costs one
    probe. The target stays inside the sRGB gamut (a look stores ``#rrggbb``): when ``want`` is out
    of reach the closest reachable target is returned. Returns the target and its miss (Lab units).
    """
    jac = np.asarray(jacobian, np.float64).copy()
    target = lab_of(rgb_of_lab(np.asarray(start, np.float32))).astype(np.float64)
    got = produce(target.astype(np.float32)).astype(np.float64)
    best, best_err = target, float(np.linalg.norm(got - want))
    for _ in range(iters):
        if best_err < tolerance:
            break
        try:
            delta = np.linalg.lstsq(jac, want - got, rcond=1e-3)[0]
        except np.linalg.LinAlgError:
            break
        norm = float(np.linalg.norm(delta))
        if norm > 40.0:
            delta *= 40.0 / norm
        nxt = lab_of(rgb_of_lab((target + delta).astype(np.float32))).astype(np.float64)
        step = nxt - target
        if float(np.linalg.norm(step)) < 0.05:  # pinned at the gamut's edge
            break
        new = produce(nxt.astype(np.float32)).astype(np.float64)
        jac += np.outer((new - got) - jac @ step, step) / float(step @ step)
        target, got = nxt, new
        err = float(np.linalg.norm(got - want))
        if err < best_err:
            best, best_err = target, err
    return best.astype(np.float32), best_err
