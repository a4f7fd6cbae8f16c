"""Crash-safe file writes: a reader (or the next start) sees the old file or the new one, never a torn one.

The sequence is the canonical one: write a temp file in the same folder, fsync it, rename it
over the target, then fsync the folder so the rename itself survives a power cut. A failed
fsync or rename is not retried (after an EIO the kernel may have dropped the dirty pages):
the temp file is removed and the error goes to the caller, who must not report "saved".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def temp_name() -> str:
    """A fresh temp file name that startup cleanup recognises as ours."""
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}"


def _fsync(fd: int) -> None:
    if sys.platform == "darwin":  # plain fsync does not flush the drive cache on macOS
        import fcntl

        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    else:
        os.fsync(fd)


def fsync_dir(folder: Path) -> None:
    """Make renames and unlinks in ``folder`` durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode`` (private by default)."""
    folder = path.parent
    tmp = folder / temp_name()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            _fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make the leaf readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name != "nt":
        os.chmod(path, 0o700)
    return path
