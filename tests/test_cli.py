"""The command line as a user meets it: output formats, drawings, clear errors and exit codes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.cli import main


@pytest.fixture()
def astronaut_png(tmp_path: Path, astronaut) -> Path:
    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return p


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims a huge size (a decompression bomb's opening)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )
    return path


def test_detect_json(store, astronaut_png: Path, capsys) -> None:
    assert main(["detect", str(astronaut_png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["image"] == {"width": 512, "height": 512}
    assert len(out["faces"]) == 1
    face = out["faces"][0]
    assert set(face) >= {"track_id", "score", "box", "landmarks"}
    assert face["track_id"] == 0 and 0.5 < face["score"] <= 1.0
    lm = np.asarray(face["landmarks"])
    assert lm.shape == (478, 3)
    x0, y0, x1, y1 = face["box"]
    # the astronaut's face: a hand-checked box around it
    assert 160 < x0 < 200 and 50 < y0 < 90 and 250 < x1 < 290 and 160 < y1 < 200
    assert (lm[:, 0] >= x0 - 1).all() and (lm[:, 0] <= x1 + 1).all()


def test_detect_draw(store, astronaut_png: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "drawn.png"
    assert main(["detect", str(astronaut_png), "--draw", str(out)]) == 0
    assert "face 0" in capsys.readouterr().out
    drawn = cv2.imread(str(out))
    orig = cv2.imread(str(astronaut_png))
    assert drawn.shape == orig.shape
    changed = np.abs(drawn.astype(int) - orig.astype(int)).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    # the drawing is on the face, not all over the picture
    assert 0.005 < changed.mean() < 0.2
    assert 150 < np.median(xs) < 300 and 60 < np.median(ys) < 200


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"hello, not a picture", 2, "not an image"),
        (b"", 2, "empty"),
        (None, 2, "no such file"),
    ],
)
def test_detect_bad_input(tmp_path: Path, capsys, content: bytes | None, code: int, message: str) -> None:
    p = tmp_path / "input.png"
    if content is not None:
        p.write_bytes(content)
    assert main(["detect", str(p)]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_detect_refuses_huge_images(tmp_path: Path, capsys) -> None:
    for side in (11000, 40000):  # above our limit; above Pillow's own bomb limit
        p = _png_header_only(tmp_path / f"bomb{side}.png", side, side)
        assert main(["detect", str(p)]) == 2
        assert "megapixel" in capsys.readouterr().err


def test_detect_no_face(store, tmp_path: Path, capsys) -> None:
    p = tmp_path / "wall.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(p), (rng.random((360, 480, 3)) * 40 + 100).astype(np.uint8))
    assert main(["detect", str(p), "--json"]) == 3
    assert "no face" in capsys.readouterr().err


def test_models_list(store, tmp_path: Path, capsys) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and all(r["verified"] for r in rows)
    assert main(["models", "list", "--cache-dir", str(tmp_path / "empty")]) == 1
    assert "facetory models fetch" in capsys.readouterr().err


def test_models_fetch_from_wheel(store, tmp_path: Path, capsys) -> None:
    from tests.test_models import _wheel_from

    wheel = _wheel_from(store, tmp_path / "mp.whl")
    cache = tmp_path / "cache"
    assert main(["models", "fetch", "--from-wheel", str(wheel), "--cache-dir", str(cache)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 6
    assert main(["models", "list", "--cache-dir", str(cache)]) == 0


def test_bad_config_is_one_clear_line(astronaut_png: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("FACETORY_TRACKER__MIN_PRESENCE", "7")
    assert main(["detect", str(astronaut_png)]) == 1
    err = capsys.readouterr().err
    assert "FACETORY_TRACKER__MIN_PRESENCE" in err and "Traceback" not in err


def test_demo_shows_before_mesh_and_look(store, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo.png"
    assert main(["demo", "-o", str(out), "--look", "bold-red-lip"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["faces"] == 1 and summary["landmarks"] == [478]
    image = cv2.imread(str(out))
    assert image.shape == (512, 3 * 512, 3)
    before, mesh, after = image[:, :512], image[:, 512:1024], image[:, 1024:]
    assert np.abs(mesh.astype(int) - before.astype(int)).sum() > 0
    diff = np.abs(after.astype(int) - before.astype(int)).sum(axis=2) > 10
    assert diff.sum() > 100
    assert diff[140:175, 195:255].sum() > 50  # the red lip on the astronaut's mouth
    assert not diff[:60].any() and not diff[260:].any()  # and nothing off the face
