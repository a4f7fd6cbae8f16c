"""Renderer behaviour over time and across faces: fade in, nothing left behind, many faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import parse_look

LOOK = parse_look({"name": "red", "layers": {"lipstick": {"color": "#b01020", "opacity": 0.9}}})


@pytest.fixture(scope="module")
def two_faces(perception, astronaut):
    frame = np.full((512, 1024, 3), 110, np.uint8)
    frame[:, :512] = astronaut
    frame[:, 512:] = astronaut[:, ::-1]
    faces = perception.tracker(static=True, max_faces=4).process(frame)
    assert len(faces) == 2
    return frame, faces


def _change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).sum())


def test_a_new_face_fades_in_within_200_ms(two_faces) -> None:
    frame, faces = two_faces
    renderer = LookRenderer(LOOK, fade_s=0.2)
    amounts = [_change(renderer.render(frame, faces[:1], t), frame) for t in (10.0, 10.05, 10.1, 10.2, 10.3)]
    assert amounts[0] == 0.0  # first frame of a new face: nothing yet
    assert 0 < amounts[1] < amounts[2] < amounts[3]  # rising
    assert amounts[3] == pytest.approx(amounts[4])  # full strength from 200 ms on


def test_a_lost_face_takes_its_makeup_with_it(two_faces) -> None:
    frame, faces = two_faces
    renderer = LookRenderer(LOOK, fade_s=0.2)
    for i in range(10):
        renderer.render(frame, faces, i / 30)
    gone = renderer.render(frame, faces[1:], 10 / 30)  # face 0 is no longer tracked
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    assert np.array_equal(gone[y0:y1, x0:x1], frame[y0:y1, x0:x1])
    assert renderer.render(frame, [], 11 / 30).tobytes() == frame.tobytes()
    # the same track coming back fades in again rather than popping
    back = renderer.render(frame, faces, 12 / 30)
    assert _change(back[y0:y1, x0:x1], frame[y0:y1, x0:x1]) == 0.0


def test_every_face_gets_the_look(two_faces) -> None:
    frame, faces = two_faces
    out = LookRenderer(LOOK).render(frame, faces)
    for face in faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        assert _change(out[y0:y1, x0:x1], frame[y0:y1, x0:x1]) > 1000
    # the two mirrored faces get mirrored makeup
    left, right = out[:, :512].astype(int), out[:, 512:][:, ::-1].astype(int)
    lips = faces[0].landmarks[[61, 291, 0, 17], :2]
    x0, y0 = lips.min(0).astype(int) - 3
    x1, y1 = lips.max(0).astype(int) + 3
    assert np.abs(left[y0:y1, x0:x1] - right[y0:y1, x0:x1]).mean() < 12


def test_input_frame_is_never_modified(two_faces) -> None:
    frame, faces = two_faces
    before = frame.copy()
    LookRenderer(LOOK).render(frame, faces)
    assert np.array_equal(frame, before)


def test_intensity_scales_the_look(two_faces) -> None:
    frame, faces = two_faces
    weak = LOOK.model_copy(update={"intensity": 0.3})
    strong = LookRenderer(LOOK).render(frame, faces)
    faint = LookRenderer(weak).render(frame, faces)
    off = LookRenderer(LOOK.model_copy(update={"intensity": 0.0})).render(frame, faces)
    assert _change(off, frame) == 0.0
    assert 0 < _change(faint, frame) < _change(strong, frame)


def test_face_half_outside_the_frame(perception, astronaut) -> None:
    cut = np.ascontiguousarray(astronaut[:, 220:])
    faces = perception.tracker(static=True).process(cut)
    assert faces
    out = LookRenderer(LOOK).render(cut, faces)
    assert out.shape == cut.shape and _change(out, cut) > 0
    assert cv2.PSNR(out[:, 150:], cut[:, 150:]) > 40  # makeup stays on the face, near the left edge


def test_small_faces_skip_the_fine_detail_layers(perception, astronaut) -> None:
    from facetory_cam.looks.renderer import DETAIL_LAYERS

    face = perception.tracker(static=True).process(astronaut)[0]
    look = parse_look({"name": "liner only", "layers": {"eyeliner": {"thickness": 0.02}}})
    lips = parse_look({"name": "lips", "layers": {"lipstick": {"color": "#a01828"}}})
    assert "eyeliner" in DETAIL_LAYERS and "lipstick" not in DETAIL_LAYERS
    for detail_px, changed in ((0.0, True), (10_000.0, False)):  # the same face counts as large, then as small
        out = LookRenderer(look, fade_s=0.0, detail_min_face_px=detail_px).render(astronaut, [face])
        assert bool(np.abs(out.astype(int) - astronaut).max() > 10) is changed
    small = LookRenderer(lips, fade_s=0.0, detail_min_face_px=10_000.0).render(astronaut, [face])
    assert np.abs(small.astype(int) - astronaut).max() > 10  # colour layers still paint small faces
