"""The preset looks, and turning what a user typed (a preset name or a file) into a look.

Presets are the JSON files in ``filters/``. They are read through the package
(``facetory_cam/data/filters`` links to that folder), so an installed wheel finds the
same files a source checkout does.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from facetory_cam.looks.schema import Look, LookError, load_look_file, parse_look

__all__ = ["list_presets", "preset_dir", "preset_files", "presets", "resolve_look"]


def preset_dir() -> Traversable:
    """The packaged preset folder (a link to ``filters/`` in a source checkout)."""
    return resources.files("facetory_cam") / "data" / "filters"


def preset_files() -> list[Traversable]:
    """Every preset file, sorted by file name."""
    folder = preset_dir()
    if not folder.is_dir():
        return []
    return sorted((f for f in folder.iterdir() if f.name.endswith(".json") and f.is_file()), key=lambda f: f.name)


def _load_preset(file: Traversable) -> Look:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LookError(f"cannot read preset {file.name}: {exc}") from None
    return parse_look(text, source=f"preset {file.name}")


def presets() -> list[tuple[str, Look]]:
    """(file stem, look) of every preset, in file-name order; the stem is what users type."""
    return [(f.name.removesuffix(".json"), _load_preset(f)) for f in preset_files()]


def list_presets() -> list[Look]:
    """All preset looks, in file-name order; a broken preset file is an error, not skipped."""
    return [look for _, look in presets()]


def _key(text: str) -> str:
    """Match names loosely: case, spaces, dashes and underscores do not matter."""
    return re.sub(r"[\s_-]+", "-", text.strip().lower())


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".json") or "/" in text or "\\" in text


def resolve_look(name_or_file: str) -> Look:
    """A look from a ``.json`` file path, or a preset named by its file stem or ``name``.

    Text ending in ``.json`` or holding a path separator is a file; anything else is a
    preset first (so presets stay reachable whatever the current folder holds) and an
    existing file second. Preset names match case-insensitively (``bold red lip``,
    ``Bold-Red-Lip`` and ``bold_red_lip`` are the same). An unknown name raises
    LookError listing the presets.
    """
    text = name_or_file.strip()
    if not text:
        raise LookError("no look given: pass a preset name or a .json file")
    path = Path(text).expanduser()
    if _looks_like_path(text):
        return _load_file(path)
    wanted = _key(text)
    files = preset_files()
    for f in files:
        if _key(f.name.removesuffix(".json")) == wanted:
            return _load_preset(f)
    for f in files:
        look = _load_preset(f)
        if _key(look.name) == wanted:
            return look
    if path.is_file():  # a bare file name that is not a preset
        return _load_file(path)
    available = ", ".join(f.name.removesuffix(".json") for f in files) or "(none installed)"
    raise LookError(f"unknown look {text!r}: not a file and not a preset; presets: {available}")


def _load_file(path: Path) -> Look:
    if not path.exists():
        raise LookError(f"look file {path}: no such file")
    if not path.is_file():
        raise LookError(f"look file {path}: not a regular file")
    return load_look_file(path)
