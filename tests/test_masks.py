from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.imageio import load_image
from facetory_cam.vision import masks as masks_module
from facetory_cam.vision.masks import (
    REGION_NAMES,
    RegionMasks,
    draw_regions,
    face_region_masks,
    union_mask,
)
from facetory_cam.vision.perception import Perception
from facetory_cam.vision.regions import LEFT, RIGHT

# Region area as a percentage of the landmark box, measured on astronaut() (smiling, teeth showing)
# and kept about +-35 % around the measurement.
ASTRONAUT_AREA_PCT = {
    "upper_lip": (0.7, 1.5),
    "lower_lip": (1.4, 2.7),
    "mouth_inner": (2.0, 4.0),
    "left_eye": (0.7, 1.5),
    "right_eye": (0.7, 1.5),
    "left_iris": (0.35, 0.85),
    "right_iris": (0.35, 0.85),
    "left_brow": (1.0, 2.2),
    "right_brow": (1.0, 2.2),
    "left_eyeshadow": (0.8, 1.7),
    "right_eyeshadow": (0.8, 1.7),
    "left_cheek": (0.9, 2.0),
    "right_cheek": (0.9, 2.0),
    "skin": (35.0, 52.0),
    "nose": (3.5, 6.0),
}


@pytest.fixture(scope="module")
def astro_face(perception: Perception, astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """astronaut(), its landmarks and landmark box; the tracker runs once for the module."""
    faces = perception.tracker(static=True).process(astronaut)
    assert len(faces) == 1
    return astronaut, faces[0].landmarks, faces[0].box


@pytest.fixture(scope="module")
def masks(astro_face) -> RegionMasks:
    image, landmarks, _ = astro_face
    return face_region_masks(landmarks, image.shape)


def _area(m: np.ndarray) -> float:
    return float(m.sum(dtype=np.float64))


def _centroid(m: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(m.shape)
    w = m.astype(np.float64)
    return np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Shared mass as a fraction of the smaller mask."""
    return _area(np.minimum(a, b)) / min(_area(a), _area(b))


def _soft_pixels(m: np.ndarray) -> int:
    return int(np.count_nonzero((m > 0.05) & (m < 0.95)))


# -- astronaut ----------------------------------------------------------------------------------


def test_every_region_valid_and_roi_sized(astro_face, masks: RegionMasks) -> None:
    image, landmarks, _ = astro_face
    x0, y0, x1, y1 = masks.box
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    assert x0 <= landmarks[:, 0].min() and landmarks[:, 0].max() < x1
    assert y0 <= landmarks[:, 1].min() and landmarks[:, 1].max() < y1
    assert (x1 - x0) * (y1 - y0) < 0.1 * image.shape[0] * image.shape[1]  # the ROI, not the frame
    assert tuple(masks.masks) == REGION_NAMES
    for name, m in masks.masks.items():
        assert m.dtype == np.float32, name
        assert m.shape == (y1 - y0, x1 - x0), name
        assert np.isfinite(m).all(), name
        assert m.min() >= 0.0 and m.max() <= 1.0, name
        assert m.max() > 0.5, name  # every region is really there (thin lips blur below 1)


@pytest.mark.parametrize("name", REGION_NAMES)
def test_region_area_plausible(astro_face, masks: RegionMasks, name: str) -> None:
    _, _, (bx0, by0, bx1, by1) = astro_face
    pct = 100.0 * _area(masks.masks[name]) / ((bx1 - bx0) * (by1 - by0))
    lo, hi = ASTRONAUT_AREA_PCT[name]
    assert lo <= pct <= hi, f"{name}: {pct:.2f}% of the face box"


def test_layout(masks: RegionMasks) -> None:
    c = {name: _centroid(m) for name, m in masks.masks.items()}
    assert c["upper_lip"][1] < c["mouth_inner"][1] < c["lower_lip"][1]
    # The subject's left is the image's right.
    for part in ("eye", "iris", "brow", "eyeshadow", "cheek"):
        assert c[f"left_{part}"][0] > c["nose"][0] > c[f"right_{part}"][0], part
    for side in ("left", "right"):
        assert c[f"{side}_brow"][1] < c[f"{side}_eyeshadow"][1] < c[f"{side}_eye"][1]
        assert c[f"{side}_eye"][1] < c[f"{side}_cheek"][1] < c["upper_lip"][1]
    eyes_y = (c["left_eye"][1] + c["right_eye"][1]) / 2
    assert eyes_y < c["nose"][1] < c["upper_lip"][1]


@pytest.mark.parametrize("side", ["left", "right"])
def test_iris_inside_eye(masks: RegionMasks, side: str) -> None:
    iris, eye = masks.masks[f"{side}_iris"], masks.masks[f"{side}_eye"]
    assert np.all(iris <= eye + 1e-6)  # cut by the lids before feathering, so never outside the eye
    assert _area(iris) <= _area(eye)
    cx, cy = np.rint(_centroid(iris)).astype(int)
    assert eye[cy, cx] > 0.9


def test_skin_leaves_out_features(masks: RegionMasks) -> None:
    skin = masks.masks["skin"]
    for name in ("upper_lip", "lower_lip", "mouth_inner", "left_eye", "right_eye", "left_brow", "right_brow"):
        assert _overlap(skin, masks.masks[name]) < 0.02, name


def test_lips_stop_at_the_mouth_opening(masks: RegionMasks) -> None:
    mouth = masks.masks["mouth_inner"]
    lips = masks.masks["upper_lip"] + masks.masks["lower_lip"]
    assert _area(mouth) > 0
    # Lips and opening split the anti-aliased edge pixels between them and nothing more: no lip
    # colour on the teeth, and the two lips do not stack.
    assert (lips + mouth).max() <= 1.0 + 1e-6
    assert lips[mouth > 0.75].max() <= 0.25 + 1e-6
    assert _area(lips * (mouth > 0.5)) < 0.05 * _area(lips)


@pytest.mark.parametrize("side", ["left", "right"])
def test_eyeshadow_off_the_eyeball_and_fading_to_the_brow(masks: RegionMasks, side: str) -> None:
    shadow, eye = masks.masks[f"{side}_eyeshadow"], masks.masks[f"{side}_eye"]
    assert _area(shadow * (eye > 0.75)) < 0.02 * _area(shadow)
    brow_top = _centroid(masks.masks[f"{side}_brow"])[1]
    eye_y = _centroid(eye)[1]
    rows = np.arange(shadow.shape[0])
    per_row = shadow.sum(axis=1)
    lower = per_row[(rows > (brow_top + eye_y) / 2) & (rows < eye_y)].sum()
    upper = per_row[(rows > brow_top) & (rows <= (brow_top + eye_y) / 2)].sum()
    assert lower > 2 * upper  # strongest near the lid


@pytest.mark.parametrize("side", ["left", "right"])
def test_cheek_is_a_soft_blob_on_the_skin(masks: RegionMasks, side: str) -> None:
    cheek, skin = masks.masks[f"{side}_cheek"], masks.masks["skin"]
    assert np.all(cheek <= skin + 1e-6)
    assert _soft_pixels(cheek) > 0.4 * np.count_nonzero(cheek > 0.05)


def test_feather_widens_soft_edges(astro_face) -> None:
    image, landmarks, _ = astro_face
    counts = {
        f: face_region_masks(landmarks, image.shape, feather=f, regions=["nose", "left_eye", "upper_lip"])
        for f in (0.0, 1.0, 2.0, 4.0)
    }
    for name in ("nose", "left_eye", "upper_lip"):
        soft = [_soft_pixels(counts[f].masks[name]) for f in sorted(counts)]
        assert soft == sorted(soft) and soft[0] < soft[-1] / 3, (name, soft)
    # feather=0 still anti-aliases: fractional coverage, but only in a one-pixel band along the edge
    hard = counts[0.0].masks["nose"]
    inside = (hard > 0.5).astype(np.uint8)
    edge = cv2.dilate(inside, np.ones((3, 3), np.uint8)) != cv2.erode(inside, np.ones((3, 3), np.uint8))
    soft = (hard > 0.05) & (hard < 0.95)
    assert soft.any() and not (soft & ~edge).any()


def test_regions_subset_and_full(astro_face, masks: RegionMasks) -> None:
    image, landmarks, _ = astro_face
    sub = face_region_masks(landmarks, image.shape, regions=["left_cheek", "upper_lip"])
    assert tuple(sub.masks) == ("left_cheek", "upper_lip")
    assert sub.box == masks.box
    np.testing.assert_allclose(sub.masks["left_cheek"], masks.masks["left_cheek"], atol=1e-6)
    full = masks.full("upper_lip", image.shape)
    assert full.shape == image.shape[:2] and full.dtype == np.float32
    assert _area(full) == pytest.approx(_area(masks.masks["upper_lip"]))
    both = union_mask(masks, ["left_eye", "right_eye"])
    np.testing.assert_array_equal(both, np.maximum(masks.masks["left_eye"], masks.masks["right_eye"]))


def test_468_points_give_empty_irises(astro_face) -> None:
    image, landmarks, _ = astro_face
    m = face_region_masks(landmarks[:468], image.shape)
    assert _area(m.masks["left_iris"]) == 0 and _area(m.masks["right_iris"]) == 0
    assert _area(m.masks["left_eye"]) > 0


def test_draw_regions_tints_a_copy_inside_the_box(astro_face, masks: RegionMasks) -> None:
    image, _, _ = astro_face
    before = image.copy()
    out = draw_regions(image, masks)
    np.testing.assert_array_equal(image, before)
    assert out.shape == image.shape and out.dtype == image.dtype
    changed = np.any(out != image, axis=2)
    x0, y0, x1, y1 = masks.box
    assert changed[y0:y1, x0:x1].mean() > 0.3
    changed[y0:y1, x0:x1] = False
    assert not changed.any()


def test_masks_are_built_when_looked_up_and_kept(astro_face) -> None:
    image, landmarks, _ = astro_face
    m = face_region_masks(landmarks, image.shape, regions=["left_cheek", "upper_lip", "skin"])
    assert len(m.masks) == 3 and list(m.masks) == ["left_cheek", "upper_lip", "skin"]
    assert "skin" in m.masks and "nose" not in m.masks and "lips" not in m.masks
    with pytest.raises(KeyError):
        m.masks["nose"]
    first = m.masks["left_cheek"]
    assert m.masks["left_cheek"] is first  # built once, then the same array
    # Built in any order, each mask is the same as when all are built in the usual order.
    later = {name: m.masks[name].copy() for name in ("skin", "upper_lip")}
    every = face_region_masks(landmarks, image.shape)
    for name, mask in later.items():
        np.testing.assert_array_equal(mask, every.masks[name], err_msg=name)
    np.testing.assert_array_equal(first, every.masks["left_cheek"])


# -- big faces: the soft regions feathered on a coarser grid ----------------------------------------

BIG = 3.0  # astronaut() scaled up to a face of about 320 px


@pytest.fixture(scope="module")
def big_face(astro_face) -> tuple[np.ndarray, tuple[int, int], float]:
    """The astronaut's landmarks scaled up, the image shape to match and the usual feather (1.2 % of the face)."""
    image, landmarks, _ = astro_face
    big = landmarks.astype(np.float64) * BIG
    mesh = big[:468, :2]
    feather = 0.012 * float(max(np.ptp(mesh[:, 0]), np.ptp(mesh[:, 1])))
    return big, (image.shape[0] * int(BIG), image.shape[1] * int(BIG)), feather


def _exact(monkeypatch: pytest.MonkeyPatch, *args, **kwargs) -> RegionMasks:
    """Masks with every region feathered at full resolution."""
    with monkeypatch.context() as patch:
        patch.setattr(masks_module, "_COARSE_SIGMA", math.inf)
        return face_region_masks(*args, **kwargs)


def test_big_face_coarse_feathering_matches_full_resolution(big_face, monkeypatch: pytest.MonkeyPatch) -> None:
    landmarks, shape, feather = big_face
    assert masks_module._coarse_boxes(feather)[0] > 1  # the soft regions are feathered on a coarser grid
    fast = face_region_masks(landmarks, shape, feather=feather)
    exact = _exact(monkeypatch, landmarks, shape, feather=feather)
    for name in REGION_NAMES:
        a, b = fast.full(name, shape), exact.full(name, shape)
        assert a.max() <= 1.0 and a.min() >= 0.0, name
        inside = (a > 0.01) | (b > 0.01)
        assert np.abs(a - b)[inside].mean() < 0.015, name  # soft edges a few percent wider or narrower at most
        assert np.abs(a - b).max() < 0.06, name
        assert _area(a) == pytest.approx(_area(b), rel=0.01), name
        assert _soft_pixels(a) == pytest.approx(_soft_pixels(b), rel=0.15), name  # still as soft


def test_big_face_lips_still_stop_at_the_mouth_opening(big_face) -> None:
    landmarks, shape, feather = big_face
    m = face_region_masks(landmarks, shape, feather=feather)
    mouth = m.masks["mouth_inner"]
    lips = m.masks["upper_lip"] + m.masks["lower_lip"]
    assert (lips + mouth).max() <= 1.0 + 1e-6
    assert lips[mouth > 0.75].max() <= 0.25 + 1e-6
    assert np.all(m.masks["left_cheek"] <= m.masks["skin"] + 1e-6)


def test_big_face_cut_by_the_frame_keeps_its_coarse_samples(big_face) -> None:
    landmarks, shape, feather = big_face
    whole = face_region_masks(landmarks, shape, feather=feather)
    for cut in (int(np.mean(landmarks[:468, 0])), int(np.mean(landmarks[:468, 0])) + 1):  # both cell phases
        shifted = landmarks.copy()
        shifted[:, 0] -= cut
        m = face_region_masks(shifted, (shape[0], shape[1] - cut), feather=feather)
        assert m.box[0] == 0
        for name in ("skin", "nose", "upper_lip", "lower_lip", "left_cheek"):
            ref = whole.masks[name][:, cut - whole.box[0] :]
            np.testing.assert_allclose(m.masks[name][:, 30:], ref[:, 30:], atol=2e-3, err_msg=name)


# -- faces at and beyond the frame edge ------------------------------------------------------------


def test_landmarks_past_the_edge_give_the_clipped_part(astro_face, masks: RegionMasks) -> None:
    image, landmarks, (bx0, _, bx1, _) = astro_face
    cut = int((bx0 + bx1) / 2)  # half the face leaves the frame on the left
    crop = image[:, cut:]
    shifted = landmarks.copy()
    shifted[:, 0] -= cut
    m = face_region_masks(shifted, crop.shape)
    x0, y0, x1, y1 = m.box
    assert x0 == 0 and (y0, y1) == masks.box[1::2] and x1 == masks.box[2] - cut
    for name, mask in m.masks.items():
        assert mask.shape == (y1 - y0, x1 - x0), name
        assert np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1, name
        # Away from the frame edge (where the blur sees a border) the masks are the same pixels.
        ref = masks.masks[name][:, cut - masks.box[0] :]
        np.testing.assert_allclose(mask[:, 12:], ref[:, 12:], atol=2e-3, err_msg=name)
    assert _area(m.masks["right_eye"]) == 0  # the subject's right eye is image left: cut off
    assert _area(m.masks["left_eye"]) > 0.9 * _area(masks.masks["left_eye"])


def test_tracked_face_cut_by_the_frame(perception: Perception, astro_face) -> None:
    image, _, (bx0, _, bx1, _) = astro_face
    crop = np.ascontiguousarray(image[:, int((bx0 + bx1) / 2) - 20 :])
    faces = perception.tracker(static=True).process(crop)
    assert faces, "the tracker should still find a face cut in half"
    m = face_region_masks(faces[0].landmarks, crop.shape)
    x0, y0, x1, y1 = m.box
    assert x0 == 0 and faces[0].box[0] < 0
    for name, mask in m.masks.items():
        assert mask.shape == (y1 - y0, x1 - x0), name
        assert np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1, name
    for name in ("left_eye", "left_iris", "left_brow", "upper_lip", "lower_lip", "skin", "nose"):
        assert _area(m.masks[name]) > 0, name


@pytest.mark.parametrize("offset", [(5000.0, 0.0), (-5000.0, 0.0), (0.0, 5000.0), (0.0, -5000.0)])
def test_face_fully_outside_gives_empty_masks(astro_face, offset: tuple[float, float]) -> None:
    image, landmarks, _ = astro_face
    moved = landmarks.copy()
    moved[:, :2] += offset
    m = face_region_masks(moved, image.shape)
    assert m.box[0] == m.box[2] and m.box[1] == m.box[3]
    for name in REGION_NAMES:
        assert m.masks[name].shape == (0, 0) and m.masks[name].dtype == np.float32
        assert not m.full(name, image.shape).any()
    assert np.array_equal(draw_regions(image, m), image)


# -- invalid input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((477, 3), np.float32),
        np.zeros((478,), np.float32),
        np.zeros((478, 4), np.float32),
        np.zeros((2, 478, 3), np.float32),
        "landmarks",
    ],
)
def test_wrong_landmark_shape_raises(bad) -> None:
    with pytest.raises(ValueError, match="landmarks"):
        face_region_masks(bad, (480, 640))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_landmarks_raise(astro_face, value: float) -> None:
    _, landmarks, _ = astro_face
    bad = landmarks.copy()
    bad[10, 1] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        face_region_masks(bad, (512, 512))


def test_bad_arguments_raise(astro_face) -> None:
    _, landmarks, _ = astro_face
    with pytest.raises(ValueError, match="unknown region"):
        face_region_masks(landmarks, (512, 512), regions=["lips"])
    with pytest.raises(ValueError, match="feather"):
        face_region_masks(landmarks, (512, 512), feather=-1.0)
    with pytest.raises(ValueError, match="feather"):
        face_region_masks(landmarks, (512, 512), feather=float("nan"))
    with pytest.raises(ValueError, match="image_shape"):
        face_region_masks(landmarks, (512,))
    with pytest.raises(ValueError, match="image_shape"):
        face_region_masks(landmarks, (-1, 512))


def test_region_index_tables_are_consistent() -> None:
    for side in (LEFT, RIGHT):
        assert len(side.eye_contour) == 16 and len(set(side.eye_contour)) == 16
        assert side.eye_upper[0] == side.eye_lower[0] and side.eye_upper[-1] == side.eye_lower[-1]
        assert len(side.brow_contour) == 10
        assert len(side.iris_ring) == 4
    assert LEFT.iris_centre == 473 and RIGHT.iris_centre == 468


# -- real faces (optional data set beside the repository) ------------------------------------------


@pytest.fixture(scope="module")
def real_faces(perception: Perception, shared_data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Frontal bare faces from the real data set, with their landmarks."""
    folder = shared_data / "makeup"
    paths = sorted(folder.glob("*/non-makeup/*.png")) + sorted(folder.glob("*/no_makeup/*.png"))[:4]
    out = []
    for path in paths:
        rgb = load_image(path)
        faces = perception.tracker(static=True).process(rgb)
        if faces:
            out.append((path.name, rgb, faces[0].landmarks))
    if not out:
        pytest.skip("no faces found in the real face data set")
    return out


@pytest.mark.shared_data
def test_real_faces(real_faces) -> None:
    for name, rgb, landmarks in real_faces:
        m = face_region_masks(landmarks, rgb.shape)
        c = {n: _centroid(v) for n, v in m.masks.items() if _area(v) > 0}
        assert set(c) == set(REGION_NAMES), name
        assert c["upper_lip"][1] < c["lower_lip"][1], name
        assert c["left_eye"][0] > c["right_eye"][0], name
        for side in ("left", "right"):
            assert np.all(m.masks[f"{side}_iris"] <= m.masks[f"{side}_eye"] + 1e-6), name
            assert c[f"{side}_brow"][1] < c[f"{side}_eye"][1] < c[f"{side}_cheek"][1], name
        for feature in ("upper_lip", "lower_lip", "left_eye", "right_eye", "left_brow", "right_brow"):
            assert _overlap(m.masks["skin"], m.masks[feature]) < 0.02, (name, feature)
