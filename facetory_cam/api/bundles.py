"""``.facetory`` bundles: a look shared as a zip of ``look.json``, ``texture.png`` and ``thumbnail.png``.

An imported bundle is an untrusted archive. Before anything is written the whole archive is
checked: exactly the three known member names (so no ``../`` or absolute path, no nested
folder, no symlink can ever name a place on disk), no duplicates, no encryption, at most a
few members, each under its own byte cap, a bounded total and a bounded compression ratio
(zip bombs), and every byte read is counted rather than trusting the sizes the archive
claims. The look must validate; images inside are decoded and re-encoded like uploads.
Exports never carry the reference photo or its hash.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass

from facetory_cam.api.store import TEXTURE_REF
from facetory_cam.api.uploads import (
    UploadError,
    decode_data_uri,
    sanitize_texture,
    sanitize_thumbnail,
)
from facetory_cam.looks.schema import Look, LookError, dump_look, parse_look

__all__ = ["BUNDLE_MEDIA_TYPE", "Bundle", "BundleError", "export_bundle", "read_bundle"]

BUNDLE_MEDIA_TYPE = "application/vnd.facetory.look+zip"
LOOK_MEMBER = "look.json"
TEXTURE_MEMBER = "texture.png"
THUMBNAIL_MEMBER = "thumbnail.png"
MEMBER_LIMITS = {LOOK_MEMBER: 256 * 1024, TEXTURE_MEMBER: 16 * 2**20, THUMBNAIL_MEMBER: 2 * 2**20}
MAX_MEMBERS = 3
MAX_TOTAL = 16 * 2**20  # uncompressed bytes of all members (less than the member caps added up)
MAX_RATIO = 100  # uncompressed / compressed, for members above RATIO_FLOOR
RATIO_FLOOR = 64 * 1024
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # exports are byte-for-byte reproducible


class BundleError(UploadError):
    """The bundle is refused; nothing was written."""


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its look (texture named ``texture.png``) and clean PNG images."""

    look: Look
    texture_png: bytes | None
    thumbnail_png: bytes | None


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    shown = repr(name[:80])
    if "\x00" in name or "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(400, f"unsafe member name {shown}: absolute or Windows path")
    if ".." in name.split("/"):
        raise BundleError(400, f"unsafe member name {shown}: it climbs out of the bundle (..)")
    if info.is_dir() or "/" in name:
        raise BundleError(400, f"unexpected member {shown}: a bundle holds no folders")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BundleError(400, f"member {shown} is a symbolic link")
    if name not in MEMBER_LIMITS:
        raise BundleError(400, f"unexpected member {shown}; a bundle holds {', '.join(MEMBER_LIMITS)}")
    if info.flag_bits & 0x1:
        raise BundleError(400, f"member {shown} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(400, f"member {shown} uses an unsupported compression method")
    if info.file_size > MEMBER_LIMITS[name]:
        raise BundleError(413, f"member {shown} is {info.file_size} bytes, over its {MEMBER_LIMITS[name]}-byte limit")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise BundleError(413, f"member {shown} expands more than {MAX_RATIO} times: refused as a zip bomb")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, never more than its cap whatever the archive claims."""
    limit = MEMBER_LIMITS[info.filename]
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise BundleError(413, f"member {info.filename!r} is over its {limit}-byte limit")
    return data


def read_bundle(data: bytes) -> Bundle:
    """Check and decode a bundle; raises BundleError (400 bad archive, 413 too big, 422 bad look or image)."""
    if not data:
        raise BundleError(400, "the bundle is empty")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise BundleError(400, "not a .facetory bundle (not a zip archive)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BundleError(400, f"the bundle has {len(infos)} members; at most {MAX_MEMBERS} are allowed")
        seen: set[str] = set()
        for info in infos:
            _check_member(info)
            if info.filename in seen:
                raise BundleError(400, f"member {info.filename!r} appears twice")
            seen.add(info.filename)
        if sum(i.file_size for i in infos) > MAX_TOTAL:
            raise BundleError(413, f"the bundle unpacks to more than {MAX_TOTAL // 2**20} MB")
        if LOOK_MEMBER not in seen:
            raise BundleError(400, f"the bundle has no {LOOK_MEMBER}")
        members: dict[str, bytes] = {}
        total = 0
        try:
            for info in infos:
                members[info.filename] = _read_member(zf, info)
                total += len(members[info.filename])
                if total > MAX_TOTAL:
                    raise BundleError(413, f"the bundle unpacks to more than {MAX_TOTAL // 2**20} MB")
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
            if isinstance(exc, BundleError):
                raise
            raise BundleError(400, f"the bundle is damaged: {exc}") from None
    try:
        text = members[LOOK_MEMBER].decode("utf-8")
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(422, f"{LOOK_MEMBER} is not valid JSON: {exc}") from None
    try:
        look = parse_look(doc, source=LOOK_MEMBER)
    except LookError as exc:
        raise BundleError(422, str(exc)) from None
    texture: bytes | None = None
    tex = look.layers.texture
    if tex is not None:
        if tex.image == TEXTURE_REF:
            if TEXTURE_MEMBER not in members:
                raise BundleError(422, f"the look names {TEXTURE_REF} but the bundle does not hold it")
            raw = members[TEXTURE_MEMBER]
        elif tex.image.startswith("data:"):
            raw = decode_data_uri(tex.image, max_bytes=MEMBER_LIMITS[TEXTURE_MEMBER])
        else:
            raise BundleError(422, "layers.texture.image must be texture.png inside the bundle, not a file path")
        texture = _image(sanitize_texture, raw, "texture")
        look = look.model_copy(
            update={"layers": look.layers.model_copy(update={"texture": tex.model_copy(update={"image": TEXTURE_REF})})}
        )
    elif TEXTURE_MEMBER in members:
        raise BundleError(422, f"the bundle holds {TEXTURE_MEMBER} but the look has no texture layer")
    if look.background.image is not None:
        raise BundleError(422, "background.image: a shared look cannot name an image file")
    thumbnail = None
    if THUMBNAIL_MEMBER in members:
        thumbnail = _image(sanitize_thumbnail, members[THUMBNAIL_MEMBER], "thumbnail")
    provenance = look.provenance.model_copy(update={"source": "shared", "photo_sha256": None})
    return Bundle(look.model_copy(update={"provenance": provenance}), texture, thumbnail)


def _image(sanitize: object, raw: bytes, what: str) -> bytes:
    try:
        return sanitize(raw)  # type: ignore[operator,no-any-return]
    except UploadError as exc:
        raise BundleError(422, f"{what} in the bundle: {exc.message}") from None


def export_bundle(look: Look, *, texture_png: bytes | None, thumbnail_png: bytes | None) -> bytes:
    """The bundle bytes of ``look`` (whose texture, if any, is named ``texture.png``); no photo, no photo hash."""
    provenance = look.provenance.model_copy(update={"photo_sha256": None})
    shared = look.model_copy(update={"provenance": provenance})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = [(LOOK_MEMBER, dump_look(shared).encode("utf-8"))]
        if texture_png is not None:
            entries.append((TEXTURE_MEMBER, texture_png))
        if thumbnail_png is not None:
            entries.append((THUMBNAIL_MEMBER, thumbnail_png))
        for name, payload in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, payload)
    return buf.getvalue()
