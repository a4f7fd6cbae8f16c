"""Untrusted images and multipart bodies: sniffed, size-capped, decoded safely, re-encoded.

Nothing a client sends is stored or passed on as sent. The format is judged by magic bytes
(JPEG, PNG, WebP; anything else is 415 whatever its name or Content-Type says) and Pillow
may use only that one decoder, so an EPS (Ghostscript), SVG, TIFF or PSD renamed ``.jpg``
never reaches another parser. The pixel count is checked from the header before a pixel
is allocated, and Pillow's own decompression-bomb check runs with its warning made an
error. EXIF orientation is applied, then pixels are re-encoded into a fresh PNG with no
metadata: GPS tags, ICC profiles and anything appended after the image (a ZIP or HTML
polyglot) are gone. Multipart bodies are parsed here, in memory, with a cap on parts,
headers and bytes, so no temp file is ever written and client file names are never used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from facetory_cam.imageio import describe_format, encode_png, sniff_format

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "Part",
    "SafeImage",
    "UploadError",
    "decode_data_uri",
    "decode_image",
    "encode_png",
    "read_multipart",
    "sanitize_photo",
    "sanitize_texture",
    "sanitize_thumbnail",
    "sniff_format",
]

FORMATS = ("JPEG", "PNG", "WEBP")
MAX_PIXELS = 40_000_000  # below Pillow's bomb limit (89 MP); no face needs more
MAX_SIDE = 12_000  # px a side: a 1 x 40M strip is no photo
MIN_SIDE = 8
PHOTO_SIDE = 2048  # kept photos and what the extractor sees: faces need no more
THUMBNAIL_SIDE = 512
TEXTURE_MAX_SIDE = 4096


class UploadError(ValueError):
    """The upload is refused; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SafeImage:
    """Decoded, upright pixels and facts about the original; ``image`` has no metadata attached."""

    image: Image.Image  # mode RGB or RGBA
    format: str  # "JPEG", "PNG" or "WEBP" as sniffed
    size: tuple[int, int]  # (width, height) of the original, upright
    sha256: str  # of the bytes as received (for provenance only; the bytes themselves are dropped)


def decode_image(
    data: bytes,
    *,
    what: str = "image",
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    keep_alpha: bool = False,
) -> SafeImage:
    """Decode JPEG/PNG/WebP bytes safely; ``max_side`` shrinks the result (JPEG decodes at reduced scale).

    Raises UploadError: 415 for another format, 422 for empty, truncated, broken or too large images.
    """
    if not data:
        raise UploadError(422, f"the {what} is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise UploadError(415, f"the {what} is {describe_format(data)}; only JPEG, PNG and WebP are accepted")
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, int(Image.MAX_IMAGE_PIXELS))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                w, h = im.size
                if w * h > limit or max(w, h) > MAX_SIDE:
                    raise UploadError(
                        422,
                        f"the {what} is {w}x{h} pixels, more than the limit "
                        f"({limit / 1e6:.0f} megapixels, {MAX_SIDE} px a side)",
                    )
                if min(w, h) < MIN_SIDE:
                    raise UploadError(422, f"the {what} is {w}x{h} pixels, too small")
                if getattr(im, "n_frames", 1) > 1:
                    raise UploadError(422, f"the {what} is animated; send a single still image")
                orientation = im.getexif().get(0x0112, 1)
                upright = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
                if max_side is not None and fmt == "JPEG" and max(w, h) > max_side:
                    k = max_side / max(w, h)
                    im.draft("RGB", (max(1, int(w * k)), max(1, int(h * k))))  # keeps at least this size
                im.load()
                upright_im = ImageOps.exif_transpose(im)
                has_alpha = upright_im.mode in ("RGBA", "LA", "PA") or "transparency" in upright_im.info
                mode = "RGBA" if keep_alpha and has_alpha else "RGB"
                if mode == "RGB" and has_alpha:  # transparent areas become white, not black
                    rgba = upright_im.convert("RGBA")
                    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    out = Image.alpha_composite(flat, rgba).convert("RGB")
                else:
                    out = upright_im.convert(mode)
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(422, f"the {what} has too many pixels to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise UploadError(422, f"the {what} is not a readable {fmt} image") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise UploadError(422, f"the {what} ({fmt}) could not be decoded: {exc}") from None
    clean = Image.new(out.mode, out.size)  # fresh image: no info, no EXIF, no ICC profile
    clean.paste(out)
    if max_side is not None and max(clean.size) > max_side:
        clean.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return SafeImage(image=clean, format=fmt, size=upright, sha256=hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class CleanPhoto:
    """A re-encoded photo: what the extractor reads and, if the user opted in, what the library keeps."""

    png: bytes
    width: int
    height: int
    format: str
    original_sha256: str
    original_size: tuple[int, int]  # (width, height) of the upload, upright


def sanitize_photo(data: bytes, *, max_pixels: int = MAX_PIXELS, side: int = PHOTO_SIDE) -> CleanPhoto:
    """Decode an uploaded photo and re-encode it upright, stripped, at most ``side`` pixels a side."""
    safe = decode_image(data, what="photo", max_pixels=max_pixels, max_side=side)
    png = encode_png(safe.image, compress_level=1)
    return CleanPhoto(png, safe.image.width, safe.image.height, safe.format, safe.sha256, safe.size)


def sanitize_texture(data: bytes) -> bytes:
    """A makeup texture as a clean RGBA PNG; it must be square and have an alpha channel."""
    safe = decode_image(data, what="texture", max_pixels=TEXTURE_MAX_SIDE**2, keep_alpha=True)
    w, h = safe.image.size
    if safe.image.mode != "RGBA":
        raise UploadError(422, "the texture must have an alpha channel (RGBA PNG)")
    if w != h or w > TEXTURE_MAX_SIDE:
        raise UploadError(422, f"the texture must be square and at most {TEXTURE_MAX_SIDE} px, got {w}x{h}")
    return encode_png(safe.image)


def sanitize_thumbnail(data: bytes) -> bytes:
    """A thumbnail as a clean RGB PNG at most 512 px a side."""
    safe = decode_image(data, what="thumbnail", max_side=THUMBNAIL_SIDE)
    return encode_png(safe.image)


def decode_data_uri(uri: str, *, max_bytes: int) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URI (the image itself is checked by the caller)."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise UploadError(422, "an image must be a data:image/png;base64,... URI")
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise UploadError(413, f"the image is larger than {max_bytes // 2**20} MB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(422, "the data URI is not valid base64") from None


# -- multipart --------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One multipart field; ``filename`` is what the client claimed and is only ever logged."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def _disposition(value: bytes) -> tuple[str | None, str | None]:
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(value)
    if kind != b"form-data":
        return None, None
    name = params.get(b"name")
    filename = params.get(b"filename")
    return (
        None if name is None else name.decode("utf-8", "replace"),
        None if filename is None else filename.decode("utf-8", "replace"),
    )


async def read_multipart(
    content_type: str,
    chunks: AsyncIterator[bytes],
    *,
    fields: dict[str, int],
    max_parts: int,
) -> dict[str, Part]:
    """Parse a ``multipart/form-data`` body held in memory; ``fields`` maps each allowed name to its byte cap.

    Raises UploadError: 400 for a malformed body, an unknown or repeated field or too many
    parts; 413 for a field over its cap. The total body size is capped before this (middleware).
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(415, "send the file as multipart/form-data")
    if len(boundary) > 70:
        raise UploadError(400, "the multipart boundary is longer than 70 characters")
    parts: dict[str, Part] = {}
    state: dict[str, object] = {"count": 0, "ended": False}
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}
    data = bytearray()
    cap = [0]

    def on_part_begin() -> None:
        state["count"] = int(state["count"]) + 1  # type: ignore[call-overload]
        if int(state["count"]) > max_parts:  # type: ignore[call-overload]
            raise UploadError(400, f"too many parts in the form (at most {max_parts})")
        headers.clear()
        data.clear()
        cap[0] = 0

    def on_header_field(buf: bytes, start: int, end: int) -> None:
        header_field.extend(buf[start:end])

    def on_header_value(buf: bytes, start: int, end: int) -> None:
        header_value.extend(buf[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        name, _ = _disposition(headers.get(b"content-disposition", b""))
        if name is None:
            raise UploadError(400, "a form part has no name")
        if name not in fields:
            raise UploadError(400, f"unexpected form field {name[:40]!r}; expected {', '.join(sorted(fields))}")
        if name in parts:
            raise UploadError(400, f"the form field {name!r} was sent twice")
        cap[0] = fields[name]

    def on_part_data(buf: bytes, start: int, end: int) -> None:
        if len(data) + (end - start) > cap[0]:
            raise UploadError(413, f"a form field is larger than {cap[0] // 1024} KiB")
        data.extend(buf[start:end])

    def on_part_end() -> None:
        name, filename = _disposition(headers.get(b"content-disposition", b""))
        assert name is not None
        ctype = headers.get(b"content-type")
        parts[name] = Part(name, bytes(data), filename, None if ctype is None else ctype.decode("latin-1"))

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
        max_header_count=8,
        max_header_size=1024,
    )
    try:
        async for chunk in chunks:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(400, f"malformed multipart body: {exc}") from None
    if not state["ended"]:
        raise UploadError(400, "the multipart body ended early")
    return parts
