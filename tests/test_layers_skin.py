"""Skin, cheek, teeth and lip-liner layers on a real face: where they paint, which way, and how hard."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facetory_cam.looks.color import rgb_to_lab
from facetory_cam.looks.context import FaceContext, build_context
from facetory_cam.looks.schema import Blush, Contour, Foundation, LipLiner, SkinSmoothing, TeethWhitening
from facetory_cam.vision.perception import Perception
from facetory_cam.vision.regions import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

CHANGED = 0.5 / 255.0  # a pixel counts as changed when a channel moves by more than half an 8-bit level

DEFAULTS: dict[str, Any] = {
    "foundation": Foundation(tone="#e0aa94", coverage=0.5),
    "skin_smoothing": SkinSmoothing(strength=0.6),
    "contour": Contour(contour=0.6, highlight=0.6),
    "blush": Blush(color="#f07890", opacity=0.4),
    "teeth_whitening": TeethWhitening(strength=0.8),
    "lip_liner": LipLiner(color="#8a3b3b", opacity=0.7),
}
# Where each layer may paint: the union of these masks, grown by GROW of the face size.
REGIONS: dict[str, tuple[str, ...]] = {
    "foundation": ("skin", "nose"),
    "skin_smoothing": ("skin",),
    "contour": ("skin",),
    "blush": ("left_cheek", "right_cheek"),
    "teeth_whitening": ("mouth_inner",),
    "lip_liner": ("upper_lip", "lower_lip"),
}
GROW = 0.04


def _render(key: str) -> Callable[[FaceContext, Any, float], None]:
    return import_module(f"facetory_cam.looks.layers.{key}").render


@pytest.fixture(scope="module")
def face(perception: Perception, astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """astronaut() and its landmarks; detection runs once for the module."""
    faces = perception.tracker(static=True).process(astronaut)
    assert len(faces) == 1
    return astronaut, faces[0].landmarks


def _apply(face: tuple[np.ndarray, np.ndarray], key: str, settings: Any, strength: float = 1.0) -> FaceContext:
    image, landmarks = face
    ctx = build_context(image, landmarks)
    assert ctx is not None
    _render(key)(ctx, settings, strength)
    return ctx


def _changed(ctx: FaceContext) -> np.ndarray:
    return np.abs(ctx.rgb - ctx.original).max(axis=2) > CHANGED


def _grown(ctx: FaceContext, names: tuple[str, ...], by: float) -> np.ndarray:
    zone = np.zeros(ctx.shape, np.uint8)
    for name in names:
        zone |= (ctx.mask(name) > 1e-3).astype(np.uint8)
    r = max(2, round(by))
    return cv2.dilate(zone, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(rgb)


FEATURES = ("left_eye", "right_eye", "left_brow", "right_brow", "upper_lip", "lower_lip", "mouth_inner")


@pytest.mark.parametrize("key", list(DEFAULTS))
def test_changes_stay_in_their_region(face, key: str) -> None:
    ctx = _apply(face, key, DEFAULTS[key])
    changed = _changed(ctx)
    assert changed.sum() > 20, f"{key} changed almost nothing"
    inside = _grown(ctx, REGIONS[key], GROW * ctx.face_size)
    if key == "foundation":  # it also fills the gap the skin mask leaves round the eyes, brows and lips
        inside |= _grown(ctx, FEATURES, 0.06 * ctx.face_size)
    share = float((changed & inside).sum()) / float(changed.sum())
    assert share >= 0.95, f"{key}: only {share:.1%} of the changed pixels are in {REGIONS[key]}"


def test_foundation_leaves_eyes_and_lips_alone(face) -> None:
    ctx = _apply(face, "foundation", Foundation(tone="#c89870", coverage=1.0))
    for name in ("left_eye", "right_eye", "upper_lip", "lower_lip", "mouth_inner"):
        core = ctx.mask(name) > 0.98
        if core.any():
            assert float(np.abs(ctx.rgb - ctx.original)[core].max()) < 2.0 / 255.0, name


@pytest.mark.parametrize("key", list(DEFAULTS))
def test_zero_strength_changes_nothing(face, key: str) -> None:
    ctx = _apply(face, key, DEFAULTS[key], strength=0.0)
    assert np.array_equal(ctx.rgb, ctx.original)


@pytest.mark.parametrize(
    ("key", "settings"),
    [
        ("foundation", Foundation(tone="#e0aa94", coverage=0.0)),
        ("skin_smoothing", SkinSmoothing(strength=0.0)),
        ("contour", Contour(contour=0.0, highlight=0.0)),
        ("blush", Blush(color="#f07890", opacity=0.0)),
        ("teeth_whitening", TeethWhitening(strength=0.0)),
        ("lip_liner", LipLiner(color="#8a3b3b", opacity=0.0)),
    ],
)
def test_zero_amount_changes_nothing(face, key: str, settings: Any) -> None:
    ctx = _apply(face, key, settings)
    assert np.array_equal(ctx.rgb, ctx.original)


def test_foundation_moves_skin_colour_towards_tone(face) -> None:
    from facetory_cam.looks.color import color_lab

    for tone in ("#e8a89c", "#c89870"):  # a pinker and a more golden tone than the astronaut's skin
        ctx = _apply(face, "foundation", Foundation(tone=tone, coverage=0.8))
        skin = ctx.mask("skin") > 0.9
        before, after = _lab(ctx.original)[skin], _lab(ctx.rgb)[skin]
        target = color_lab(Foundation(tone=tone).tone.rgb)
        for ch in (1, 2):
            b, a = float(before[:, ch].mean()), float(after[:, ch].mean())
            assert abs(a - target[ch]) < abs(b - target[ch]) - 0.5, (tone, ch, b, a, float(target[ch]))
        # Shading and texture survive: the lightness pattern is still the original one.
        corr = np.corrcoef(before[:, 0], after[:, 0])[0, 1]
        assert corr > 0.97


def test_blush_raises_cheek_redness(face) -> None:
    ctx = _apply(face, "blush", Blush(color="#f07890", opacity=0.5))
    for name in ("left_cheek", "right_cheek"):
        zone = ctx.mask(name) > 0.8
        assert zone.sum() > 10
        before, after = _lab(ctx.original)[zone], _lab(ctx.rgb)[zone]
        assert float(after[:, 1].mean()) > float(before[:, 1].mean()) + 2.0


def test_blush_size_and_lift(face) -> None:
    """A bigger blob covers more; a lifted one sits higher."""

    def centroid_and_area(settings: Blush) -> tuple[float, int]:
        changed = _changed(_apply(face, "blush", settings))
        ys = np.nonzero(changed)[0]
        return float(ys.mean()), int(changed.sum())

    y_mid, area_mid = centroid_and_area(Blush(color="#f07890"))
    _, area_big = centroid_and_area(Blush(color="#f07890", size=1.5))
    y_up, _ = centroid_and_area(Blush(color="#f07890", lift=1.0))
    y_down, _ = centroid_and_area(Blush(color="#f07890", lift=-1.0))
    assert area_big > area_mid * 1.5
    assert y_up < y_mid < y_down


def test_teeth_whitening_whitens_teeth_only(face) -> None:
    ctx = _apply(face, "teeth_whitening", TeethWhitening(strength=1.0))
    inside = ctx.mask("mouth_inner") > 0.5
    before, after = _lab(ctx.original), _lab(ctx.rgb)
    light = before[..., 0]
    teeth = inside & (light > np.percentile(light[inside], 70)) & (before[..., 1] < 12)
    assert teeth.sum() > 20
    assert float(after[..., 2][teeth].mean()) < float(before[..., 2][teeth].mean()) - 2.0
    assert float(after[..., 0][teeth].mean()) > float(before[..., 0][teeth].mean()) + 1.0
    # The darkest fifth of the mouth (cavity, shadow) keeps its 8-bit values within one level.
    dark = inside & (light <= np.percentile(light[inside], 20))
    q0 = np.rint(ctx.original[dark] * 255.0)
    q1 = np.rint(ctx.rgb[dark] * 255.0)
    assert np.abs(q1 - q0).max() <= 1.0


def test_teeth_whitening_closed_mouth_is_a_no_op(face) -> None:
    image, landmarks = face
    closed = landmarks.copy()
    pairs = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
    for upper, lower in pairs:
        mid = (closed[upper] + closed[lower]) / 2.0
        closed[upper] = closed[lower] = mid
    ctx = build_context(image, closed)
    assert ctx is not None
    _render("teeth_whitening")(ctx, TeethWhitening(strength=1.0), 1.0)
    assert np.array_equal(ctx.rgb, ctx.original)


def _disc(ctx: FaceContext, points: tuple[int, ...], radius: float) -> np.ndarray:
    zone = np.zeros(ctx.shape, np.uint8)
    for p in points:
        x, y = ctx.landmarks[p, :2]
        cv2.circle(zone, (round(float(x)), round(float(y))), max(1, round(radius)), 1, -1)
    return (zone > 0) & (ctx.mask("skin") > 0.9)


def test_contour_darkens_hollows_and_lights_the_bridge(face) -> None:
    ctx = _apply(face, "contour", Contour(contour=1.0, highlight=1.0))
    before, after = _lab(ctx.original)[..., 0], _lab(ctx.rgb)[..., 0]
    r = 0.03 * ctx.face_size
    shade = _disc(ctx, (147, 187, 376, 411), r)  # under the cheekbones
    light = _disc(ctx, (6, 197, 117, 346), r)  # nose bridge and cheekbone tops
    assert shade.sum() > 10 and light.sum() > 10
    assert float((after - before)[shade].mean()) < -1.5
    assert float((after - before)[light].mean()) > 1.5


def test_lip_liner_follows_the_outer_lip_contour(face) -> None:
    settings = LipLiner(color="#8a3b3b", opacity=0.8, thickness=0.02)
    ctx = _apply(face, "lip_liner", settings)
    changed = _changed(ctx)
    assert changed.sum() > 20
    outline = np.full(ctx.shape, 255, np.uint8)
    contour = ctx.landmarks[list(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[-2:0:-1]), :2]
    cv2.polylines(outline, [np.rint(contour).astype(np.int32)], True, 0, 1)
    distance = cv2.distanceTransform(outline, cv2.DIST_L2, 3)
    near = distance <= settings.thickness * ctx.face_size * 1.5 + 2.0
    share = float((changed & near).sum()) / float(changed.sum())
    assert share >= 0.95
    assert not (changed & (ctx.mask("mouth_inner") > 0.99)).any()


def _band_std(light: np.ndarray, zone: np.ndarray, fine: float, coarse: float) -> float:
    a = cv2.GaussianBlur(light, (0, 0), fine) if fine > 0 else light
    b = cv2.GaussianBlur(light, (0, 0), coarse)
    return float((a - b)[zone].std())


def test_skin_smoothing_evens_blotches_and_keeps_pores(face) -> None:
    ctx = _apply(face, "skin_smoothing", SkinSmoothing(strength=1.0))
    before, after = _lab(ctx.original)[..., 0], _lab(ctx.rgb)[..., 0]
    zone = cv2.erode((ctx.mask("skin") > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    size = ctx.face_size
    mid0 = _band_std(before, zone, 0.015 * size, 0.04 * size)
    mid1 = _band_std(after, zone, 0.015 * size, 0.04 * size)
    fine0 = _band_std(before, zone, 0.0, 1.0)
    fine1 = _band_std(after, zone, 0.0, 1.0)
    assert mid1 <= 0.7 * mid0, f"mid-frequency std {mid0:.3f} -> {mid1:.3f}"
    assert fine1 >= 0.5 * fine0, f"fine-detail std {fine0:.3f} -> {fine1:.3f}"
    # Eyes and lips are left alone.
    for names in (("left_eye", "right_eye"), ("upper_lip", "lower_lip")):
        keep = np.zeros(ctx.shape, bool)
        for n in names:
            keep |= ctx.mask(n) > 0.5
        mse = float(((ctx.rgb[keep] - ctx.original[keep]) ** 2).mean())
        psnr = 10.0 * np.log10(1.0 / max(mse, 1e-12))
        assert psnr >= 45.0, f"{names}: PSNR {psnr:.1f} dB"


@pytest.mark.parametrize("key", list(DEFAULTS))
def test_degenerate_faces_do_not_raise(face, key: str) -> None:
    image, landmarks = face
    settings = DEFAULTS[key]
    # A tiny face: the same landmarks scaled down to ~12 px.
    small = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
    lm = landmarks.copy()
    lm[:, :2] *= 48.0 / image.shape[1]
    for frame, points in ((small, lm), (image, _shifted(landmarks, image.shape, 0.7))):
        ctx = build_context(frame, points)
        if ctx is None:
            continue
        _render(key)(ctx, settings, 1.0)
        assert np.isfinite(ctx.rgb).all()
        assert ctx.rgb.min() >= 0.0 and ctx.rgb.max() <= 1.0


def _shifted(landmarks: np.ndarray, shape: tuple[int, ...], share: float) -> np.ndarray:
    """The face moved right until ``share`` of it is past the frame's edge."""
    out = landmarks.copy()
    x0, x1 = out[:468, 0].min(), out[:468, 0].max()
    out[:, 0] += shape[1] - x0 - (1.0 - share) * (x1 - x0)
    return out


def test_renderer_runs_every_skin_layer(perception: Perception, astronaut: np.ndarray, caplog) -> None:
    from facetory_cam.looks.renderer import LookRenderer
    from facetory_cam.looks.schema import Layers, Look

    faces = perception.tracker(static=True).process(astronaut)
    look = Look(name="skin layers", layers=Layers(**DEFAULTS))
    with caplog.at_level("ERROR"):
        out = LookRenderer(look).render(astronaut, faces)
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert np.abs(out.astype(np.int16) - astronaut).max() > 10


@pytest.mark.shared_data
def test_all_layers_on_real_faces(shared_data: Path, perception: Perception) -> None:
    from facetory_cam.imageio import load_image

    bare = sorted((shared_data / "makeup" / "beautygan" / "no_makeup").glob("*.png"))[:3]
    darker = shared_data / "hard_cases" / "group" / "face_recognition_obama_and_biden.jpg"
    paths = [p for p in [*bare, darker] if p.is_file()]
    if len(paths) < 4:
        pytest.skip("the beautygan bare faces or the darker-skin photo are missing")
    for path in paths:
        image = load_image(path)
        faces = perception.tracker(static=True).process(image)
        assert faces, f"no face found in {path.name}"
        for found in faces:
            ctx = build_context(image, found.landmarks)
            assert ctx is not None
            for key, settings in DEFAULTS.items():
                _render(key)(ctx, settings, 1.0)
            assert np.isfinite(ctx.rgb).all()
            assert not np.array_equal(ctx.rgb, ctx.original)
