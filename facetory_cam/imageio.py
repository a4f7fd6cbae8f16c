"""Safe image decoding for user-supplied files.

Pillow reads only the header first, so a decompression bomb is refused before
any pixel is allocated; EXIF orientation is applied so phone photos are upright.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facetory_cam.errors import ImageError

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 100_000_000  # 100 megapixels


def check_input_file(path: Path, *, max_bytes: int, error: type[ImageError] = ImageError) -> None:
    """Refuse a user's input file that is missing, not a file, empty or too large, before reading it."""
    if not path.exists():
        raise error(f"{path}: no such file")
    if not path.is_file():
        raise error(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise error(f"{path}: the file is empty")
    if size > max_bytes:
        raise error(f"{path}: {size / 1e6:.0f} MB is larger than the {max_bytes / 1e6:.0f} MB limit")


def load_image(path: str | Path, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Decode ``path`` to an RGB uint8 array, or raise ImageError saying what is wrong."""
    p = Path(path)
    check_input_file(p, max_bytes=max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(f"{p}: {w}x{h} pixels is more than the {max_pixels / 1e6:.0f}-megapixel limit")
                if w < 8 or h < 8:
                    raise ImageError(f"{p}: {w}x{h} is too small to hold a face")
                im = ImageOps.exif_transpose(im)
                rgb = im.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8).copy()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{p}: too many pixels to decode safely (limit {max_pixels / 1e6:.0f} megapixels)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{p}: not an image this program can read") from exc
    except (OSError, ValueError) as exc:
        raise ImageError(f"{p}: the image could not be decoded ({exc})") from exc


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name from the magic bytes (JPEG, PNG, WebP: the photo formats accepted anywhere), else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def describe_format(data: bytes) -> str:
    """What a refused file actually is (EPS, PSD, TIFF, SVG, HTML, ...), so an error can say so."""
    head = data[:64].lstrip().lower()
    known = (
        (b"%!ps", "a PostScript/EPS file"),
        (b"\xc5\xd0\xd3\xc6", "an EPS file"),
        (b"8bps", "a Photoshop (PSD) file"),
        (b"ii*\x00", "a TIFF"),
        (b"mm\x00*", "a TIFF"),
        (b"gif8", "a GIF"),
        (b"bm", "a BMP"),
        (b"%pdf", "a PDF"),
        (b"pk\x03\x04", "a ZIP archive"),
        (b"<svg", "an SVG"),
        (b"<?xml", "an XML/SVG document"),
        (b"<!doctype", "an HTML page"),
        (b"<html", "an HTML page"),
    )
    for magic, name in known:
        if head.startswith(magic):
            return name
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "an HEIF/AVIF or video file"
    return "not a JPEG, PNG or WebP image"


def encode_png(image: Image.Image, *, compress_level: int = 3) -> bytes:
    """PNG bytes of ``image`` with no metadata chunks."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()
