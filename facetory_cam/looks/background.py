"""Puts something else behind the person: a blur of the room, a solid colour or a picture.

The person mask from the segmentation model is small (256 x 144) and noisy from frame
to frame, so all mask work happens at a low working resolution: the mask is smoothed
over time there (an exponential moving average whose rate rises where the mask changes
a lot, so real motion is followed at once while small flicker is averaged away),
feathered outwards by the look's ``edge`` so the person's own pixels stay untouched,
and only then scaled up to the frame for one blend. The blur is computed on a
downscaled frame with the person weighted out (normalised convolution), so the
person's colours do not bleed into the blurred room as a halo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetory_cam.errors import ImageError
from facetory_cam.imageio import load_image
from facetory_cam.looks.schema import Background, LookError

MASK_WORK_SIDE = 320  # long side of the working resolution of the mask
BLUR_WORK_SIGMA = 1.5  # the blur is done at a scale where its sigma is about this many pixels...
BLUR_MAX_SCALE = 0.25  # ...but never above a quarter of the frame's resolution
TAU_S = 0.12  # time constant of the mask's moving average for small changes
FOLLOW_LOW, FOLLOW_HIGH = 0.15, 0.5  # mask changes between these blend from smoothing to following
DEFAULT_DT = 1.0 / 30.0


def blur_sigma(strength: float, height: int, width: int) -> float:
    """Gaussian sigma in frame pixels for a blur strength in [0, 1], relative to the frame size."""
    return (0.004 + 0.046 * strength) * min(height, width)


def feather_sigma(edge: float, height: int, width: int) -> float:
    """Gaussian sigma in frame pixels of the outline's softness for ``edge`` in [0, 1]."""
    return 0.012 * edge * min(height, width)


def cover_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``image`` to cover height x width without distortion and crop the centre."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih)
    sw, sh = max(width, round(iw * scale)), max(height, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (sw, sh), interpolation=interp)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Downscale fast for a heavy blur: bilinear to twice the target, then a 2x2 box.

    This reads only a fraction of a large frame; the aliasing it lets through is averaged
    away by the blur that follows. A plain INTER_AREA resize at an odd ratio costs
    several times more.
    """
    ih, iw = image.shape[:2]
    if iw >= 4 * width and ih >= 4 * height:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


@dataclass
class _Buffers:
    alpha: np.ndarray
    alpha3: np.ndarray
    person: np.ndarray
    room: np.ndarray

    @classmethod
    def new(cls, h: int, w: int) -> _Buffers:
        return cls(
            np.empty((h, w), np.uint8),
            np.empty((h, w, 3), np.uint8),
            np.empty((h, w, 3), np.uint8),
            np.empty((h, w, 3), np.uint8),
        )


@dataclass
class _MaskState:
    size: tuple[int, int]  # frame height, width the state belongs to
    mask: np.ndarray  # smoothed mask at the working resolution
    timestamp: float | None


class BackgroundCompositor:
    """Replaces or blurs the background of a stream of frames from one source.

    Keeps the smoothed mask of the previous frame; call :meth:`reset` when the source
    changes. ``temporal=False`` switches the smoothing off (every frame on its own).
    ``base_dir`` is where a relative background image path is looked up (the look
    file's folder); without it the current directory is used.
    """

    def __init__(self, settings: Background, *, base_dir: Path | None = None, temporal: bool = True) -> None:
        self.settings = settings
        self.temporal = temporal
        self._state: _MaskState | None = None
        self._image: np.ndarray | None = None
        self._fitted: np.ndarray | None = None
        self._solid: np.ndarray | None = None
        self._buffers: _Buffers | None = None
        if settings.mode == "image":
            if settings.image is None:
                raise LookError("background.image: mode image needs an image path")
            path = Path(settings.image).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            try:
                self._image = load_image(path)
            except ImageError as exc:
                raise LookError(f"background.image: {exc}") from None

    @property
    def needs_mask(self) -> bool:
        """Whether :meth:`apply` needs a person mask (every mode except none)."""
        return self.settings.mode != "none"

    def reset(self) -> None:
        self._state = None

    def apply(self, frame: np.ndarray, person_mask: np.ndarray | None, timestamp: float | None = None) -> np.ndarray:
        """The frame with its background replaced; mode none returns ``frame`` itself.

        ``person_mask`` is float in [0, 1] (1 = person), at the frame's size or any
        other (it is resized). ``timestamp`` in seconds paces the temporal smoothing;
        without it frames are taken to be 1/30 s apart.
        """
        mode = self.settings.mode
        if mode == "none":
            return frame
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        if person_mask is None:
            raise ValueError(f"background mode {mode} needs a person mask")
        h, w = frame.shape[:2]
        low_mask = self._smoothed_mask(person_mask, h, w, timestamp)
        alpha_low = self._feather(low_mask, h, w)
        if mode == "blur":
            out = self._blurred(frame, alpha_low)  # a fresh array, blended into in place
        elif mode == "color":
            out = self._solid_background(h, w).copy()
        else:
            out = self._image_background(h, w).copy()
        self._blend_person(out, frame, alpha_low)
        return out

    def _blend_person(self, out: np.ndarray, frame: np.ndarray, alpha_low: np.ndarray) -> None:
        """out = frame * alpha + out * (1 - alpha), in 8-bit fixed point, in place.

        Alpha 1 keeps the person's pixel exactly. Only the bounding box of the person
        (alpha > 0) is touched. Work buffers are kept between frames: fresh full-frame
        arrays cost page faults that take longer than the arithmetic.
        """
        h, w = frame.shape[:2]
        a8 = np.empty(alpha_low.shape, dtype=np.uint8)
        cv2.convertScaleAbs(alpha_low, dst=a8, alpha=255.0)
        bx, by, bw, bh = cv2.boundingRect(a8)
        if bw == 0:
            return
        buf = self._buffers
        if buf is None or buf.alpha.shape != (h, w):
            buf = self._buffers = _Buffers.new(h, w)
        cv2.resize(a8, (w, h), dst=buf.alpha, interpolation=cv2.INTER_LINEAR)
        # the bounding box in frame pixels, one low-resolution pixel wider for the bilinear spread
        sx, sy = w / a8.shape[1], h / a8.shape[0]
        x0, y0 = max(0, int((bx - 1) * sx)), max(0, int((by - 1) * sy))
        x1, y1 = min(w, int(np.ceil((bx + bw + 1) * sx))), min(h, int(np.ceil((by + bh + 1) * sy)))
        alpha3, person, room = (b[y0:y1, x0:x1] for b in (buf.alpha3, buf.person, buf.room))
        region = out[y0:y1, x0:x1]
        cv2.cvtColor(buf.alpha[y0:y1, x0:x1], cv2.COLOR_GRAY2RGB, dst=alpha3)
        cv2.multiply(frame[y0:y1, x0:x1], alpha3, dst=person, scale=1.0 / 255.0)
        cv2.bitwise_not(alpha3, dst=alpha3)
        cv2.multiply(region, alpha3, dst=room, scale=1.0 / 255.0)
        cv2.add(person, room, dst=region)

    # the mask

    def _smoothed_mask(self, person_mask: np.ndarray, h: int, w: int, timestamp: float | None) -> np.ndarray:
        mask = np.asarray(person_mask)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.dtype == np.uint8:
            mask = mask.astype(np.float32) * (1.0 / 255.0)
        elif mask.dtype != np.float32:
            mask = mask.astype(np.float32)
        scale = min(1.0, MASK_WORK_SIDE / max(h, w))
        lw, lh = max(1, round(w * scale)), max(1, round(h * scale))
        # the model's mask is smooth (upsampled from 256 px), so a bilinear sample loses
        # nothing and reads a fraction of the memory that box averaging would
        low = cv2.resize(mask, (lw, lh), interpolation=cv2.INTER_LINEAR)
        np.clip(low, 0.0, 1.0, out=low)
        state = self._state
        fresh = (
            not self.temporal
            or state is None
            or state.size != (h, w)
            or (timestamp is not None and state.timestamp is not None and timestamp <= state.timestamp)
        )
        if fresh:
            self._state = _MaskState((h, w), low, timestamp)
            return low
        assert state is not None
        dt = DEFAULT_DT
        if timestamp is not None and state.timestamp is not None:
            dt = min(1.0, timestamp - state.timestamp)
        base = 1.0 - float(np.exp(-dt / TAU_S))
        diff = low - state.mask
        # motion-aware rate: small changes (flicker) are averaged, large ones (motion) followed
        follow = np.clip((np.abs(diff) - FOLLOW_LOW) * (1.0 / (FOLLOW_HIGH - FOLLOW_LOW)), 0.0, 1.0)
        rate = base + (1.0 - base) * follow * follow * (3.0 - 2.0 * follow)
        smoothed = state.mask + rate * diff
        self._state = _MaskState((h, w), smoothed, timestamp)
        return smoothed

    def _feather(self, low_mask: np.ndarray, h: int, w: int) -> np.ndarray:
        """Soften the outline outwards only, so pixels the model calls person stay untouched."""
        sigma = feather_sigma(self.settings.edge, h, w) * low_mask.shape[1] / w
        if sigma < 0.3:
            return low_mask
        soft = cv2.GaussianBlur(low_mask, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        return np.maximum(low_mask, soft)

    # the backgrounds

    def _blurred(self, frame: np.ndarray, alpha_low: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        sigma = blur_sigma(self.settings.blur, h, w)
        scale = min(BLUR_MAX_SCALE, BLUR_WORK_SIGMA / sigma)
        bw, bh = max(2, round(w * scale)), max(2, round(h * scale))
        small = shrink(frame, bw, bh)
        room = cv2.resize(1.0 - alpha_low, (bw, bh), interpolation=cv2.INTER_LINEAR)
        s = sigma * bw / w
        # normalised convolution: average only the room's pixels, so the person does not
        # bleed into the blur; where no room is near (deep inside the person) the result
        # is hidden by the person anyway
        k = 2 * int(np.ceil(3.0 * s)) + 1
        num = cv2.GaussianBlur(small.astype(np.float32) * room[..., None], (k, k), s, borderType=cv2.BORDER_REPLICATE)
        den = cv2.GaussianBlur(room, (k, k), s, borderType=cv2.BORDER_REPLICATE)
        den += 1e-3
        blurred = cv2.divide(num, cv2.cvtColor(den, cv2.COLOR_GRAY2RGB))
        return cv2.resize(np.rint(blurred).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)

    def _solid_background(self, h: int, w: int) -> np.ndarray:
        if self._solid is None or self._solid.shape[:2] != (h, w):
            rgb = np.array([round(c * 255.0) for c in self.settings.color.rgb], dtype=np.uint8)
            self._solid = np.empty((h, w, 3), dtype=np.uint8)
            self._solid[:] = rgb
        return self._solid

    def _image_background(self, h: int, w: int) -> np.ndarray:
        assert self._image is not None
        if self._fitted is None or self._fitted.shape[:2] != (h, w):
            self._fitted = cover_fit(self._image, h, w)
        return self._fitted
