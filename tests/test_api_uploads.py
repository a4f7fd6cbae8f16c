"""Hostile uploads against the real server: bombs, disguised formats, polyglots, broken files, oversize
bodies with and without Content-Length, too many parts, traversal file names. Every one is refused with a
clear status or sanitised, no temp file is left anywhere, and the camera keeps sending frames."""

from __future__ import annotations

import io
import socket
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import TOKEN, Harness, harness, jpeg_bytes, live_server, png_bytes, simple_look, texture_png
from PIL import Image

from facetory_cam.api.extraction import ExtractedLook, FaceFound
from facetory_cam.api.uploads import PHOTO_SIDE, sniff_format
from facetory_cam.looks.schema import parse_look

MAX_UPLOAD = 2 * 2**20


class RecordingExtractor:
    """Stands in for the photo-to-look extractor: checks what it is given is a clean PNG, returns a look."""

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: list[bytes] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, photo: bytes, face: int | None) -> ExtractedLook:
        assert sniff_format(photo) == "PNG"
        with Image.open(io.BytesIO(photo)) as im:
            assert not im.getexif() and "icc_profile" not in im.info and im.mode == "RGB"
            assert max(im.size) <= PHOTO_SIDE
        with self.lock:
            self.seen.append(photo)
        if self.delay:
            time.sleep(self.delay)
        import base64

        doc = simple_look("From photo")
        doc["layers"]["texture"] = {"image": "data:image/png;base64," + base64.b64encode(texture_png()).decode()}
        return ExtractedLook(parse_look(doc), [FaceFound(0, (1.0, 2.0, 30.0, 40.0), 0.93)], 0 if face is None else face)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_header(w: int, h: int) -> bytes:
    """A PNG that declares w x h but carries almost no data (a decompression bomb's header)."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b"")


def png_text_bomb() -> bytes:
    base = png_bytes((32, 32))
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (50 * 2**20), 9))
    return base[:33] + ztxt + base[33:]


def webp_with_header(w: int, h: int) -> bytes:
    bits = (w - 1) | ((h - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\0" * 32
    body = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def jpeg_declaring(w: int, h: int) -> bytes:
    data = bytearray(jpeg_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def real_png_bomb() -> bytes:
    """A real, fully decodable 8000 x 8000 picture in about 10 KB: 64 megapixels once decoded."""
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, format="PNG")
    return buf.getvalue()


def tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, format="TIFF")
    return buf.getvalue()


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (32, 32)).save(buf, format="GIF")
    return buf.getvalue()


def apng() -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def exif_photo() -> bytes:
    """A 60 x 40 JPEG rotated by EXIF (orientation 6) carrying a description and GPS tags."""
    im = Image.new("RGB", (60, 40), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "SECRET-MARKER home address"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.0)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def _zip_payload() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evil.html", "<script>alert(1)</script>")
    return buf.getvalue()


REFUSED: dict[str, tuple[bytes, int, str]] = {
    "png bomb header 100000x100000": (png_with_header(100_000, 100_000), 422, "pixels"),
    "png real bomb 8000x8000": (real_png_bomb(), 422, "pixels"),
    "png text-chunk bomb": (png_text_bomb(), 422, "decoded"),
    "webp bomb 16383x16383": (webp_with_header(16_383, 16_383), 422, "pixels"),
    "jpeg declaring 60000x60000": (jpeg_declaring(60_000, 60_000), 422, "pixels"),
    "jpeg strip 12001x8": (jpeg_declaring(12_001, 8), 422, "pixels"),
    "tiny 4x4": (png_bytes((4, 4)), 422, "too small"),
    "animated png": (apng(), 422, "animated"),
    "eps as jpg": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", 415, "EPS"),
    "eps binary as jpg": (b"\xc5\xd0\xd3\xc6" + b"\0" * 64, 415, "EPS"),
    "svg as jpg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 415, "SVG"),
    "xml svg as jpg": (b'<?xml version="1.0"?><svg/>', 415, "SVG"),
    "tiff as jpg": (tiff(), 415, "TIFF"),
    "psd as jpg": (b"8BPS\x00\x01" + b"\0" * 64, 415, "Photoshop"),
    "gif as jpg": (gif(), 415, "GIF"),
    "html as jpg": (b"<!DOCTYPE html><script>alert(1)</script>", 415, "HTML"),
    "zip as jpg": (_zip_payload(), 415, "ZIP"),
    "pdf as jpg": (b"%PDF-1.7\n", 415, "PDF"),
    "garbage": (bytes(range(256)) * 4, 415, "not a JPEG"),
    "truncated jpeg": (jpeg_bytes((256, 256))[:1500], 422, "decoded"),
    "truncated png": (png_bytes((300, 300), color=(1, 2, 3))[:60], 422, "PNG"),
    "jpeg magic only": (b"\xff\xd8\xff", 422, "JPEG"),
    "empty file": (b"", 422, "empty"),
}


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZb0undary") -> tuple[bytes, str]:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _raw_post(port: int, path: str, body_chunks: Iterator[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    """Send a request by hand (so Content-Length can be left out), stop when the server answers."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.encode())
        s.settimeout(0.001)
        reply = b""
        try:
            for piece in body_chunks:
                s.sendall(piece)
                try:
                    got = s.recv(65536)
                    if got:
                        reply += got
                        break
                except (TimeoutError, BlockingIOError):
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(20)
        while not _complete(reply):
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            reply += got
    return int(reply.split(b" ", 2)[1]), reply


def _complete(reply: bytes) -> bool:
    """Headers and the whole Content-Length body are in."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def _chunked(total: int, piece: int = 64 * 1024, prefix: bytes = b"") -> Iterator[bytes]:
    sent = 0
    data = prefix + b"\xff" * piece
    while sent < total:
        block = data[: min(piece, total - sent)] if sent else data[:piece]
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
        sent += len(block)
    yield b"0\r\n\r\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """A daemon with reference photos kept (so what is stored can be inspected), its real server, a temp dir."""
    root = tmp_path_factory.mktemp("uploads")
    scratch = root / "tmp"
    scratch.mkdir()
    old = tempfile.tempdir
    tempfile.tempdir = str(scratch)  # anything that spools to disk would land here
    extractor = RecordingExtractor()
    try:
        with harness(root, extractor=extractor, keep_reference_photos=True, max_upload_bytes=MAX_UPLOAD) as h:
            with live_server(h) as (server, client):
                yield h, server, client, extractor, scratch
    finally:
        tempfile.tempdir = old


def _assert_clean(h: Harness, scratch: Path) -> None:
    assert list(scratch.iterdir()) == []
    assert h.store.verify() == []
    assert not [p for p in h.library.rglob(".tmp-*")]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_photo_is_refused_clearly(env, case: str) -> None:
    h, server, client, extractor, scratch = env
    data, status, words = REFUSED[case]
    before = h.store.fingerprint()
    calls = len(extractor.seen)
    t0 = time.monotonic()
    r = client.post("/api/looks/extract", files={"photo": ("photo.jpg", data, "image/jpeg")})
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["detail"].lower(), r.json()
    assert time.monotonic() - t0 < 10.0
    assert len(extractor.seen) == calls  # the extractor never saw it
    assert h.store.fingerprint() == before
    _assert_clean(h, scratch)


@pytest.mark.parametrize("trailer", [_zip_payload(), b"<html><script>alert(document.cookie)</script></html>"])
def test_polyglot_is_re_encoded_and_the_trailer_is_gone(env, trailer: bytes) -> None:
    h, server, client, extractor, scratch = env
    original = jpeg_bytes((120, 90)) + trailer
    r = client.post("/api/looks/extract", files={"photo": ("p.jpg", original, "image/jpeg")})
    assert r.status_code == 201, r.text
    record = h.store.get(r.json()["look"]["id"])
    stored = h.store.read_blob("photo", record.photo_sha256 or "")
    assert stored != original and sniff_format(stored) == "PNG"
    assert trailer[:8] not in stored and b"PK\x03\x04" not in stored and b"<script" not in stored
    assert stored == extractor.seen[-1]  # the extractor got the clean copy too, never the upload
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (120, 90) and set(im.info) <= {"dpi"}
    # The original bytes are never served back: no route returns the photo.
    for url in (f"/api/looks/{record.id}", f"/api/looks/{record.id}/export"):
        body = client.get(url).content
        assert trailer[:16] not in body and original[:64] not in body
    _assert_clean(h, scratch)


def test_exif_is_applied_then_stripped(env) -> None:
    h, server, client, extractor, scratch = env
    r = client.post("/api/looks/extract", files={"photo": ("p.jpg", exif_photo(), "image/jpeg")})
    assert r.status_code == 201, r.text
    record = h.store.get(r.json()["look"]["id"])
    stored = h.store.read_blob("photo", record.photo_sha256 or "")
    assert b"SECRET-MARKER" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (40, 60)  # orientation 6 applied: upright
        assert not im.getexif()
    assert record.look.provenance.source == "photo" and record.look.provenance.photo_sha256 is not None
    assert r.json()["faces"] == [{"index": 0, "box": [1.0, 2.0, 30.0, 40.0], "score": 0.93}]
    assert r.json()["look"]["has_texture"] is True


@pytest.mark.parametrize(
    "filename",
    ["../../../../etc/passwd", "/etc/cron.d/evil.jpg", "..\\..\\windows\\win.ini", "a/../../b.jpg", "\x00evil.jpg"],
)
def test_client_file_names_are_never_used(env, filename: str) -> None:
    h, server, client, extractor, scratch = env
    body, ctype = _multipart([("photo", filename, jpeg_bytes())])
    r = client.post("/api/looks/extract", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert filename not in r.text
    names = [p.name for p in h.library.rglob("*") if p.is_file()]
    assert not [n for n in names if "passwd" in n or "win.ini" in n or "evil" in n]
    assert not (h.library.parent / "etc").exists()
    _assert_clean(h, scratch)


def test_oversize_body_with_content_length_is_413_before_reading(env) -> None:
    h, server, client, extractor, scratch = env
    before = h.store.fingerprint()
    body, ctype = _multipart([("photo", "big.jpg", jpeg_bytes() + b"\0" * (MAX_UPLOAD + 10))])
    status, reply = _raw_post(
        server.port, "/api/looks/extract", iter([body]), {"Content-Type": ctype, "Content-Length": str(len(body))}
    )
    assert status == 413 and b"larger than 2 MB" in reply
    assert h.store.fingerprint() == before
    _assert_clean(h, scratch)


def test_oversize_chunked_body_is_413_while_streaming(env) -> None:
    h, server, client, extractor, scratch = env
    before = h.store.fingerprint()
    head = b'--B\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"\r\n\r\n'
    status, reply = _raw_post(
        server.port,
        "/api/looks/extract",
        _chunked(50 * 2**20, prefix=head),
        {"Content-Type": "multipart/form-data; boundary=B", "Transfer-Encoding": "chunked"},
    )
    assert status == 413 and b"request body is larger than 2 MB" in reply, reply[:300]
    # A JSON route has a much smaller cap, counted the same way.
    status, reply = _raw_post(
        server.port,
        "/api/snapshot",
        _chunked(200 * 1024, prefix=b'{"source": 0, "pad": "'),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert status == 413 and b"request body is larger than 64 KiB" in reply, reply[:300]
    assert h.store.fingerprint() == before
    _assert_clean(h, scratch)


@pytest.mark.parametrize("count", [5, 10_000])
def test_too_many_parts_is_400(env, count: int) -> None:
    h, server, client, extractor, scratch = env
    before = h.store.fingerprint()
    body, ctype = _multipart([("face", None, b"0")] * count)
    t0 = time.monotonic()
    r = client.post("/api/looks/extract", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400 and ("too many parts" in r.text or "twice" in r.text), r.text
    assert time.monotonic() - t0 < 5.0
    assert h.store.fingerprint() == before
    _assert_clean(h, scratch)


MALFORMED = {
    "unknown field": (_multipart([("avatar", "a.jpg", jpeg_bytes())]), 400, "unexpected form field"),
    "photo twice": (_multipart([("photo", "a.jpg", jpeg_bytes()), ("photo", "b.jpg", jpeg_bytes())]), 400, "twice"),
    "no photo": (_multipart([("face", None, b"0")]), 422, "needs a 'photo'"),
    "bad face index": (_multipart([("photo", "a.jpg", jpeg_bytes()), ("face", None, b"-1")]), 422, "face index"),
    "huge face field": (_multipart([("photo", "a.jpg", jpeg_bytes()), ("face", None, b"1" * 5000)]), 413, "larger"),
    "no closing boundary": (
        (b'--XyZ\r\nContent-Disposition: form-data; name="photo"\r\n\r\nabc', "multipart/form-data; boundary=XyZ"),
        400,
        "ended early",
    ),  # noqa: E501
    "header too long": (
        _multipart([("photo", "x" * 5000 + ".jpg", jpeg_bytes())]),
        400,
        "malformed",
    ),
    "boundary too long": (_multipart([("photo", "a.jpg", jpeg_bytes())], boundary="b" * 100), 400, "boundary"),
    "no boundary": ((b"abc", "multipart/form-data"), 415, "multipart"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_forms_are_refused(env, case: str) -> None:
    h, server, client, extractor, scratch = env
    (body, ctype), status, words = MALFORMED[case]
    before = h.store.fingerprint()
    r = client.post("/api/looks/extract", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["detail"].lower(), r.text
    assert h.store.fingerprint() == before
    _assert_clean(h, scratch)


def test_a_full_job_queue_answers_429_at_once(tmp_path: Path) -> None:
    slow = RecordingExtractor(delay=1.5)
    with harness(tmp_path, extractor=slow, extract_jobs=1) as h, live_server(h) as (server, client):
        capacity = h.deps.extract_jobs * 2  # one running, one waiting
        results: list[int] = []

        def post() -> None:
            with_client = client.post("/api/looks/extract", files={"photo": ("p.jpg", jpeg_bytes(), "image/jpeg")})
            results.append(with_client.status_code)

        threads = [threading.Thread(target=post) for _ in range(capacity)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        t0 = time.monotonic()
        extra = client.post("/api/looks/extract", files={"photo": ("p.jpg", jpeg_bytes(), "image/jpeg")})
        assert extra.status_code == 429 and extra.headers["retry-after"] == "5"
        assert time.monotonic() - t0 < 1.0  # refused at once, not queued
        frames = h.frames()
        h.wait_frames(15)  # the camera runs on while photos are processed
        assert h.frames() > frames
        for t in threads:
            t.join(20)
        assert sorted(results) == [201] * capacity
        assert (
            client.post("/api/looks/extract", files={"photo": ("p.jpg", jpeg_bytes(), "image/jpeg")}).status_code == 201
        )


def test_no_extractor_is_a_clear_503(tmp_path: Path) -> None:
    with harness(tmp_path, extractor=None) as h:
        r = h.client().post("/api/looks/extract", files={"photo": ("p.jpg", jpeg_bytes(), "image/jpeg")})
        assert r.status_code == 503 and "extraction unavailable" in r.json()["detail"]
        assert h.store.count() == 0


def test_camera_kept_running_through_the_whole_suite(env) -> None:
    h, server, client, extractor, scratch = env
    first = h.frames()
    assert first > 60
    h.wait_frames(15)
    r = client.get("/api/preview.jpg")
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
    _assert_clean(h, scratch)


def test_texture_data_uri_in_a_saved_look_is_checked(env) -> None:
    h, server, client, extractor, scratch = env
    import base64

    before = h.store.fingerprint()
    for payload, status in (
        (png_bytes((64, 64)), 422),  # no alpha
        (b"<svg/>", 415),
        (png_with_header(100_000, 100_000), 422),
        (b"!!!", 422),
    ):
        doc = simple_look(layers={"texture": {"image": "data:image/png;base64," + base64.b64encode(payload).decode()}})
        if payload == b"!!!":
            doc["layers"]["texture"]["image"] = "data:image/png;base64,!!!"
        r = client.post("/api/looks", json=doc)
        assert r.status_code == status, r.text
    for ref in ("/etc/passwd", "../../secret.png", "file:///etc/passwd", "texture.png"):
        r = client.post("/api/looks", json=simple_look(layers={"texture": {"image": ref}}))
        assert r.status_code == 422, (ref, r.text)
    assert h.store.fingerprint() == before
