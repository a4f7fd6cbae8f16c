"""The preset looks and name/file resolution."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from facetory_cam.looks.library import list_presets, preset_dir, preset_files, presets, resolve_look
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Look, LookError, dump_look, parse_look

REPO = Path(__file__).resolve().parents[1]
STEMS = [f.name.removesuffix(".json") for f in preset_files()]
REQUIRED = ["natural", "office", "evening", "bold-red-lip", "smoky-eye", "glam", "no-makeup", "soft-blur"]


def test_presets_are_there() -> None:
    assert len(STEMS) >= 10
    assert set(REQUIRED) <= set(STEMS)
    looks = list_presets()
    assert len(looks) == len(STEMS)
    names = [look.name.lower() for look in looks]
    assert len(set(names)) == len(names), "preset names must be unique"


def test_packaged_folder_is_the_filters_folder() -> None:
    """The package reads ``filters/`` through ``facetory_cam/data/filters``, and the wheel ships it."""
    packaged = sorted(f.name for f in preset_dir().iterdir() if f.name.endswith(".json"))
    assert packaged == sorted(p.name for p in (REPO / "filters").glob("*.json"))
    link = REPO / "facetory_cam" / "data" / "filters"
    assert link.is_symlink() and link.resolve() == (REPO / "filters").resolve()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/filters/*.json" in pyproject["tool"]["setuptools"]["package-data"]["facetory_cam"]


@pytest.mark.parametrize("stem", STEMS)
def test_preset_is_valid_and_round_trips(stem: str) -> None:
    text = (REPO / "filters" / f"{stem}.json").read_text(encoding="utf-8")
    look = parse_look(text, source=stem)
    assert look.provenance.source == "preset"
    assert look.name and look.description and look.tags
    again = parse_look(dump_look(look))
    assert again == look
    assert dump_look(again) == dump_look(look)
    assert json.loads(text) == json.loads(dump_look(look)), "preset files are kept in canonical form"


@pytest.mark.parametrize("stem", STEMS)
def test_preset_is_modest(stem: str) -> None:
    """Tasteful defaults: nothing at full opacity, so a preset never looks painted on."""
    look = resolve_look(stem)
    assert look.intensity == 1.0
    for key, layer in look.layers:
        if layer is None:
            continue
        for field in ("opacity", "coverage", "strength", "contour", "highlight"):
            value = getattr(layer, field, None)
            if value is not None:
                assert value <= 0.9, f"{stem}: layers.{key}.{field} = {value}"


@pytest.fixture(scope="module")
def astronaut_face(perception, astronaut: np.ndarray):
    faces = perception.tracker(static=True, max_faces=1).process(astronaut)
    assert len(faces) == 1
    return faces


@pytest.mark.parametrize("stem", STEMS)
def test_preset_renders_on_the_face_only(stem: str, astronaut: np.ndarray, astronaut_face) -> None:
    look = resolve_look(stem)
    out = LookRenderer(look).render(astronaut, astronaut_face)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    changed = np.abs(out.astype(int) - astronaut.astype(int)).max(-1) > 2
    assert changed.sum() > 200, "the look changes nothing"
    x0, y0, x1, y1 = astronaut_face[0].box
    margin = 0.2 * astronaut_face[0].size
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 - margin and xs.max() <= x1 + margin
    assert ys.min() >= y0 - margin and ys.max() <= y1 + margin


def test_resolve_by_name_and_stem() -> None:
    red = resolve_look("bold-red-lip")
    assert red.name == "Bold Red Lip"
    for spelling in ("Bold Red Lip", "BOLD-RED-LIP", "bold_red_lip", "  bold red lip "):
        assert resolve_look(spelling) == red
    assert resolve_look("No-Makeup Skin") == resolve_look("no-makeup")
    assert {look.name for _, look in presets()} == {look.name for look in list_presets()}


def test_resolve_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads(dump_look(resolve_look("natural")))
    doc["name"] = "My Natural"
    doc["provenance"] = {"source": "manual"}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    look = resolve_look(str(path))
    assert isinstance(look, Look) and look.name == "My Natural"
    monkeypatch.chdir(tmp_path)
    assert resolve_look("mine.json") == look
    # a file that shares a preset's name wins only when named as a path
    (tmp_path / "natural").write_text(json.dumps(doc), encoding="utf-8")
    assert resolve_look("./natural").name == "My Natural"
    assert resolve_look("natural").name == "Natural"
    (tmp_path / "mylook").write_text(json.dumps(doc), encoding="utf-8")
    assert resolve_look("mylook").name == "My Natural"  # not a preset: the file in the current folder


def test_resolve_errors(tmp_path: Path) -> None:
    with pytest.raises(LookError, match="presets: .*bold-red-lip.*natural"):
        resolve_look("purple-haze")
    with pytest.raises(LookError, match="no such file"):
        resolve_look(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "layers": {"lipstick": {"color": "red"}}}', encoding="utf-8")
    with pytest.raises(LookError, match=r"layers\.lipstick\.color"):
        resolve_look(str(bad))
    with pytest.raises(LookError, match="no look"):
        resolve_look("  ")
