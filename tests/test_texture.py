"""The canonical UV layout and the UV texture layer on a real face."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import LookError, parse_look
from facetory_cam.looks.uv import canonical_layout, uv_coordinates


def test_layout_is_a_symmetric_unit_square_mesh() -> None:
    layout = canonical_layout()
    assert layout.uv.shape == (468, 2)
    assert layout.uv.min() >= 0.0 and layout.uv.max() <= 1.0
    assert layout.triangles.min() >= 0 and layout.triangles.max() < 468 and len(layout.triangles) > 700
    # eye corners mirror each other about u = 0.5 and sit level
    a, b = layout.uv[33], layout.uv[263]
    assert abs((a[0] + b[0]) / 2 - 0.5) < 1e-3 and abs(a[1] - b[1]) < 1e-3
    assert a[0] < 0.5 < b[0]  # 33 is the eye on the image's left
    nose, chin, forehead = layout.uv[1], layout.uv[152], layout.uv[10]
    assert forehead[1] < nose[1] < chin[1]


def _texture_png(tmp_path: Path, colour: tuple[int, int, int], region: str) -> Path:
    """A square RGBA texture painting a colour on one band of the UV square."""
    tex = np.zeros((256, 256, 4), np.uint8)
    if region == "lower":
        tex[160:240, :, :3] = colour[::-1]
        tex[160:240, :, 3] = 255
    else:
        tex[:, :, :3] = colour[::-1]
        tex[:, :, 3] = 255
    path = tmp_path / "tex.png"
    cv2.imwrite(str(path), tex)
    return path


@pytest.fixture(scope="module")
def face(perception, astronaut):
    return perception.tracker(static=True).process(astronaut)[0]


def test_uv_map_covers_the_face(face, astronaut) -> None:
    x0, y0, x1, y1 = (int(v) for v in face.box)
    lm = face.landmarks.copy()
    lm[:, 0] -= x0
    lm[:, 1] -= y0
    uv, cover = uv_coordinates(lm, (y1 - y0, x1 - x0), canonical_layout())
    assert 0.6 < float(cover.mean()) < 1.0
    # u grows to the right, v grows downwards across the face
    mid = (y1 - y0) // 2
    row = uv[mid, :, 0][cover[mid] > 0.99]
    assert np.all(np.diff(row) > -1e-3)
    nose_uv = uv[int(lm[1, 1]), int(lm[1, 0])]
    assert np.allclose(nose_uv, canonical_layout().uv[1], atol=0.03)


def test_texture_layer_paints_where_the_texture_says(tmp_path: Path, face, astronaut) -> None:
    path = _texture_png(tmp_path, (40, 200, 40), "lower")
    look = parse_look({"name": "t", "layers": {"texture": {"image": str(path)}}})
    out = LookRenderer(look).render(astronaut, [face])
    diff = np.abs(out.astype(int) - astronaut.astype(int)).sum(axis=2) > 20
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 200
    lm = face.landmarks
    # the band v in [0.62, 0.94] is the lower face: below the nose tip, about the mouth and chin
    assert np.median(ys) > lm[1, 1]
    assert (out[diff][:, 1].astype(int) - out[diff][:, 0].astype(int)).mean() > 60  # it is green


def test_texture_intensity_zero_and_data_uri(tmp_path: Path, face, astronaut) -> None:
    path = _texture_png(tmp_path, (200, 40, 40), "all")
    uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    look = parse_look({"name": "t", "layers": {"texture": {"image": uri, "intensity": 0.0}}})
    assert np.array_equal(LookRenderer(look).render(astronaut, [face]), astronaut)
    look = parse_look({"name": "t", "layers": {"texture": {"image": uri, "blend": "multiply"}}})
    out = LookRenderer(look).render(astronaut, [face])
    assert not np.array_equal(out, astronaut)


def test_bad_textures_are_clear_errors(tmp_path: Path) -> None:
    from facetory_cam.looks.layers.texture import load_texture

    with pytest.raises(LookError, match="cannot read"):
        load_texture(str(tmp_path / "missing.png"))
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(LookError, match="RGBA"):
        load_texture(str(rgb))
    with pytest.raises(LookError, match="data URI"):
        load_texture("data:image/png;base64,@@@")


def test_a_broken_layer_degrades_to_the_rest_of_the_look(tmp_path: Path, face, astronaut) -> None:
    look = parse_look(
        {
            "name": "t",
            "layers": {"texture": {"image": str(tmp_path / "gone.png")}, "lipstick": {"color": "#b01020"}},
        }
    )
    renderer = LookRenderer(look)
    out = renderer.render(astronaut, [face])  # no exception: the texture layer is switched off
    assert not np.array_equal(out, astronaut)  # and the lipstick still shows


def test_texture_path_is_relative_to_the_look_file(tmp_path: Path, face, astronaut) -> None:
    from facetory_cam.looks.schema import load_look_file

    folder = tmp_path / "looks"
    folder.mkdir()
    _texture_png(folder, (40, 40, 200), "all")
    (folder / "blue.json").write_text('{"name": "blue", "layers": {"texture": {"image": "tex.png"}}}')
    look = load_look_file(folder / "blue.json")
    assert Path(look.layers.texture.image) == (folder / "tex.png").resolve()
    out = LookRenderer(look).render(astronaut, [face])
    assert not np.array_equal(out, astronaut)
