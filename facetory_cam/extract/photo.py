"""Safe decoding of an uploaded photo: JPEG, PNG and WebP only, judged by content, at a working size.

A photo arrives from a user (or over the HTTP API), so nothing about it is trusted: the format
is sniffed from its first bytes and Pillow is only allowed that one decoder (a GIF or TIFF
renamed ``.jpg`` never reaches another plugin); the pixel count is checked from the header
before any pixel is allocated, against the configured limit and Pillow's own bomb limit; EXIF
orientation is applied so phone photos come out upright. Faces never need 12 megapixels, so a
large JPEG is decoded at a reduced scale by the JPEG decoder itself (``draft``), which is several
times faster than decoding in full and shrinking, and the result is brought to ``work_side``.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facetory_cam.errors import ImageError
from facetory_cam.imageio import check_input_file, describe_format, sniff_format

__all__ = ["FORMATS", "Photo", "decode_photo", "read_photo", "sniff_format"]

# Pillow format name -> what the CLI calls it. Anything else is refused.
FORMATS: dict[str, str] = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
_MIN_SIDE = 8  # px: anything smaller cannot hold a face


@dataclass(frozen=True)
class Photo:
    """A decoded photo at working resolution, and what is known about the original."""

    rgb: np.ndarray  # (h, w, 3) uint8, upright, long side at most the working side
    scale: float  # original pixels per working pixel (>= 1)
    size: tuple[int, int]  # (width, height) of the original, upright
    format: str  # "jpeg", "png" or "webp"
    sha256: str  # of the bytes as given


def read_photo(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of a photo file, after refusing a missing, empty or oversized one without reading it."""
    p = Path(path)
    check_input_file(p, max_bytes=max_bytes)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read ({exc.strerror or exc})") from None


def _pixel_limit(max_pixels: int) -> int:
    """The configured limit, never above Pillow's own decompression-bomb limit (its limits stay on)."""
    pillow = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow is None else min(max_pixels, int(pillow))


def decode_photo(data: bytes, *, max_bytes: int, max_pixels: int, work_side: int, name: str = "photo") -> Photo:
    """Decode JPEG, PNG or WebP bytes to an upright RGB image whose long side is at most ``work_side``.

    Raises ImageError naming ``name`` when the bytes are too many, not an allowed format, too many
    pixels, too small or broken.
    """
    if len(data) == 0:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"{name}: {len(data) / 1e6:.1f} MB is larger than the {max_bytes / 1e6:.0f} MB limit")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(f"{name}: {describe_format(data)}; only JPEG, PNG and WebP photos are accepted")
    limit = _pixel_limit(max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            w, h = im.size
            if w * h > limit:
                raise ImageError(
                    f"{name}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the {limit / 1e6:.0f}-megapixel limit"
                )
            if min(w, h) < _MIN_SIDE:
                raise ImageError(f"{name}: {w}x{h} is too small to hold a face")
            orientation = im.getexif().get(0x0112, 1)
            upright = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
            ratio = work_side / max(w, h)
            if fmt == "JPEG" and ratio < 1.0:
                # The decoder scales by 1/2, 1/4 or 1/8 and keeps at least the size asked for.
                im.draft("RGB", (math.ceil(w * ratio), math.ceil(h * ratio)))
            im.load()
            frame = ImageOps.exif_transpose(im)
            rgb = _flatten(frame)
    except ImageError:
        raise
    except Image.DecompressionBombError:  # Pillow's own guard, at open: far past any limit
        raise ImageError(
            f"{name}: too many pixels to decode safely (the limit is {limit / 1e6:.0f} megapixels)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: the {FORMATS[fmt].upper()} data is not readable") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{name}: the {FORMATS[fmt].upper()} image could not be decoded ({exc})") from None
    long_side = max(rgb.shape[:2])
    if long_side > work_side:
        k = work_side / long_side
        size = (max(1, round(rgb.shape[1] * k)), max(1, round(rgb.shape[0] * k)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    scale = max(upright) / max(rgb.shape[:2])
    return Photo(
        rgb=np.ascontiguousarray(rgb),
        scale=float(scale),
        size=upright,
        format=FORMATS[fmt],
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _flatten(im: Image.Image) -> np.ndarray:
    """RGB uint8 pixels; a transparent background becomes white rather than black."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)
