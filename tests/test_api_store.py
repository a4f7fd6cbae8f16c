"""The look library on real SQLite and real files; .facetory bundles, exported and (hostile ones) imported."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
import zipfile
from pathlib import Path

import pytest
from api_support import png_bytes, simple_look, texture_png

from facetory_cam.api import atomic
from facetory_cam.api.bundles import BundleError, export_bundle, read_bundle
from facetory_cam.api.store import KEEP, TEXTURE_REF, LibraryStore, LookNotFound, ReadOnlyLook, StoreError
from facetory_cam.api.uploads import sanitize_texture
from facetory_cam.looks.schema import Look, LookError, parse_look


def _look(name: str = "Mine", texture: bool = False) -> Look:
    doc = simple_look(name)
    if texture:
        doc["layers"]["texture"] = {"image": TEXTURE_REF}
    return parse_look(doc)


@pytest.fixture()
def store(tmp_path: Path):
    with LibraryStore(tmp_path / "lib") as s:
        yield s


def test_sqlite_is_wal_with_full_sync_and_files_are_private(store: LibraryStore) -> None:
    db = sqlite3.connect(store.root / "library.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    rec = store.create(_look(texture=True), texture_png=texture_png(), thumbnail_png=png_bytes())
    tex = store.blob_path("texture", rec.texture_sha256 or "")
    assert stat.S_IMODE(tex.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def test_create_get_update_delete_and_content_addressing(store: LibraryStore) -> None:
    tex, thumb = texture_png(), png_bytes()
    rec = store.create(_look("A", texture=True), texture_png=tex, thumbnail_png=thumb)
    assert len(rec.id) == 32 and rec.texture_sha256 == hashlib.sha256(tex).hexdigest()
    assert store.read_blob("texture", rec.texture_sha256) == tex
    assert store.get(rec.id).look == rec.look
    # The renderer gets the stored file's absolute path; the record keeps the portable name.
    runtime = store.runtime_look(rec.id)
    assert runtime.layers.texture is not None and Path(runtime.layers.texture.image).read_bytes() == tex
    # Two looks with the same texture share one file; deleting one keeps it for the other.
    twin = store.create(_look("B", texture=True), texture_png=tex)
    assert twin.texture_sha256 == rec.texture_sha256
    assert len(list((store.root / "textures").iterdir())) == 1
    store.delete(rec.id)
    assert store.blob_path("texture", twin.texture_sha256 or "").is_file()
    assert not store.blob_path("thumbnail", rec.thumbnail_sha256 or "").exists()  # its own thumbnail went
    # Update: new thumbnail replaces the old file, KEEP leaves the texture alone.
    new_thumb = png_bytes(color=(1, 2, 3))
    up = store.update(twin.id, _look("B2", texture=True), texture_png=KEEP, thumbnail_png=new_thumb)
    assert up.name == "B2" and up.texture_sha256 == twin.texture_sha256 and up.updated and up.created
    assert up.updated >= up.created
    store.delete(twin.id)
    with pytest.raises(LookNotFound):
        store.get(twin.id)
    assert store.verify() == []
    assert [p for p in store.root.rglob("*.png")] == []


def test_presets_are_listed_read_only(store: LibraryStore) -> None:
    ids = [r.id for r in store.list() if r.read_only]
    assert "preset:natural" in ids and len(ids) >= 10
    with pytest.raises(ReadOnlyLook):
        store.delete("preset:natural")
    with pytest.raises(ReadOnlyLook):
        store.update("preset:natural", _look())
    with pytest.raises(LookNotFound):
        store.get("preset:nope")
    for bad in ("../etc/passwd", "preset:../x", "/etc/passwd", "a" * 31, "A" * 32):
        with pytest.raises(LookNotFound):
            store.get(bad)


def test_library_looks_name_no_outside_files(store: LibraryStore) -> None:
    doc = simple_look()
    doc["layers"]["texture"] = {"image": "/etc/passwd"}
    with pytest.raises(LookError, match="texture.png"):
        store.create(parse_look(doc), texture_png=texture_png())
    with pytest.raises(LookError, match="background.image"):
        store.create(parse_look(simple_look(background={"mode": "image", "image": "/home/x/secret.png"})))
    with pytest.raises(LookError, match="needs a texture"):
        store.create(_look(texture=True))
    assert store.count() == 0 and store.verify() == []


def test_startup_removes_temp_files_and_orphans_and_repairs_lost_thumbnails(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    with LibraryStore(root) as s:
        keep = s.create(_look(texture=True), texture_png=texture_png(), thumbnail_png=png_bytes())
        lost = s.create(_look("lost thumb"), thumbnail_png=png_bytes(color=(9, 9, 9)))
    (root / ".tmp-deadbeef").write_bytes(b"half")
    (root / "textures" / ".tmp-0123").write_bytes(b"half a texture")
    orphan = root / "thumbnails" / (hashlib.sha256(b"x").hexdigest() + ".png")
    orphan.write_bytes(b"x")
    (root / "thumbnails" / "notes.txt").write_text("not ours")
    (root / "thumbnails" / f"{lost.thumbnail_sha256}.png").unlink()
    with LibraryStore(root) as s:
        report = s.cleanup_report
        assert sorted(report.temp_files) == [".tmp-deadbeef", "textures/.tmp-0123"]
        assert report.orphans == [f"thumbnails/{orphan.name}"]
        assert report.unknown == ["thumbnails/notes.txt"]
        assert len(report.repaired) == 1
        assert s.get(lost.id).thumbnail_sha256 is None
        assert s.get(keep.id).thumbnail_sha256 == keep.thumbnail_sha256
        assert not orphan.exists() and (root / "thumbnails" / "notes.txt").exists()
        (root / "thumbnails" / "notes.txt").unlink()
        assert s.verify() == []


def test_a_second_process_cannot_open_the_same_library(tmp_path: Path) -> None:
    import subprocess
    import sys

    with LibraryStore(tmp_path / "lib"):
        code = (
            "import sys\nfrom facetory_cam.api.store import LibraryStore, StoreError\n"
            "try:\n    LibraryStore(sys.argv[1])\nexcept StoreError as e:\n    print(e); sys.exit(7)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lib")], capture_output=True, text=True)
    assert proc.returncode == 7 and "in use by another facetory process" in proc.stdout


@pytest.mark.parametrize("fail", ["fsync", "replace", "write"])
def test_a_failed_write_keeps_the_old_look_and_leaves_no_file(
    store: LibraryStore, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    rec = store.create(_look("old"), thumbnail_png=png_bytes())
    before = store.fingerprint()

    def boom(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    target = {"fsync": "_fsync", "replace": "os.replace", "write": "os.write"}[fail]
    if target == "_fsync":
        monkeypatch.setattr(atomic, "_fsync", boom)
    else:
        monkeypatch.setattr(atomic.os, target.split(".")[1], boom)
    with pytest.raises(StoreError, match="No space left"):
        store.update(rec.id, _look("new"), thumbnail_png=png_bytes(color=(5, 6, 7)))
    with pytest.raises(StoreError):
        store.create(_look("another"), thumbnail_png=png_bytes(color=(7, 7, 7)))
    monkeypatch.undo()
    assert store.fingerprint() == before  # old row, old files, no temp file
    assert store.get(rec.id).name == "old" and store.verify() == []


def test_kept_photos_only_when_opted_in(tmp_path: Path) -> None:
    with LibraryStore(tmp_path / "off") as s:
        assert s.create(_look(), photo_png=png_bytes()).photo_sha256 is None
        assert list((s.root / "photos").iterdir()) == []
    with LibraryStore(tmp_path / "on", keep_reference_photos=True) as s:
        rec = s.create(_look(), photo_png=png_bytes())
        assert rec.photo_sha256 and s.read_blob("photo", rec.photo_sha256) == png_bytes()


# -- bundles ------------------------------------------------------------------------------


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _look_json(texture: bool = False) -> bytes:
    doc = simple_look("Shared")
    if texture:
        doc["layers"]["texture"] = {"image": TEXTURE_REF}
    return json.dumps(doc).encode()


def test_export_then_import_round_trip_without_photo_or_its_hash(store: LibraryStore) -> None:
    doc = simple_look("Round trip", provenance={"source": "photo", "photo_sha256": "ab" * 32})
    doc["layers"]["texture"] = {"image": TEXTURE_REF}
    clean = sanitize_texture(texture_png())
    rec = store.create(parse_look(doc), texture_png=clean, thumbnail_png=png_bytes())
    data = export_bundle(rec.look, texture_png=texture_png(), thumbnail_png=png_bytes())
    assert data == export_bundle(rec.look, texture_png=texture_png(), thumbnail_png=png_bytes())  # reproducible
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == ["look.json", "texture.png", "thumbnail.png"]
    assert b"abab" not in zipfile.ZipFile(io.BytesIO(data)).read("look.json")
    bundle = read_bundle(data)
    assert bundle.look.provenance.source == "shared" and bundle.look.provenance.photo_sha256 is None
    assert bundle.look.layers == rec.look.layers and bundle.texture_png is not None
    back = store.create(bundle.look, texture_png=bundle.texture_png, thumbnail_png=bundle.thumbnail_png)
    assert back.texture_sha256 == rec.texture_sha256  # the same clean texture, stored once
    assert store.verify() == []


def _symlink_member() -> bytes:
    info = zipfile.ZipInfo("texture.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([("look.json", _look_json(texture=True)), (info, b"/etc/passwd")])


def _bomb() -> bytes:
    return _zip([("look.json", _look_json()), ("thumbnail.png", b"\0" * (1_900_000))])


HOSTILE_BUNDLES: dict[str, tuple[bytes, int, str]] = {
    "zip-slip ../": (_zip([("../../evil.json", b"{}"), ("look.json", _look_json())]), 400, "climbs out"),
    "zip-slip nested ../": (_zip([("a/../../look.json", _look_json())]), 400, "climbs out"),
    "absolute path": (_zip([("/etc/cron.d/x", b"x")]), 400, "absolute"),
    "windows path": (_zip([("..\\..\\evil.json", b"x")]), 400, "absolute or Windows"),
    "drive letter": (_zip([("C:/evil.json", b"x")]), 400, "absolute or Windows"),
    "folder member": (_zip([("sub/look.json", _look_json())]), 400, "no folders"),
    "symlink": (_symlink_member(), 400, "symbolic link"),
    "unknown member": (_zip([("look.json", _look_json()), ("run.sh", b"rm -rf ~")]), 400, "unexpected member"),
    "too many members": (_zip([(f"m{i}", b"x") for i in range(50)]), 400, "at most 3"),
    "duplicate member": (_zip([("look.json", _look_json()), ("look.json", _look_json())]), 400, "twice"),
    "no look.json": (_zip([("thumbnail.png", png_bytes())]), 400, "no look.json"),
    "zip bomb ratio": (_bomb(), 413, "zip bomb"),
    "oversized member": (_zip([("look.json", b" " * 300_000)], zipfile.ZIP_STORED), 413, "over its"),
    "not a zip": (b"PK\x03\x04 this is not really a zip", 400, "not a .facetory bundle"),
    "empty": (b"", 400, "empty"),
    "malformed json": (_zip([("look.json", b"{not json")]), 422, "not valid JSON"),
    "json not utf-8": (_zip([("look.json", b"\xff\xfe{}")]), 422, "not valid JSON"),
    "invalid look": (_zip([("look.json", b'{"schema_version": 1, "name": ""}')]), 422, "name"),
    "future schema": (_zip([("look.json", b'{"schema_version": 9, "name": "x"}')]), 422, "not supported"),
    "texture is a path": (
        _zip([("look.json", json.dumps(simple_look(layers={"texture": {"image": "/etc/shadow"}})).encode())]),
        422,
        "not a file path",
    ),
    "missing texture": (_zip([("look.json", _look_json(texture=True))]), 422, "does not hold it"),
    "texture not an image": (
        _zip([("look.json", _look_json(texture=True)), ("texture.png", b"<svg onload=alert(1)>")]),
        422,
        "texture in the bundle",
    ),
    "texture without alpha": (
        _zip([("look.json", _look_json(texture=True)), ("texture.png", png_bytes((64, 64)))]),
        422,
        "alpha",
    ),
    "background image path": (
        _zip([("look.json", json.dumps(simple_look(background={"mode": "image", "image": "~/.ssh/id_rsa"})).encode())]),
        422,
        "background.image",
    ),
    "encrypted member": (b"", 400, "encrypted"),  # built below: zipfile cannot write encrypted members
}


def _encrypted() -> bytes:
    data = bytearray(_zip([("look.json", _look_json())], zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit in both the local header and the central directory entry.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    return bytes(data)


HOSTILE_BUNDLES["encrypted member"] = (_encrypted(), 400, "encrypted")
HOSTILE_BUNDLES["total too large"] = (
    _zip(
        [
            ("look.json", _look_json()),
            ("texture.png", os.urandom(15 * 2**20)),
            ("thumbnail.png", os.urandom(1_900_000)),
        ],
        zipfile.ZIP_STORED,
    ),
    413,
    "unpacks to more than",
)


@pytest.mark.parametrize("case", sorted(HOSTILE_BUNDLES))
def test_hostile_bundle_is_refused_and_nothing_is_written(store: LibraryStore, case: str) -> None:
    data, status, words = HOSTILE_BUNDLES[case]
    before = store.fingerprint()
    with pytest.raises(BundleError) as info:
        read_bundle(data)
    assert info.value.status == status, info.value.message
    assert words in info.value.message, info.value.message
    assert store.fingerprint() == before
    assert not (store.root.parent / "evil.json").exists()


def test_member_bigger_than_its_header_claims_is_cut_off() -> None:
    payload = os.urandom(3 * 2**20)
    data = bytearray(_zip([("look.json", _look_json()), ("thumbnail.png", payload)], zipfile.ZIP_STORED))
    # Shrink the declared sizes of thumbnail.png in the central directory to 100 bytes.
    central = data.find(b"PK\x01\x02", data.find(b"thumbnail.png") - 100)
    central = data.find(b"PK\x01\x02", central + 4)
    data[central + 20 : central + 28] = (100).to_bytes(4, "little") * 2
    with pytest.raises(BundleError) as info:
        read_bundle(bytes(data))
    assert info.value.status in (400, 413)
