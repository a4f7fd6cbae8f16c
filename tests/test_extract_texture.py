"""UV makeup texture, skin-tone variants and the extraction preview, on real faces.

The texture is checked in closed loop: a known pattern (face paint, a dot, freckles) is painted in
UV space onto a bare real face through the renderer's own texture layer, then extracted back.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.extract.preview import face_crop, preview_panels
from facetory_cam.extract.texture import exclusion_mask, extract_texture, texture_data_uri, unwrap
from facetory_cam.extract.variants import DEPTHS, SkinTone, classify, complementary_variants, skin_tone
from facetory_cam.imageio import load_image
from facetory_cam.looks.color import color_lab
from facetory_cam.looks.layers.texture import load_texture
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Color, Look, dump_look, parse_look
from facetory_cam.looks.uv import canonical_layout
from facetory_cam.vision.masks import face_region_masks
from facetory_cam.vision.regions import LEFT, LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, RIGHT

SIZE = 512
BARE = ("beautygan/no_makeup/vSYYZ306.png", "beautygan/no_makeup/vSYYZ639.png", "beautygan/no_makeup/xfsy_0401.png")
DEPTH_ORDER = [name for name, _ in DEPTHS] + ["deep"]


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tracker(perception):
    return perception.tracker(static=True)


@pytest.fixture(scope="module")
def astro(tracker, astronaut):
    faces = tracker.process(astronaut)
    assert faces, "no face found on the astronaut"
    return astronaut, faces[0].landmarks


def _face(tracker, image: np.ndarray) -> np.ndarray:
    faces = tracker.process(image)
    assert faces, "no face found"
    return faces[0].landmarks


def _pattern() -> np.ndarray:
    """Face paint (two stripes under each eye, a patch on the forehead, a dot) and 70 freckles, in UV."""
    uv = canonical_layout().uv * (SIZE - 1)
    tex = np.zeros((SIZE, SIZE, 4), np.uint8)
    for side, eye in ((-1, uv[33]), (1, uv[263])):
        for k, colour in enumerate([(30, 90, 220), (240, 240, 240)]):
            y = int(eye[1] + (0.08 + 0.035 * k) * SIZE)
            x0, x1 = int(SIZE / 2 + side * 0.12 * SIZE), int(SIZE / 2 + side * 0.33 * SIZE)
            cv2.line(tex, (x0, y), (x1, y), (*colour, 255), int(0.018 * SIZE))
    c = uv[67]
    centre = (int(c[0] + 0.03 * SIZE), int(c[1] + 0.04 * SIZE))
    cv2.ellipse(tex, centre, (int(0.06 * SIZE), int(0.035 * SIZE)), 20, 0, 360, (200, 40, 150, 255), -1)
    f = uv[151]
    cv2.circle(tex, (int(f[0]), int(f[1])), int(0.025 * SIZE), (230, 200, 40, 255), -1)
    rng = np.random.default_rng(0)
    nose = uv[5]
    for _ in range(70):
        x = nose[0] + rng.uniform(-0.2, 0.2) * SIZE
        y = nose[1] + rng.uniform(-0.06, 0.02) * SIZE
        cv2.circle(tex, (int(x), int(y)), int(0.006 * SIZE), (120, 70, 40, 200), -1, cv2.LINE_AA)
    tex[..., 3][exclusion_mask(SIZE, ("lips", "eyes", "brows")) > 0] = 0
    return tex


def _paint(image: np.ndarray, landmarks: np.ndarray, rgba: np.ndarray, **texture: object) -> np.ndarray:
    """The face with an RGBA UV texture rendered on it by the project's renderer."""
    look = parse_look({"name": "paint", "layers": {"texture": {"image": texture_data_uri(rgba), **texture}}})
    out = image.copy()
    LookRenderer(look).render_face(out, np.asarray(landmarks, np.float32))
    return out


def _lab(rgb_uint8: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb_uint8, np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _interior(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Texels the photo shows, at least 5 % of the side inside the face's outline."""
    un = unwrap(image, landmarks, SIZE)
    k = int(0.05 * SIZE) * 2 + 1
    inner = cv2.erode(un.face.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    return inner & (un.weight > 0.5)


def _round_trip(image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    pattern = _pattern()
    painted = _paint(image, landmarks, pattern)
    bare = extract_texture(image, landmarks)
    got = extract_texture(painted, landmarks)
    region = _interior(image, landmarks) & (exclusion_mask(SIZE, ("lips", "eyes", "brows")) == 0)
    alpha = got.rgba[..., 3][region].astype(np.float64)
    truth = pattern[..., 3][region].astype(np.float64)
    opaque = region & (pattern[..., 3] == 255) & (got.rgba[..., 3] >= 204)
    de_colour = np.linalg.norm(_lab(got.rgba[..., :3][opaque][None]) - _lab(pattern[..., :3][opaque][None]), axis=2)
    # The extracted texture rendered back onto the bare face looks like the painted face where the paint is solid.
    again = _paint(image, landmarks, got.rgba)
    solid = _paint(
        np.zeros_like(image), landmarks, np.dstack([np.full((SIZE, SIZE, 3), 255, np.uint8), pattern[..., 3]])
    )
    inside = solid.min(axis=2) >= 240
    de_render = np.linalg.norm(_lab(again) - _lab(painted), axis=2)[inside]
    return {
        "corr": float(np.corrcoef(alpha, truth)[0, 1]),
        "opaque_texels": int(opaque.sum()),
        "colour_de": float(np.median(de_colour)) if opaque.any() else math.inf,
        "render_de": float(np.median(de_render)) if inside.any() else math.inf,
        "render_pixels": int(inside.sum()),
        "coverage": got.coverage,
        "confidence": got.confidence,
        "bare_coverage": bare.coverage,
        "bare_confidence": bare.confidence,
    }


# ---------------------------------------------------------------------------------------------- (a) round trip


def test_painted_pattern_is_recovered_and_a_bare_face_stays_empty(astro) -> None:
    image, landmarks = astro
    m = _round_trip(image, landmarks)
    # The astronaut's fringe covers part of the forehead (and the painted patch there): looser bounds.
    assert m["corr"] > 0.5, m
    assert m["opaque_texels"] > 1000 and m["colour_de"] < 5.0, m
    assert m["render_pixels"] > 300 and m["render_de"] < 12.0, m
    assert m["bare_coverage"] < 0.035 and m["bare_confidence"] < 0.45, m
    assert m["confidence"] > 0.8 and m["coverage"] > m["bare_coverage"] + 0.03, m


@pytest.mark.shared_data
@pytest.mark.parametrize("name", BARE)
def test_round_trip_on_real_bare_faces(shared_data: Path, tracker, name: str) -> None:
    image = load_image(shared_data / "makeup" / name)
    m = _round_trip(image, _face(tracker, image))
    assert m["corr"] > 0.7, m
    assert m["opaque_texels"] > 1000 and m["colour_de"] < 5.0, m
    assert m["render_pixels"] > 300 and m["render_de"] < 8.0, m
    assert m["bare_coverage"] < 0.02 and m["bare_confidence"] < 0.25, m
    assert m["confidence"] > 0.8 and m["coverage"] > m["bare_coverage"] + 0.03, m


def test_texture_shape_and_bad_input(astro) -> None:
    image, landmarks = astro
    tex = extract_texture(image, landmarks, size=128)
    assert tex.rgba.shape == (128, 128, 4) and tex.rgba.dtype == np.uint8
    assert 0.0 <= tex.coverage <= 1.0 and 0.0 <= tex.confidence <= 1.0
    with pytest.raises(ValueError, match="exclude"):
        extract_texture(image, landmarks, exclude=("ears",))
    with pytest.raises(ValueError, match="landmarks"):
        extract_texture(image, landmarks[:100])
    with pytest.raises(ValueError, match="uint8"):
        extract_texture(image.astype(np.float32), landmarks)


# ---------------------------------------------------------------------------------------------- (b) exclusions


def _uv_polygon(indices: tuple[int, ...], erode: int) -> np.ndarray:
    uv = canonical_layout().uv * (SIZE - 1)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, [np.round(uv[list(indices)]).astype(np.int32)], 1)
    if erode:
        mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return mask > 0


def test_excluded_regions_stay_transparent(astro) -> None:
    image, landmarks = astro
    stripes = np.zeros((SIZE, SIZE, 4), np.uint8)
    for y in range(0, SIZE, 24):  # blue paint across the whole face: lips, brows, eyes and skin alike
        stripes[y : y + 10] = (20, 60, 230, 255)
    painted = _paint(image, landmarks, stripes)
    lips = _uv_polygon(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1], erode=2)
    brows = _uv_polygon(LEFT.brow_contour, 1) | _uv_polygon(RIGHT.brow_contour, 1)
    lash_line = _uv_polygon(LEFT.eye_contour, 0) | _uv_polygon(RIGHT.eye_contour, 0)
    lash_line = cv2.dilate(lash_line.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    seen = unwrap(image, landmarks, SIZE).weight > 0.5
    default = extract_texture(painted, landmarks).rgba[..., 3]
    assert (lips & seen).sum() > 200 and (brows & seen).sum() > 100
    assert default[lips].max() == 0 and default[brows].max() == 0 and default[lash_line].max() == 0
    # the same stripes between the features are there, and without exclusions the lips are painted too
    cheeks = _interior(image, landmarks) & ~(exclusion_mask(SIZE, ("lips", "eyes", "brows")) > 0)
    on = cheeks & (stripes[..., 3] > 0)
    assert (default[on] > 128).mean() > 0.5 and (default[cheeks & ~on] > 128).mean() < 0.1
    nothing = extract_texture(painted, landmarks, exclude=()).rgba[..., 3]
    assert nothing[lips & seen].max() > 128
    only_lips = extract_texture(painted, landmarks, exclude=("lips",)).rgba[..., 3]
    assert only_lips[lips].max() == 0 and only_lips[brows & seen].max() > 128


def _facing_away(landmarks: np.ndarray) -> np.ndarray:
    """UV texels of the triangles whose winding in the image is the mirror of their winding in UV space."""
    layout = canonical_layout()

    def areas(p: np.ndarray) -> np.ndarray:
        a, b, c = (p[layout.triangles[:, i], :2].astype(np.float64) for i in range(3))
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])

    away = np.sign(areas(landmarks[:468])) != np.sign(areas(layout.uv))
    masks = np.zeros((2, SIZE, SIZE), np.uint8)
    uv = layout.uv * (SIZE - 1)
    for t, flag in enumerate(away):
        cv2.fillConvexPoly(masks[int(flag)], np.round(uv[layout.triangles[t]] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    # off the edges they share with triangles that face the camera
    return (cv2.erode(masks[1], np.ones((3, 3), np.uint8)) > 0) & ~(cv2.dilate(masks[0], np.ones((5, 5), np.uint8)) > 0)


def test_a_mirrored_mesh_shows_nothing(astro) -> None:
    image, landmarks = astro
    flipped = landmarks.copy()
    flipped[:, 0] = 2 * landmarks[1, 0] - flipped[:, 0]  # every triangle now faces away
    away = _facing_away(flipped)
    assert away.sum() > 0.8 * unwrap(image, landmarks, SIZE).face.sum()
    un = unwrap(image, flipped, SIZE)
    assert un.weight[away].max() == 0.0 and (un.weight > 0.5).mean() < 0.02
    assert extract_texture(image, flipped).rgba[..., 3][away].max() == 0


@pytest.mark.shared_data
def test_a_turned_face_leaves_its_far_side_transparent(shared_data: Path, tracker) -> None:
    image = load_image(shared_data / "hard_cases" / "pose" / "facer_sideface.jpg")
    landmarks = _face(tracker, image)
    away = _facing_away(landmarks)
    un = unwrap(image, landmarks, SIZE)
    assert away.sum() > 0.1 * un.face.sum()  # the photo really is of a turned head
    tex = extract_texture(image, landmarks)
    assert un.weight[away].max() == 0.0 and tex.rgba[..., 3][away].max() == 0
    # the near half is seen, the far half (beyond the nose) mostly not
    u = np.broadcast_to(np.arange(SIZE)[None, :] / (SIZE - 1), (SIZE, SIZE))
    halves = [un.face & (u < 0.45), un.face & (u > 0.55)]
    seen = sorted((un.weight[h] > 0.5).mean() for h in halves)
    assert seen[0] < 0.25 and seen[1] > 0.8, seen


# ---------------------------------------------------------------------------------------------- (c) data URI


def test_data_uri_round_trips_through_the_texture_loader(astro) -> None:
    image, landmarks = astro
    tex = extract_texture(_paint(image, landmarks, _pattern()), landmarks)
    uri = texture_data_uri(tex.rgba)
    assert uri.startswith("data:image/png;base64,")
    decoded = load_texture(uri)
    assert decoded.shape == tex.rgba.shape
    assert np.array_equal(np.rint(decoded * 255.0).astype(np.uint8), tex.rgba)
    look = parse_look({"name": "from photo", "layers": {"texture": {"image": uri}}})
    out = LookRenderer(look).render(image, [])
    assert np.array_equal(out, image)  # no face, no paint
    painted = image.copy()
    LookRenderer(look).render_face(painted, landmarks.astype(np.float32))
    assert np.abs(painted.astype(int) - image.astype(int)).sum(axis=2).max() > 60
    with pytest.raises(ValueError, match="RGBA"):
        texture_data_uri(tex.rgba[..., :3])
    with pytest.raises(ValueError, match="square"):
        texture_data_uri(tex.rgba[:100])


# ---------------------------------------------------------------------------------------------- (d) skin tone


def _skin_canvas(image: np.ndarray, landmarks: np.ndarray, lab: tuple[float, float, float]) -> np.ndarray:
    """The image with the whole face replaced by skin of a known Lab colour, plus noise, shine and shadow."""
    rng = np.random.default_rng(1)
    h, w = image.shape[:2]
    hull = cv2.convexHull(np.round(landmarks[:468, :2]).astype(np.int32))
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, hull, 1)
    skin = np.empty((h, w, 3), np.float32)
    skin[:] = lab
    skin += rng.normal(0.0, 1.5, skin.shape).astype(np.float32)
    spots = rng.random((h, w))
    skin[spots < 0.08, 0] += 25.0  # shine
    skin[spots < 0.08, 1:] *= 0.5
    skin[spots > 0.92, 0] -= 25.0  # shadow
    rgb = np.clip(cv2.cvtColor(skin, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = image.copy()
    out[face > 0] = rgb[face > 0]
    return out


def test_skin_tone_of_known_skin_colours(astro) -> None:
    image, landmarks = astro
    depths = []
    for lightness in (80.0, 67.0, 58.0, 47.0, 33.0):
        truth = (lightness, 12.0, 16.0)
        tone = skin_tone(_skin_canvas(image, landmarks, truth), landmarks)
        assert np.allclose(tone.lab, truth, atol=2.0), (truth, tone)
        depths.append(tone.depth)
    assert depths == ["fair", "light", "medium", "tan", "deep"]
    for truth, undertone in (((60.0, 7.0, 25.0), "warm"), ((60.0, 17.0, 9.0), "cool"), ((60.0, 12.0, 17.0), "neutral")):
        tone = skin_tone(_skin_canvas(image, landmarks, truth), landmarks)
        assert tone.undertone == undertone, (truth, tone)
    assert classify((50.0, 1.0, 2.0))[1] == "neutral"  # too grey to have a hue


def test_skin_tone_orders_a_darker_exposure_deeper(astro) -> None:
    image, landmarks = astro
    linear = (image.astype(np.float32) / 255.0) ** 2.2
    darker = np.clip((linear * 0.2) ** (1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    a, b = skin_tone(image, landmarks), skin_tone(darker, landmarks)
    assert b.lab[0] < a.lab[0] - 15.0
    assert DEPTH_ORDER.index(b.depth) > DEPTH_ORDER.index(a.depth)


@pytest.mark.shared_data
def test_skin_tone_follows_cheek_lightness_on_real_faces(shared_data: Path, tracker) -> None:
    from scipy.stats import spearmanr

    ours, independent = [], []
    for path in sorted((shared_data / "makeup").glob("*/*/*.png")):
        image = load_image(path)
        landmarks = _face(tracker, image)
        m = face_region_masks(landmarks, image.shape, regions=("left_cheek", "right_cheek"))
        cheeks = np.maximum(m.full("left_cheek", image.shape), m.full("right_cheek", image.shape)) > 0.5
        independent.append(float(np.median(_lab(image)[cheeks][:, 0])))
        ours.append(skin_tone(image, landmarks).lab[0])
    assert len(ours) >= 10
    rho = spearmanr(ours, independent).statistic
    assert rho > 0.8, (rho, ours, independent)
    assert np.max(np.abs(np.subtract(ours, independent))) < 6.0


# ---------------------------------------------------------------------------------------------- (e) variants


def _extracted_look() -> Look:
    return parse_look(
        {
            "name": "Photo look",
            "description": "Read from a reference photo.",
            "tags": ["photo"],
            "provenance": {"source": "photo", "photo_sha256": "ab" * 32, "extractor_version": "1"},
            "layers": {
                "foundation": {"tone": "#d4a283", "coverage": 0.3},
                "contour": {"contour": 0.3, "highlight": 0.2},
                "blush": {"color": "#d27a74", "opacity": 0.3},
                "eyeshadow": {"color": "#c9a27e", "crease_color": "#6e4a3a", "opacity": 0.5},
                "eyeliner": {"opacity": 0.8},
                "lipstick": {"color": "#a8434f", "opacity": 0.7},
                "texture": {"image": texture_data_uri(np.zeros((16, 16, 4), np.uint8))},
            },
        }
    )


def _lch(colour: str) -> tuple[float, float, float]:
    lab = color_lab(Color(colour).rgb)
    return float(lab[0]), math.hypot(lab[1], lab[2]), math.degrees(math.atan2(lab[2], lab[1])) % 360.0


def _arc(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _tone(lab: tuple[float, float, float]) -> SkinTone:
    depth, undertone = classify(lab)
    return SkinTone(lab, depth, undertone)


def test_variants_are_valid_distinct_and_deterministic() -> None:
    look = _extracted_look()
    tone = _tone((62.0, 12.0, 19.0))
    variants = complementary_variants(look, tone)
    assert len(variants) == 3
    assert variants == complementary_variants(look, tone)
    assert len({v.name for v in variants}) == 3 and look.name not in {v.name for v in variants}
    for v in variants:
        assert parse_look(dump_look(v)) == v
        assert v.provenance == look.provenance
        assert {"variant", f"{tone.depth}-skin", f"{tone.undertone}-undertone", "photo"} <= set(v.tags)
        assert "lipstick" in v.description and tone.depth in v.description
        assert v.layers.foundation.tone == tone.color  # foundation matched to the user
        assert v.layers.texture is not None
    true, everyday, evening = variants
    assert everyday.layers.lipstick.opacity < true.layers.lipstick.opacity < evening.layers.lipstick.opacity
    assert _lch(everyday.layers.lipstick.color)[1] < _lch(evening.layers.lipstick.color)[1]
    assert len({v.layers.lipstick.color for v in variants}) == 3
    assert [v.name for v in complementary_variants(look, tone, n=2)] == [true.name, everyday.name]
    with pytest.raises(ValueError):
        complementary_variants(look, tone, n=0)


def test_variants_move_colours_the_documented_way() -> None:
    look = _extracted_look()
    ref_l, ref_c, ref_h = _lch(look.layers.lipstick.color)
    deep = _tone((33.0, 14.0, 22.0))
    assert deep.depth == "deep"
    for v in complementary_variants(look, deep):
        _, c, _ = _lch(v.layers.lipstick.color)
        assert c >= ref_c - 0.5, (v.name, c, ref_c)  # never washed out on deep skin
        assert _lch(v.layers.lipstick.color)[0] <= max(ref_l, deep.lab[0] + 10.0) + 0.5  # no chalky pastel
    fair_cool = _tone((78.0, 15.0, 9.0))
    assert (fair_cool.depth, fair_cool.undertone) == ("fair", "cool")
    for v in complementary_variants(look, fair_cool):
        _, c, h = _lch(v.layers.lipstick.color)
        assert _arc(h, 5.0) < _arc(ref_h, 5.0) - 3.0, (v.name, h, ref_h)  # towards berry and rose
        _, _, bh = _lch(v.layers.blush.color)
        assert _arc(bh, 10.0) < _arc(_lch(look.layers.blush.color)[2], 10.0)
    true_fair = complementary_variants(look, fair_cool, n=1)[0]
    assert _lch(true_fair.layers.lipstick.color)[1] < ref_c  # calmer on fair skin
    warm = _tone((60.0, 8.0, 26.0))
    assert warm.undertone == "warm"
    for v in complementary_variants(look, warm):
        assert _arc(_lch(v.layers.lipstick.color)[2], 45.0) < _arc(ref_h, 45.0) - 3.0  # towards coral


# ---------------------------------------------------------------------------------------------- (f) preview


def test_preview_panels(astro) -> None:
    image, landmarks = astro
    look = parse_look(
        {
            "name": "Red lip",
            "layers": {
                "lipstick": {"color": "#c0102a", "opacity": 0.9},
                "blush": {"color": "#e07a80", "opacity": 0.3},
                "texture": {"image": texture_data_uri(_pattern())},
            },
        }
    )
    h = 256
    out = preview_panels(image, landmarks, look, height=h, confidences={"lipstick": 0.9, "texture": 0.8})
    assert out.shape == (h, 3 * h, 3) and out.dtype == np.uint8
    left, middle, right = out[:, :h], out[:, h : 2 * h], out[:, 2 * h :]
    assert np.array_equal(left[h // 10 :], face_crop(image, landmarks, h)[h // 10 :])
    m = face_region_masks(landmarks, image.shape, regions=("upper_lip", "lower_lip"))
    lips = np.maximum(m.full("upper_lip", image.shape), m.full("lower_lip", image.shape))
    lips_crop = face_crop(np.repeat((lips * 255).astype(np.uint8)[..., None], 3, axis=2), landmarks, h)[..., 0] > 200
    assert lips_crop.sum() > 30
    diff = np.abs(right.astype(int) - left.astype(int)).sum(axis=2)
    assert diff[lips_crop].mean() > 40  # red lipstick on the lips
    rows = middle.reshape(-1, 3)
    assert np.any(np.all(rows == (0xC0, 0x10, 0x2A), axis=1))  # the lipstick chip
    assert np.any(np.all(rows == (0xE0, 0x7A, 0x80), axis=1))  # the blush chip
    assert middle.std() > 20  # text and thumbnail, not a blank panel
    # with a target, the third panel shows the target's face
    target = cv2.flip(image, 1)
    t_landmarks = landmarks.copy()
    t_landmarks[:, 0] = image.shape[1] - 1 - t_landmarks[:, 0]
    out2 = preview_panels(image, landmarks, look, target, t_landmarks, height=h)
    assert np.array_equal(out2[:, :h], out[:, :h])
    target_crop = face_crop(target, t_landmarks, h)
    assert np.abs(out2[:, 2 * h :].astype(int) - target_crop.astype(int)).sum(axis=2)[h // 10 :].mean() > 0.5
    with pytest.raises(ValueError):
        preview_panels(image, landmarks, look, target, None)
