"""Eye-area makeup layers (eyeshadow, eyeliner, mascara, brows, iris) on real faces.

Each layer is checked for where it paints (inside its zone, never on the eyeball),
which way it moves the colour, that intensity 0 is exactly a no-op and that strength
scales the effect, and that degenerate faces (closed eyes, tiny, off the frame edge)
do not raise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facetory_cam.imageio import load_image
from facetory_cam.looks.color import rgb_to_lab
from facetory_cam.looks.context import FaceContext, build_context
from facetory_cam.looks.layers import brows, eyeliner, eyeshadow, iris, mascara
from facetory_cam.looks.layers._eyes import INDEX, SIDES, eye_frame
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Brows, Eyeliner, Eyeshadow, IrisColor, Mascara, parse_look
from facetory_cam.vision.perception import Perception
from facetory_cam.vision.regions import LEFT, RIGHT

CHANGED = 1.0 / 255.0  # a pixel counts as changed when a channel moves by more than one level

LAYERS: dict[str, tuple[Any, Any]] = {
    "eyeshadow": (eyeshadow, Eyeshadow(color="#3a4fb8", crease_color="#6a6468", opacity=0.7, extent=0.8)),
    "eyeliner": (eyeliner, Eyeliner(wing_length=0.05, wing_angle=20.0)),
    "mascara": (mascara, Mascara(opacity=0.8)),
    "brows": (brows, Brows(color="#3b2a20", opacity=0.6, fill=0.5)),
    "iris": (iris, IrisColor(color="#3f7fd0", opacity=0.8)),
}


@pytest.fixture(scope="module")
def astro(perception: Perception, astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """astronaut() and its landmarks; the tracker runs once for the module."""
    faces = perception.tracker(static=True).process(astronaut)
    assert len(faces) == 1
    return astronaut, faces[0].landmarks


@pytest.fixture(scope="module")
def astro_large(astro: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """astronaut() at twice the size (a face of about 220 px), for checks that need more pixels per eye."""
    image, landmarks = astro
    return cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC), landmarks * 2.0


def painted(
    image: np.ndarray, landmarks: np.ndarray, key: str, settings: Any = None, strength: float = 1.0
) -> tuple[FaceContext, np.ndarray]:
    """A fresh context with one layer rendered, and the ROI before it."""
    ctx = build_context(image, landmarks)
    assert ctx is not None
    before = ctx.rgb.copy()
    module, default = LAYERS[key]
    module.render(ctx, default if settings is None else settings, strength)
    return ctx, before


def changed(ctx: FaceContext, before: np.ndarray) -> np.ndarray:
    return np.abs(ctx.rgb - before).max(axis=2) > CHANGED


def union(ctx: FaceContext, *names: str, dilate: int = 0) -> np.ndarray:
    m = np.zeros(ctx.shape, np.float32)
    for name in names:
        np.maximum(m, ctx.mask(name), out=m)
    if dilate:
        m = cv2.dilate(m, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return m


def lid_offset(ctx: FaceContext, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Per ROI pixel: position along the eye past the outer corner (px) and height above the upper lid (px)."""
    pts = ctx.landmarks[:, :2].astype(np.float64)
    side = LEFT if name == "left" else RIGHT
    frame = eye_frame(pts, side)
    ys, xs = np.indices(ctx.shape, dtype=np.float64)
    rel = np.stack([xs - frame.inner[0], ys - frame.inner[1]], axis=-1)
    u, v = rel @ frame.axis, rel @ frame.up
    lid = (pts[INDEX[name].eye_upper[::-1]] - frame.inner) @ np.stack([frame.axis, frame.up], axis=1)
    return u - frame.width, v - np.interp(u, lid[:, 0], lid[:, 1]), frame.width


def lab_mean(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    lab = rgb_to_lab(rgb)
    return (lab * weights[..., None]).reshape(-1, 3).sum(axis=0) / weights.sum()


# -- every layer ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_zero_strength_changes_nothing(astro, key: str) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, key, strength=0.0)
    assert np.array_equal(ctx.rgb, before)
    ctx, before = painted(image, landmarks, key, LAYERS[key][1].model_copy(update={"opacity": 0.0}))
    assert np.array_equal(ctx.rgb, before)


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_strength_scales_monotonically(astro, key: str) -> None:
    image, landmarks = astro
    effect = []
    for strength in (0.2, 0.5, 1.0):
        ctx, before = painted(image, landmarks, key, strength=strength)
        effect.append(float(np.abs(ctx.rgb - before).sum()))
    assert 0.0 < effect[0] < effect[1] < effect[2]


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_renders_through_the_renderer(astro, key: str, caplog: pytest.LogCaptureFixture) -> None:
    image, landmarks = astro
    settings = LAYERS[key][1].model_dump(exclude_defaults=True)
    renderer = LookRenderer(parse_look({"name": "eyes", "layers": {key: settings}}))
    frame = image.copy()
    with caplog.at_level(logging.ERROR):
        renderer.render_face(frame, landmarks)
    assert not caplog.records  # a layer that raises is logged and switched off
    assert (frame != image).any()


# -- eyeshadow ----------------------------------------------------------------------------------


def test_eyeshadow_stays_on_the_lid(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "eyeshadow")
    moved = changed(ctx, before)
    assert moved.sum() > 100
    zone = union(ctx, "left_eyeshadow", "right_eyeshadow", dilate=2) > 0.01
    assert (moved & zone).sum() >= 0.95 * moved.sum()
    # Inside the eye: past the anti-aliased row of pixels the lid contour runs through (there the
    # feathered eye mask is about 0.5 and the pixel is part lid, part lashes).
    eyes = union(ctx, "left_eye", "right_eye") > 0.7
    assert (moved & eyes).sum() <= 0.01 * moved.sum()
    # Nothing below the lower lids: the shadow starts at the upper lid.
    for _, name in SIDES:
        _, height, width = lid_offset(ctx, name)
        assert (moved & (height < -0.25 * width)).sum() == 0


def test_eyeshadow_moves_towards_the_product(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "eyeshadow", Eyeshadow(color="#3050c0", opacity=0.8, extent=0.8))
    zone = union(ctx, "left_eyeshadow", "right_eyeshadow")
    old, new = lab_mean(before, zone), lab_mean(ctx.rgb, zone)
    assert new[2] < old[2] - 8.0  # towards blue
    assert new[0] < old[0]  # a darker product darkens the lid
    # Texture survives: the lid's own lightness pattern still correlates with the result.
    inside = zone > 0.8
    assert np.corrcoef(rgb_to_lab(before)[..., 0][inside], rgb_to_lab(ctx.rgb)[..., 0][inside])[0, 1] > 0.8


def test_eyeshadow_gradient_runs_from_lid_to_crease(astro) -> None:
    image, landmarks = astro
    s = Eyeshadow(color="#c03020", crease_color="#2040c0", opacity=1.0, extent=1.0)
    ctx, before = painted(image, landmarks, "eyeshadow", s)
    delta = rgb_to_lab(ctx.rgb) - rgb_to_lab(before)
    moved = changed(ctx, before)
    for _, name in SIDES:
        _, height, width = lid_offset(ctx, name)
        near = moved & (height > 0) & (height < 0.12 * width)
        high = moved & (height > 0.3 * width)
        assert near.sum() > 20 and high.sum() > 20
        assert delta[near][:, 2].mean() > 2.0  # red-orange at the lash line: b* up
        assert delta[high][:, 2].mean() < -5.0  # blue towards the brow: b* down


def test_eyeshadow_extent_shrinks_the_reach(astro) -> None:
    image, landmarks = astro
    heights = []
    for extent in (0.2, 1.0):
        ctx, before = painted(image, landmarks, "eyeshadow", Eyeshadow(color="#404040", opacity=0.8, extent=extent))
        moved = changed(ctx, before)
        past, height, width = lid_offset(ctx, "left")
        this_eye = moved & (past > -1.2 * width) & (past < 0.3 * width) & (np.abs(height) < width)
        heights.append(np.percentile(height[this_eye], 95))
    assert heights[0] < 0.8 * heights[1]


# -- eyeliner -----------------------------------------------------------------------------------


def test_eyeliner_sits_on_the_upper_lash_line(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "eyeliner", Eyeliner(wing_length=0.0))
    moved = changed(ctx, before)
    assert moved.sum() > 30
    eyes = union(ctx, "left_eye", "right_eye") > 0.8
    assert (moved & eyes).sum() <= 0.02 * moved.sum()  # not on the eyeball
    weight = np.abs(ctx.rgb - before).sum(axis=2)
    for _, name in SIDES:
        past, height, width = lid_offset(ctx, name)
        mine = moved & (np.abs(past + 0.5 * width) < width)  # this eye's changes
        assert mine.sum() > 10
        # Above or right at the lid contour, never far above it, and darker.
        assert (weight[mine & (height > -1.5)]).sum() >= 0.95 * weight[mine].sum()
        assert height[mine].max() < 0.04 * ctx.face_size + 3.0
        assert (ctx.rgb[mine] <= before[mine] + 1e-6).all()


def test_eyeliner_thicker_towards_the_outer_corner(astro_large) -> None:
    image, landmarks = astro_large
    ctx, before = painted(image, landmarks, "eyeliner", Eyeliner(wing_length=0.0))
    # Coverage, not absolute darkening: the liner multiplies, so on dark lashes it changes little.
    darkening = 1.0 - (ctx.rgb.sum(axis=2) + 1e-3) / (before.sum(axis=2) + 1e-3)
    for _, name in SIDES:
        past, height, width = lid_offset(ctx, name)
        along = 1.0 + past / width  # 0 inner corner, 1 outer corner
        inner = darkening[(along > 0.1) & (along < 0.35) & (np.abs(height) < width * 0.3)].sum()
        outer = darkening[(along > 0.6) & (along < 0.85) & (np.abs(height) < width * 0.3)].sum()
        assert outer > 1.3 * inner


def test_eyeliner_wing_reaches_past_the_outer_corner(astro) -> None:
    image, landmarks = astro
    beyond = {}
    for wing in (0.0, 0.05):
        ctx, before = painted(image, landmarks, "eyeliner", Eyeliner(wing_length=wing, wing_angle=25.0))
        moved = changed(ctx, before)
        counts = []
        for _, name in SIDES:
            past, height, _ = lid_offset(ctx, name)
            counts.append(int((moved & (past > 3.0) & (past < 0.1 * ctx.face_size)).sum()))
            if wing > 0:
                # The wing rises above the eye line, on each side mirrored correctly.
                tip = moved & (past > 0.6 * wing * ctx.face_size)
                assert tip.any() and np.median(height[tip]) > 0.0
        beyond[wing] = counts
    assert beyond[0.0] == [0, 0]
    assert min(beyond[0.05]) > 5


# -- mascara ------------------------------------------------------------------------------------


def test_mascara_darkens_a_thin_band_at_the_lids(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "mascara")
    moved = changed(ctx, before)
    assert moved.sum() > 30
    lids = np.zeros(ctx.shape, np.uint8)
    pts = ctx.landmarks[:, :2]
    for side in (LEFT, RIGHT):
        for contour in (side.eye_upper, side.eye_lower):
            cv2.polylines(lids, [np.rint(pts[list(contour)]).astype(np.int32)], False, 255, 1)
    distance = cv2.distanceTransform(255 - lids, cv2.DIST_L2, 3)
    assert distance[moved].max() <= 0.03 * ctx.face_size + 3.0
    assert (ctx.rgb[moved] <= before[moved] + 1e-6).all()
    eyes = union(ctx, "left_eye", "right_eye") > 0.8
    assert (moved & eyes).sum() <= 0.02 * moved.sum()
    # The upper lashes get more than the lower ones.
    darkening = np.clip(before - ctx.rgb, 0.0, None).sum(axis=2)
    for _, name in SIDES:
        past, height, width = lid_offset(ctx, name)
        this_eye = (past > -1.3 * width) & (past < 0.3 * width)
        assert darkening[this_eye & (height > -1.0)].sum() > 0.6 * darkening[this_eye].sum()


# -- brows --------------------------------------------------------------------------------------


def test_brows_get_darker_inside_the_brows(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "brows")
    moved = changed(ctx, before)
    assert moved.sum() > 30
    zone = union(ctx, "left_brow", "right_brow", dilate=1) > 0.01
    assert (moved & zone).sum() >= 0.98 * moved.sum()
    w = union(ctx, "left_brow", "right_brow")
    assert lab_mean(ctx.rgb, w)[0] < lab_mean(before, w)[0] - 2.0


def test_brow_fill_covers_the_skin_between_hairs(astro) -> None:
    image, landmarks = astro
    change = {}
    for fill in (0.0, 1.0):
        ctx, before = painted(image, landmarks, "brows", Brows(color="#3b2a20", opacity=0.6, fill=fill))
        w = union(ctx, "left_brow", "right_brow")
        luma = before @ np.array([0.299, 0.587, 0.114], np.float32)
        core = w > 0.7
        light = core & (luma > np.percentile(luma[core], 70))  # skin showing between the hairs
        dark = core & (luma < np.percentile(luma[core], 20))  # the hairs
        diff = np.abs(ctx.rgb - before).sum(axis=2)
        change[fill] = (float(diff[light].mean()), float(diff[dark].mean()))
        # Hair texture is kept: hairs stay darker than the skin between them.
        after_luma = ctx.rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        assert after_luma[dark].mean() < after_luma[light].mean()
    assert change[0.0][0] < change[0.0][1]  # fill 0: the hairs take the colour, not the skin
    assert change[1.0][0] > 2.0 * change[0.0][0]  # fill 1: the skin between them is covered too


# -- iris ---------------------------------------------------------------------------------------


def test_iris_recolours_only_the_iris(astro) -> None:
    image, landmarks = astro
    ctx, before = painted(image, landmarks, "iris")
    moved = changed(ctx, before)
    assert moved.sum() > 20
    irises = union(ctx, "left_iris", "right_iris")
    assert (moved & (irises > 0.01)).sum() >= 0.99 * moved.sum()
    old, new = lab_mean(before, irises), lab_mean(ctx.rgb, irises)
    target = rgb_to_lab(np.array([[IrisColor(color="#3f7fd0").color.rgb]], np.float32))[0, 0]
    assert np.hypot(*(new[1:] - target[1:])) < np.hypot(*(old[1:] - target[1:])) - 5.0
    assert new[2] < old[2]  # towards blue
    # The pupil is left alone.
    pts = ctx.landmarks[:, :2]
    ys, xs = np.indices(ctx.shape)
    for side in (LEFT, RIGHT):
        centre = pts[side.iris_centre]
        radius = np.linalg.norm(pts[list(side.iris_ring)] - centre, axis=1).mean()
        pupil = np.hypot(xs - centre[0], ys - centre[1]) < 0.3 * radius
        assert not moved[pupil].any()


def test_iris_keeps_the_limbal_ring_darker(astro_large) -> None:
    image, landmarks = astro_large
    rings = []
    for keep in (True, False):
        s = IrisColor(color="#7fb0e0", opacity=1.0, keep_limbal_ring=keep)
        ctx, _ = painted(image, landmarks, "iris", s)
        pts = ctx.landmarks[:, :2]
        ys, xs = np.indices(ctx.shape)
        light = rgb_to_lab(ctx.rgb)[..., 0]
        total = 0.0
        for side, name in SIDES:
            centre = pts[side.iris_centre]
            radius = np.linalg.norm(pts[list(side.iris_ring)] - centre, axis=1).mean()
            d = np.hypot(xs - centre[0], ys - centre[1]) / radius
            ring = (d > 0.8) & (d < 0.98) & (ctx.mask(f"{name}_iris") > 0.5)
            body = (d > 0.5) & (d < 0.7) & (ctx.mask(f"{name}_iris") > 0.5)
            total += float(light[body].mean() - light[ring].mean())
        rings.append(total)
    assert rings[0] > rings[1]


def test_iris_spares_highlights(astro) -> None:
    image, landmarks = astro
    ctx = build_context(image, landmarks)
    assert ctx is not None
    # Plant a specular highlight in each iris and check it stays bright and neutral.
    pts = ctx.landmarks[:, :2]
    spots = []
    for side in (LEFT, RIGHT):
        centre = pts[side.iris_centre]
        radius = np.linalg.norm(pts[list(side.iris_ring)] - centre, axis=1).mean()
        x, y = int(round(centre[0] + 0.6 * radius)), int(round(centre[1] - 0.1 * radius))
        ctx.rgb[y, x] = 0.97
        spots.append((y, x))
    before = ctx.rgb.copy()
    iris.render(ctx, IrisColor(color="#3f7fd0", opacity=1.0), 1.0)
    for y, x in spots:
        assert np.abs(ctx.rgb[y, x] - before[y, x]).max() < 0.05


# -- degenerate faces ---------------------------------------------------------------------------


def _closed_eyes(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks with both eyes shut: lids on one line, iris points collapsed onto it."""
    out = landmarks.copy()
    for side in (LEFT, RIGHT):
        upper, lower = list(side.eye_upper), list(side.eye_lower)
        mid = (out[upper] + out[lower]) / 2.0
        out[upper], out[lower] = mid, mid
        centre = out[side.iris_centre]
        out[list(side.iris_ring)] = centre
    return out


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_closed_eyes_do_not_raise(astro, key: str) -> None:
    image, landmarks = astro
    ctx, before = painted(image, _closed_eyes(landmarks), key)
    assert np.isfinite(ctx.rgb).all()
    if key == "iris":
        assert np.array_equal(ctx.rgb, before)


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_tiny_and_clipped_faces_do_not_raise(astro, key: str) -> None:
    image, landmarks = astro
    # A face a dozen pixels wide.
    mesh = landmarks[:, :2]
    tiny = landmarks.copy()
    tiny[:, :2] = (mesh - mesh.min(axis=0)) * (12.0 / np.ptp(mesh, axis=0).max()) + 4.0
    frame = cv2.resize(image, (40, 40), interpolation=cv2.INTER_AREA)
    ctx, _ = painted(frame, tiny, key)
    assert np.isfinite(ctx.rgb).all()
    # Faces hanging off each edge of the frame: the ROI is clipped.
    for dx, dy in ((-0.6, 0.0), (0.6, 0.0), (0.0, -0.45), (0.0, 0.6)):
        moved = landmarks.copy()
        moved[:, 0] += dx * image.shape[1]
        moved[:, 1] += dy * image.shape[0]
        ctx = build_context(image, moved)
        if ctx is not None:
            LAYERS[key][0].render(ctx, LAYERS[key][1], 1.0)
            assert np.isfinite(ctx.rgb).all()


def test_every_eye_layer_together(astro, caplog: pytest.LogCaptureFixture) -> None:
    image, landmarks = astro
    look = parse_look(
        {
            "name": "smoky",
            "layers": {key: LAYERS[key][1].model_dump(exclude_defaults=True) for key in LAYERS},
        }
    )
    renderer = LookRenderer(look)
    assert np.array_equal(renderer.render(image, [], None), image)
    frame = image.copy()
    with caplog.at_level(logging.ERROR):
        renderer.render_face(frame, landmarks)
    assert not caplog.records and (frame != image).any()


# -- real faces -----------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_faces(perception: Perception, shared_data: Path) -> None:
    paths = sorted((shared_data / "makeup" / "beautygan" / "no_makeup").glob("*.png"))[:3]
    closed = shared_data / "hard_cases" / "expression" / "inspireface_close_eyes.jpeg"
    if len(paths) < 3:
        pytest.skip("fewer than 3 no-makeup faces in the shared data")
    zones = {
        "eyeshadow": ("left_eyeshadow", "right_eyeshadow"),
        "brows": ("left_brow", "right_brow"),
        "iris": ("left_iris", "right_iris"),
    }
    for path in [*paths, closed] if closed.exists() else paths:
        image = load_image(path)
        faces = perception.tracker(static=True).process(image)
        assert faces, path.name
        landmarks = faces[0].landmarks
        for key in LAYERS:
            settings = LAYERS[key][1]
            if key == "eyeliner":
                settings = Eyeliner(wing_length=0.0)
            ctx, before = painted(image, landmarks, key, settings)
            moved = changed(ctx, before)
            if key in zones:
                zone = union(ctx, *zones[key], dilate=2) > 0.01
                assert (moved & zone).sum() >= 0.95 * moved.sum(), (path.name, key)
            else:  # lash-line products: within a few percent of the face of the lids
                near = union(ctx, "left_eye", "right_eye", dilate=max(3, int(0.04 * ctx.face_size))) > 0.01
                assert (moved & near).sum() >= 0.98 * moved.sum(), (path.name, key)
            if path != closed:
                assert moved.sum() > 20, (path.name, key)
