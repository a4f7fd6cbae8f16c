"""The look library: SQLite rows for looks, content-addressed files for their images.

Why this layout survives a crash at any moment:

* every image (texture, thumbnail, kept reference photo) is written under its SHA-256 name
  with :func:`write_atomic` *before* the row that names it is committed, so a committed row
  never points at a missing or torn file;
* rows change in single SQLite transactions (WAL, ``synchronous=FULL``: a commit that returned
  survives a power cut), so a look is either its old version or its new one;
* files no row names any more are deleted *after* the commit; a crash in between leaves an
  orphan, which the next start deletes along with stray temp files.

One process owns a library at a time (an exclusive lock file), so that cleanup can never
delete a file another process has written but not yet committed. Presets from ``filters/``
appear read-only with ids ``preset:<file stem>``; user looks get random 32-hex-digit ids.
Ids are never used to build a path: files are named only by the hashes this module computes.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import platformdirs

from facetory_cam.api.atomic import TEMP_PREFIX, fsync_dir, make_private_dir, write_atomic
from facetory_cam.looks.schema import Look, LookError, parse_look

log = logging.getLogger(__name__)

__all__ = [
    "KEEP",
    "TEXTURE_REF",
    "CleanupReport",
    "Kind",
    "LibraryStore",
    "LookNotFound",
    "LookRecord",
    "ReadOnlyLook",
    "StoreError",
    "default_library_dir",
    "is_look_id",
]

Kind = Literal["texture", "thumbnail", "photo"]
KINDS: tuple[Kind, ...] = ("texture", "thumbnail", "photo")
_FOLDERS: dict[Kind, str] = {"texture": "textures", "thumbnail": "thumbnails", "photo": "photos"}
_COLUMNS: dict[Kind, str] = {"texture": "texture_sha256", "thumbnail": "thumbnail_sha256", "photo": "photo_sha256"}
_BLOB_NAME = re.compile(r"^([0-9a-f]{64})\.png$")
_USER_ID = re.compile(r"^[0-9a-f]{32}$")
_PRESET_ID = re.compile(r"^preset:[a-z0-9][a-z0-9_-]{0,63}$")
PRESET_PREFIX = "preset:"
TEXTURE_REF = "texture.png"  # how a stored or shared look names its own texture
DB_NAME = "library.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS looks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    tags TEXT NOT NULL,
    look_json TEXT NOT NULL,
    texture_sha256 TEXT,
    thumbnail_sha256 TEXT,
    photo_sha256 TEXT
)
"""


class StoreError(RuntimeError):
    """The library cannot do what was asked (disk error, library in use, broken row); nothing was changed."""


class LookNotFound(LookupError):
    """No look has this id."""


class ReadOnlyLook(StoreError):
    """Presets cannot be changed or deleted; save a copy instead."""


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # update(): leave this image as it is


def default_library_dir() -> Path:
    """Where the library lives unless ``api.library_dir`` says otherwise."""
    return Path(platformdirs.user_data_dir("facetory-cam")) / "library"


def is_look_id(text: str) -> bool:
    """True for a well-formed preset or user look id (says nothing about whether it exists)."""
    return bool(_USER_ID.fullmatch(text) or _PRESET_ID.fullmatch(text))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LookRecord:
    """One look of the library; ``look`` names its texture ``texture.png`` when it has one."""

    id: str
    look: Look
    created: datetime | None = None
    updated: datetime | None = None
    texture_sha256: str | None = None
    thumbnail_sha256: str | None = None
    photo_sha256: str | None = None
    read_only: bool = False
    problem: str | None = None  # why this look cannot be used (a file went missing behind our back)

    @property
    def name(self) -> str:
        return self.look.name

    @property
    def tags(self) -> tuple[str, ...]:
        return self.look.tags


@dataclass
class CleanupReport:
    """What the start-up cleanup removed or repaired."""

    temp_files: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # files that are not ours; left alone


def _check_refs(look: Look, texture: bytes | str | None) -> None:
    """A library look names no file outside the library: its texture is its own, no background image."""
    tex = look.layers.texture
    if tex is not None and tex.image != TEXTURE_REF:
        raise LookError(f"layers.texture.image must be {TEXTURE_REF!r} (the look's own texture), got a file reference")
    if tex is not None and texture is None:
        raise LookError("layers.texture needs a texture image")
    if tex is None and texture is not None:
        raise LookError("a texture image was given but the look has no texture layer")
    if look.background.image is not None:
        raise LookError("background.image: looks in the library cannot name image files")


class LibraryStore:
    """The look library at ``root``; use as a context manager or call :meth:`close`."""

    def __init__(self, root: Path, *, keep_reference_photos: bool = False, presets: bool = True) -> None:
        self.root = make_private_dir(Path(root).expanduser())
        self.keep_reference_photos = keep_reference_photos
        self._lock = threading.RLock()
        self._lock_file = self._acquire_process_lock()
        for kind in KINDS:
            make_private_dir(self.root / _FOLDERS[kind])
        try:
            self._db = sqlite3.connect(self.root / DB_NAME, isolation_level=None, check_same_thread=False, timeout=10.0)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.root}: SQLite refused WAL mode ({mode}); is the folder on a network drive?")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise StoreError(f"{self.root}: library format {version} is newer than this program ({SCHEMA_VERSION})")
        except sqlite3.DatabaseError as exc:
            self._release_process_lock()
            raise StoreError(f"cannot open the look library at {self.root}: {exc}") from None
        except BaseException:
            self._release_process_lock()
            raise
        self._presets: dict[str, Look] = {}
        if presets:
            from facetory_cam.looks.library import presets as load_presets

            self._presets = {PRESET_PREFIX + stem: look for stem, look in load_presets()}
        self.cleanup_report = self.cleanup()

    # -- lifetime ------------------------------------------------------------------------
    def _acquire_process_lock(self) -> Any:
        fh = open(self.root / ".lock", "a+b")  # noqa: SIM115 - held for the store's lifetime
        try:
            import fcntl
        except ImportError:  # Windows: SQLite's own locking is all there is
            return fh
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise StoreError(f"the look library {self.root} is in use by another facetory process") from None
        return fh

    def _release_process_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def close(self) -> None:
        with self._lock:
            if self._lock_file is None:
                return
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._release_process_lock()

    def __enter__(self) -> LibraryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- files ---------------------------------------------------------------------------
    def blob_path(self, kind: Kind, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / _FOLDERS[kind] / f"{sha256}.png"

    def _put_blob(self, kind: Kind, data: bytes) -> str:
        """Store ``data`` under its hash (durably, before any row names it); returns the hash."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(kind, sha)
        if path.is_file() and path.stat().st_size == len(data):
            return sha  # already there: a file only gets its final name once complete
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise StoreError(f"could not save the {kind} image: {exc.strerror or exc}") from None
        return sha

    def read_blob(self, kind: Kind, sha256: str) -> bytes:
        """The stored bytes, checked against their hash."""
        try:
            data = self.blob_path(kind, sha256).read_bytes()
        except OSError as exc:
            raise StoreError(f"the {kind} image is missing: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"the {kind} image is damaged (its content does not match its hash)")
        return data

    def _referenced(self, kind: Kind, sha: str) -> bool:
        column = _COLUMNS[kind]
        row = self._db.execute(f"SELECT 1 FROM looks WHERE {column} = ? LIMIT 1", (sha,)).fetchone()
        return row is not None

    def _drop_unreferenced(self, pairs: list[tuple[Kind, str | None]]) -> None:
        """After a commit: delete files no row names any more (a crash here leaves orphans for cleanup)."""
        touched: set[Path] = set()
        for kind, sha in pairs:
            if sha is None or self._referenced(kind, sha):
                continue
            path = self.blob_path(kind, sha)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                touched.add(path.parent)
        for folder in touched:
            with contextlib.suppress(OSError):
                fsync_dir(folder)

    # -- reading -------------------------------------------------------------------------
    def _row_to_record(self, row: sqlite3.Row | tuple[Any, ...]) -> LookRecord:
        rid, _name, created, updated, _tags, look_json, tex, thumb, photo = row
        try:
            look = parse_look(look_json, source=f"library look {rid}")
        except LookError as exc:  # cannot happen through this module; say so rather than crash
            raise StoreError(str(exc)) from None
        problem = None
        if tex is not None and not self.blob_path("texture", tex).is_file():
            problem = "its texture image is missing"
        return LookRecord(
            id=rid,
            look=look,
            created=datetime.fromisoformat(created),
            updated=datetime.fromisoformat(updated),
            texture_sha256=tex,
            thumbnail_sha256=thumb,
            photo_sha256=photo,
            problem=problem,
        )

    def list(self) -> list[LookRecord]:
        """Presets first (file order), then user looks, oldest first."""
        out = [LookRecord(id=pid, look=look, read_only=True) for pid, look in self._presets.items()]
        with self._lock:
            rows = self._db.execute("SELECT * FROM looks ORDER BY created, id").fetchall()
        return out + [self._row_to_record(r) for r in rows]

    def get(self, look_id: str) -> LookRecord:
        if look_id in self._presets:
            return LookRecord(id=look_id, look=self._presets[look_id], read_only=True)
        if not _USER_ID.fullmatch(look_id):
            raise LookNotFound(look_id)
        with self._lock:
            row = self._db.execute("SELECT * FROM looks WHERE id = ?", (look_id,)).fetchone()
        if row is None:
            raise LookNotFound(look_id)
        return self._row_to_record(row)

    def runtime_look(self, look_id: str) -> Look:
        """The look as the renderer needs it: its texture named by the stored file's absolute path."""
        record = self.get(look_id)
        if record.problem is not None:
            raise StoreError(f"look {look_id} cannot be used: {record.problem}")
        tex = record.look.layers.texture
        if tex is None or record.texture_sha256 is None:
            return record.look
        path = str(self.blob_path("texture", record.texture_sha256))
        layers = record.look.layers.model_copy(update={"texture": tex.model_copy(update={"image": path})})
        return record.look.model_copy(update={"layers": layers})

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM looks").fetchone()[0])

    # -- writing -------------------------------------------------------------------------
    def create(
        self,
        look: Look,
        *,
        texture_png: bytes | None = None,
        thumbnail_png: bytes | None = None,
        photo_png: bytes | None = None,
    ) -> LookRecord:
        """Add a look; images must already be clean PNG bytes (see ``uploads``). Raises LookError, StoreError."""
        _check_refs(look, texture_png)
        look_id = secrets.token_hex(16)
        now = _now().isoformat()
        with self._lock:
            shas: dict[Kind, str | None] = {
                "texture": None if texture_png is None else self._put_blob("texture", texture_png),
                "thumbnail": None if thumbnail_png is None else self._put_blob("thumbnail", thumbnail_png),
                "photo": None
                if photo_png is None or not self.keep_reference_photos
                else self._put_blob("photo", photo_png),
            }
            try:
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO looks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            look_id,
                            look.name,
                            now,
                            now,
                            json.dumps(list(look.tags)),
                            look.model_dump_json(exclude_none=True),
                            shas["texture"],
                            shas["thumbnail"],
                            shas["photo"],
                        ),
                    )
            except sqlite3.Error as exc:
                self._drop_unreferenced(list(shas.items()))
                raise StoreError(f"could not save the look: {exc}") from None
            return self.get(look_id)

    def update(
        self,
        look_id: str,
        look: Look,
        *,
        texture_png: bytes | None | _Keep = KEEP,
        thumbnail_png: bytes | None | _Keep = KEEP,
    ) -> LookRecord:
        """Replace a user look's document (and optionally its images) in one transaction."""
        with self._lock:
            old = self._user_record(look_id)
            texture = old.texture_sha256 if texture_png is KEEP else texture_png
            _check_refs(look, texture)
            new_tex = self._resolve_blob("texture", old.texture_sha256, texture_png)
            new_thumb = self._resolve_blob("thumbnail", old.thumbnail_sha256, thumbnail_png)
            try:
                with self._transaction() as db:
                    db.execute(
                        "UPDATE looks SET name = ?, updated = ?, tags = ?, look_json = ?, texture_sha256 = ?,"
                        " thumbnail_sha256 = ? WHERE id = ?",
                        (
                            look.name,
                            _now().isoformat(),
                            json.dumps(list(look.tags)),
                            look.model_dump_json(exclude_none=True),
                            new_tex,
                            new_thumb,
                            look_id,
                        ),
                    )
            except sqlite3.Error as exc:
                self._drop_unreferenced([("texture", new_tex), ("thumbnail", new_thumb)])
                raise StoreError(f"could not save the look: {exc}") from None
            self._drop_unreferenced([("texture", old.texture_sha256), ("thumbnail", old.thumbnail_sha256)])
            return self.get(look_id)

    def set_thumbnail(self, look_id: str, thumbnail_png: bytes | None) -> LookRecord:
        """Replace (or with None remove) a user look's thumbnail."""
        with self._lock:
            record = self._user_record(look_id)
            return self.update(look_id, record.look, thumbnail_png=thumbnail_png)

    def delete(self, look_id: str) -> None:
        with self._lock:
            old = self._user_record(look_id)
            try:
                with self._transaction() as db:
                    db.execute("DELETE FROM looks WHERE id = ?", (look_id,))
            except sqlite3.Error as exc:
                raise StoreError(f"could not delete the look: {exc}") from None
            self._drop_unreferenced(
                [("texture", old.texture_sha256), ("thumbnail", old.thumbnail_sha256), ("photo", old.photo_sha256)]
            )

    def _user_record(self, look_id: str) -> LookRecord:
        if look_id in self._presets:
            raise ReadOnlyLook(f"{look_id} is a preset and cannot be changed; save a copy instead")
        return self.get(look_id)

    def _resolve_blob(self, kind: Kind, old: str | None, new: bytes | None | _Keep) -> str | None:
        if new is KEEP:
            return old
        if new is None:
            return None
        return self._put_blob(kind, new)

    # -- maintenance ---------------------------------------------------------------------
    def cleanup(self) -> CleanupReport:
        """Remove stray temp files and files no row names; repair rows whose optional images are gone."""
        report = CleanupReport()
        with self._lock:
            for stray in self.root.glob(f"{TEMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    stray.unlink()
                    report.temp_files.append(stray.name)
            for kind in KINDS:
                folder = self.root / _FOLDERS[kind]
                column = _COLUMNS[kind]
                names = {r[0] for r in self._db.execute(f"SELECT {column} FROM looks WHERE {column} IS NOT NULL")}
                for entry in folder.iterdir():
                    if entry.name.startswith(TEMP_PREFIX):
                        with contextlib.suppress(OSError):
                            entry.unlink()
                            report.temp_files.append(f"{folder.name}/{entry.name}")
                        continue
                    m = _BLOB_NAME.fullmatch(entry.name)
                    if m is None or not entry.is_file() or entry.is_symlink():
                        report.unknown.append(f"{folder.name}/{entry.name}")
                        continue
                    if m.group(1) not in names:
                        with contextlib.suppress(OSError):
                            entry.unlink()
                            report.orphans.append(f"{folder.name}/{entry.name}")
                fsync_dir(folder)
                if kind != "texture":  # a lost thumbnail or photo only loses that image
                    for (sha,) in self._db.execute(
                        f"SELECT DISTINCT {column} FROM looks WHERE {column} IS NOT NULL"
                    ).fetchall():
                        if not self.blob_path(kind, sha).is_file():
                            with self._transaction() as db:
                                db.execute(f"UPDATE looks SET {column} = NULL WHERE {column} = ?", (sha,))
                            report.repaired.append(f"{kind} {sha[:12]} was missing; reference removed")
        for what, items in (("temp files", report.temp_files), ("orphaned files", report.orphans)):
            if items:
                log.info("library cleanup: removed %d %s", len(items), what)
        for line in report.repaired:
            log.warning("library cleanup: %s", line)
        if report.unknown:
            log.warning("library cleanup: left %d unknown files alone: %s", len(report.unknown), report.unknown[:5])
        return report

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def verify(self) -> list[str]:
        """Every problem found: unparsable rows, missing or damaged files, unreferenced files (empty: all fine)."""
        problems: list[str] = []
        if not self.integrity_ok():
            problems.append("SQLite integrity check failed")
        with self._lock:
            rows = self._db.execute("SELECT * FROM looks").fetchall()
        referenced: dict[Kind, set[str]] = {k: set() for k in KINDS}
        for row in rows:
            try:
                record = self._row_to_record(row)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            for kind in KINDS:
                sha = getattr(record, f"{kind}_sha256")
                if sha is None:
                    continue
                referenced[kind].add(sha)
                try:
                    self.read_blob(kind, sha)
                except StoreError as exc:
                    problems.append(f"look {record.id}: {exc}")
            try:
                _check_refs(record.look, record.texture_sha256)
            except LookError as exc:
                problems.append(f"look {record.id}: {exc}")
        for kind in KINDS:
            for entry in (self.root / _FOLDERS[kind]).iterdir():
                m = _BLOB_NAME.fullmatch(entry.name)
                if m is None or m.group(1) not in referenced[kind]:
                    problems.append(f"unreferenced file {_FOLDERS[kind]}/{entry.name}")
        problems.extend(f"stray temp file {p.name}" for p in self.root.glob(f"{TEMP_PREFIX}*"))
        return problems

    def fingerprint(self) -> dict[str, Any]:
        """Rows and files as they are now; tests compare two of these to prove nothing changed."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM looks ORDER BY id").fetchall()
        files = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() and p.name != ".lock")
        files = [f for f in files if not f.startswith(DB_NAME)]
        return {"rows": [tuple(r) for r in rows], "files": files}
