"""What a makeup layer sees of one face: its ROI pixels, landmarks and region masks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import cv2
import numpy as np

from facetory_cam.looks.color import color_lab, shrink
from facetory_cam.vision.masks import RegionMasks, face_region_masks

Box = tuple[slice, slice]
T = TypeVar("T")

_WORKSPACE = "workspace"  # key of the renderer's scratch arrays in ``resources``


class Workspace:
    """Scratch arrays that outlive a frame, one per key, reused while they are large enough.

    The ROI-sized arrays of a renderer have about the same size every frame. Fresh ones that large
    can come back from the allocator as new pages to fault in (which costs more than the arithmetic
    on them), depending on what the rest of the process allocates; reused ones are already mapped and
    usually still cached. Contents are left as they were.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, key: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """A C-contiguous array of this shape and dtype; the same memory as the last one under ``key``."""
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = self._buffers[key] = np.empty(size + size // 4 + 4096, np.uint8)  # headroom for a moving face
        return buf[:size].view(dtype).reshape(shape)


class FaceContext:
    """One face's region of interest while a look is rendered onto it.

    ``rgb`` is the working copy of the ROI (float32 sRGB in [0, 1]); layers change it in place, in
    order. ``original`` is the untouched ROI, made on first use from the frame's pixels (which no
    layer writes to). Landmarks are in ROI coordinates. Masks are built once per frame, each when a
    layer first asks for it, and shared by every layer: they are read-only.

    Skin layers work at low resolution and end in a per-pixel gain (see ``defer_gain``): the gains
    of consecutive layers are multiplied together and go into ``rgb`` in one full-size pass, when
    something next looks at ``rgb``. ``small`` gives such layers the ROI as it stands, gains and all,
    at low resolution, without that pass.

    With a renderer's ``resources``, ``rgb`` lives in the renderer's scratch memory: one context at a time.
    """

    def __init__(
        self,
        box: tuple[int, int, int, int],
        source: np.ndarray,
        landmarks: np.ndarray,
        face_size: float,
        masks: RegionMasks,
        feather: float,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self.box = box
        self.landmarks = landmarks
        self.face_size = face_size
        self.masks = masks
        self.feather = feather
        self.resources: dict[str, Any] = resources if resources is not None else {}  # lives across frames
        self._source = source  # the frame's uint8 ROI
        self._rgb = np.multiply(source, np.float32(1.0 / 255.0), out=self.scratch("rgb", source.shape))
        self._original: np.ndarray | None = None
        self._gains: list[np.ndarray] = []  # low-resolution gains not yet in _rgb
        self._cuts: list[tuple[Box, np.ndarray]] = []  # where they are held back, at full resolution
        self._half: np.ndarray | None = None  # _rgb at half size, while _rgb is unchanged
        # Per-face work that several layers need (skin light, lid curves, ...), made by the first to ask.
        self.shared: dict[str, Any] = {}

    @property
    def rgb(self) -> np.ndarray:
        """The working ROI, with every deferred gain in it (the caller may change it in place)."""
        if self._gains:
            self._apply_gains()
        self._half = None  # whoever asks may write
        return self._rgb

    @property
    def original(self) -> np.ndarray:
        if self._original is None:
            self._original = np.multiply(self._source, np.float32(1.0 / 255.0), dtype=np.float32)
        return self._original

    @property
    def source(self) -> np.ndarray:
        """The untouched ROI as uint8 RGB: for sampling a few original pixels without ``original``."""
        return self._source

    @property
    def shape(self) -> tuple[int, int]:
        return self._rgb.shape[0], self._rgb.shape[1]

    def scratch(self, key: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """A working array that reuses last frame's memory when the context has a renderer's resources.

        Contents are undefined. A key must not be in use twice at once.
        """
        workspace = self.resources.get(_WORKSPACE)
        if workspace is None:
            workspace = self.resources[_WORKSPACE] = Workspace()
        return workspace.array(key, shape, dtype)

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, once per face: what one layer works out about the face, the next reuses."""
        if key in self.shared:
            return self.shared[key]
        value = self.shared[key] = make()
        return value

    def color_lab(self, rgb: tuple[float, float, float]) -> np.ndarray:
        """Lab of a product colour, shape (3,), converted once per renderer (read-only)."""
        key = f"lab {rgb}"
        lab = self.resources.get(key)
        if lab is None:
            lab = self.resources[key] = color_lab(rgb)
        return lab

    def mask(self, name: str) -> np.ndarray:
        """A region mask over the whole ROI."""
        return self.masks.masks[name]

    def mask_in(self, name: str, box: Box) -> np.ndarray:
        """A region mask over a (rows, cols) box of the ROI, without making the ROI-sized mask (read-only)."""
        return self.masks.within(name, *box)

    def mask_resized(self, name: str, size: tuple[int, int]) -> np.ndarray:
        """A region mask resampled (bilinearly, as ``cv2.resize``) to a low-resolution grid over the ROI."""
        return self.masks.resized(name, size)

    def mask_bounds(self, name: str) -> Box | None:
        """(rows, cols) box outside which the region mask is zero, or None when it is empty."""
        return self.masks.bounds(name)

    def mask_peak(self, name: str) -> float:
        """The region mask's largest value."""
        return self.masks.peak(name)

    def small(self, size: tuple[int, int]) -> np.ndarray:
        """The ROI as it stands (deferred gains included), area-averaged down to ``size`` (width, height).

        Exact 2x2 averages while the image is at least twice the target, then one bilinear step. The
        first halving is shared by every caller until ``rgb`` is next handed out, so a layer that
        changes ``rgb`` fetches it after its last call here.
        """
        h, w = self.shape
        if w >= 2 * size[0] and h >= 2 * size[1]:
            if self._half is None:
                self._half = cv2.resize(self._rgb, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
            source = self._half
        else:
            source = self._rgb
        image = shrink(source, size)
        if image is source and self._gains:
            image = image.copy()
        for gain in self._gains:
            image *= gain if gain.shape[1::-1] == size else cv2.resize(gain, size, interpolation=cv2.INTER_LINEAR)
        return image

    def defer_gain(self, gain: np.ndarray, cuts: list[tuple[Box, np.ndarray]] | None = None) -> None:
        """Multiply a low-resolution (h, w, 3) gain (1 = unchanged) into the ROI: now, or together with the next.

        The gain is upsampled bilinearly, so it keeps everything finer than its own resolution (texture,
        pores, fine shading) as it was, and where it is exactly 1 the pixels are left exactly as they
        were. ``cuts`` hold every deferred skin gain back inside (rows, cols) boxes at full resolution:
        the gain moves towards 1 by ``1 - keep`` for an (h, w) ``keep``, e.g. over the eyes and lips.
        The array is kept until it is applied: the caller must not change it.
        """
        self._gains.append(np.asarray(gain, np.float32))
        if cuts:
            self._cuts.extend(cuts)

    def _apply_gains(self) -> None:
        """Every deferred gain into ``_rgb`` in one pass: multiplied together on the finest of their grids."""
        gains, cuts = self._gains, self._cuts
        self._gains, self._cuts = [], []
        finest = max(gains, key=lambda g: g.shape[0] * g.shape[1])
        size = (finest.shape[1], finest.shape[0])
        total = finest.copy()
        for gain in gains:
            if gain is not finest:
                cv2.multiply(total, cv2.resize(gain, size, interpolation=cv2.INTER_LINEAR), dst=total)
        h, w = self.shape
        full = cv2.resize(total, (w, h), dst=self.scratch("gain", (h, w, 3)), interpolation=cv2.INTER_LINEAR)
        for box, keep in cuts:  # 1 + (gain - 1) * keep, into the view
            part = full[box]
            cv2.subtract(part, (1.0, 1.0, 1.0, 0.0), dst=part)
            cv2.multiply(part, cv2.merge([keep, keep, keep]), dst=part)
            cv2.add(part, (1.0, 1.0, 1.0, 0.0), dst=part)
        cv2.multiply(self._rgb, full, dst=self._rgb)
        if float(total.max()) > 1.0:
            cv2.threshold(self._rgb, 1.0, 1.0, cv2.THRESH_TRUNC, dst=self._rgb)


def build_context(
    frame: np.ndarray,
    landmarks: np.ndarray,
    *,
    feather: float | None = None,
    resources: dict[str, Any] | None = None,
) -> FaceContext | None:
    """The context of one face in an RGB uint8 frame, or None when the face is off-frame.

    Feathering scales with the face (about 1% of its size, at least 1 px) so a look
    looks the same at any resolution unless a fixed feather is given. The frame's ROI must stay
    as it is while the context is in use (the renderer writes it back only at the end).
    """
    xs, ys = landmarks[:468, 0], landmarks[:468, 1]
    face_size = float(max(xs.max() - xs.min(), ys.max() - ys.min()))
    sigma = max(1.0, 0.012 * face_size) if feather is None else feather
    masks = face_region_masks(landmarks, frame.shape[:2], feather=sigma)
    x0, y0, x1, y1 = masks.box
    if x1 <= x0 or y1 <= y0:
        return None
    local = landmarks.astype(np.float32)  # a copy
    local[:, 0] -= x0
    local[:, 1] -= y0
    return FaceContext(masks.box, frame[y0:y1, x0:x1], local, face_size, masks, sigma, resources)
