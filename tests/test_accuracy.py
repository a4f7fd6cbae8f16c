"""Accuracy of detection and landmarks on real, annotated photos.

The photos live beside the repository in ``../shared/data`` (see its README for the protocols)
and are never copied into the project; without them, or without the model files in the user
cache, these tests skip. Run with ``-s`` to see every measured figure.

Detection configuration: the full-range detector's own boxes at its default threshold (0.6).

- Detector boxes, not the tracker's landmark bounds: the README sets IoU >= 0.4 for detector
  boxes, and the claim under test is the detector's. Landmark bounds follow the mesh (brow line
  to chin, cheek to cheek), a different shape from hand boxes: on the CelebA portraits their
  median IoU with the hand boxes is 0.60 against 0.68 for detector boxes, and one portrait
  (000003) falls to 0.32. On the dlib group photos both fit (median 0.75 and 0.79).
- min_score 0.6 rather than 0.5: 0.6 is MediaPipe's default and what the product uses for
  photos. On CelebA and the dlib photos 0.5 found nothing more and nothing less; it only helps
  with faces of about 10 px in the model input (two WIDER group photos, not asserted here).

Landmarks are compared in 0-based pixels; 300-W ``.pts`` files count from 1 (see ``load_pts``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from facetory_cam.evaluation import (
    evaluate_detection,
    evaluate_landmarks,
    evaluate_presence,
    face_output_problems,
    load_celeba_bboxes,
    load_dlib_xml,
    load_pts,
    read_rgb,
    visible_landmark_error,
)
from facetory_cam.models.store import ModelError, ModelStore
from facetory_cam.vision.perception import Perception

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODELS = ("face_detection_full_range_sparse", "face_landmark", "iris_landmark")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".ppm"}

CELEBA_RECALL = 0.95
DLIB_RECALL = 0.85
DLIB_FP_PER_IMAGE = 0.2
HELEN_MEAN_NME = 0.05
HELEN_MAX_NME = 0.10
EDGE_CUT = 0.4  # share of the face (landmark bounds) pushed out of the frame
EDGE_MAX_ERROR = 0.05  # of the outer-eye-corner distance


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def perception():
    store = ModelStore()
    try:
        for name in MODELS:
            store.require(name)
    except ModelError as exc:
        pytest.skip(f"face models are not in the user cache: {exc}")
    p = Perception(store)
    yield p
    p.close()


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not (DATA / "README.md").is_file():
        pytest.skip("real face data not found at ../shared/data beside the repository")
    return DATA


@pytest.fixture(scope="module")
def full_detector(perception):
    return perception.detector("full")  # MediaPipe's default threshold for the full-range model


@pytest.fixture(scope="module")
def photo_tracker(perception):
    return perception.tracker(static=True, max_faces=32)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(DATA)} is missing from the shared face data")
    return path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --------------------------------------------------------------------------- detection


@pytest.mark.shared_data
def test_celeba_portraits_recall(data_dir: Path, full_detector) -> None:
    folder = _need(data_dir / "boxes" / "celeba_wild")
    boxes = load_celeba_bboxes(_need(folder / "list_bbox_celeba_000001-000017.txt"))
    photos = _images(folder)
    boxed = [(p.name, read_rgb(p), [boxes[p.name]]) for p in photos if p.name in boxes]
    unboxed = [(p.name, read_rgb(p)) for p in photos if p.name not in boxes]
    assert len(boxed) == 17, f"expected the 17 boxed CelebA photos, found {len(boxed)}"

    det = evaluate_detection(boxed, full_detector)
    found = evaluate_presence(unboxed, full_detector, expected=1)
    overall = (det.matched + found.at_least_one) / (det.n_faces + found.n_images)
    print(
        f"\nCelebA boxed: recall {det.recall:.1%} ({det.matched}/{det.n_faces}), "
        f"FP/image {det.fp_per_image:.2f}; unboxed: >=1 face in {found.at_least_one}/{found.n_images}, "
        f"exactly 1 in {found.exactly_expected}/{found.n_images}; overall recall {overall:.1%}"
    )
    assert det.recall >= CELEBA_RECALL, f"boxed recall {det.recall:.1%}, missed {det.misses}"
    missing = [n for n, c in found.counts.items() if c == 0]
    assert overall >= CELEBA_RECALL, f"recall {overall:.1%}; misses: boxed {det.misses}, unboxed {missing}"


@pytest.mark.shared_data
def test_dlib_group_photos_recall_and_false_positives(data_dir: Path, full_detector) -> None:
    folder = _need(data_dir / "boxes" / "dlib_groups")
    gt: dict[str, list] = {}
    for xml in ("training.xml", "testing.xml"):
        gt.update(load_dlib_xml(_need(folder / xml)))
    samples = [(name, read_rgb(_need(folder / name)), boxes) for name, boxes in sorted(gt.items())]
    report = evaluate_detection(samples, full_detector)
    print(
        f"\ndlib groups: recall {report.recall:.1%} ({report.matched}/{report.n_faces}), "
        f"FP/image {report.fp_per_image:.2f} over {report.n_images} images"
    )
    assert report.n_faces == 43
    assert report.recall >= DLIB_RECALL, f"recall {report.recall:.1%}; misses in {report.misses}"
    fp = {r.name: r.fp for r in report.per_image if r.fp}
    assert report.fp_per_image <= DLIB_FP_PER_IMAGE, f"{report.fp_per_image:.2f} FP/image: {fp}"


# --------------------------------------------------------------------------- landmarks


@pytest.mark.shared_data
def test_helen_landmark_nme(data_dir: Path, photo_tracker) -> None:
    folder = _need(data_dir / "landmarks68" / "helen_300w")
    pts = sorted(folder.glob("*.pts"))
    samples = [(p.stem, read_rgb(p.with_suffix(".jpg")), load_pts(p)) for p in pts]
    assert samples, "no .pts files in landmarks68/helen_300w"
    report = evaluate_landmarks(samples, photo_tracker)
    as_stored = evaluate_landmarks([(n, im, gt + 1.0) for n, im, gt in samples], photo_tracker)
    table = ", ".join(f"{k} {v:.1%}" for k, v in sorted(report.per_image.items(), key=lambda kv: -kv[1]))
    print(
        f"\nHELEN NME: mean {report.mean_nme:.2%}, max {report.max_nme:.2%} over {len(report.per_image)} "
        f"images (.pts values as stored, 1-based: mean {as_stored.mean_nme:.2%}, "
        f"max {as_stored.max_nme:.2%}); not found: {report.failures}\n  {table}"
    )
    assert not report.failures, f"annotated face not found in {report.failures}"
    assert report.mean_nme <= HELEN_MEAN_NME, f"mean NME {report.mean_nme:.2%}: {table}"
    assert report.max_nme < HELEN_MAX_NME, f"an image is far off: {table}"


# --------------------------------------------------------------------------- hard cases


@pytest.fixture(scope="module")
def hard_case_results(data_dir: Path, photo_tracker) -> dict[str, tuple[tuple[int, ...], object]]:
    """Tracker output (or the exception it raised) for every image under hard_cases/."""
    folder = _need(data_dir / "hard_cases")
    results: dict[str, tuple[tuple[int, ...], object]] = {}
    for path in _images(folder):
        key = path.relative_to(folder).as_posix()
        try:
            image = read_rgb(path)
            results[key] = (image.shape, photo_tracker.process(image))
        except Exception as exc:  # collected so that one report lists every crash
            results[key] = ((), exc)
    if not results:
        pytest.skip("hard_cases/ holds no images")
    return results


@pytest.mark.shared_data
def test_hard_cases_do_not_crash(hard_case_results) -> None:
    crashed = {k: repr(v) for k, (_, v) in hard_case_results.items() if isinstance(v, Exception)}
    assert not crashed, f"tracker raised on: {crashed}"


@pytest.mark.shared_data
def test_hard_cases_output_is_sensible(hard_case_results) -> None:
    problems: dict[str, list[str]] = {}
    with_face: Counter[str] = Counter()
    n_faces: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for key, (shape, faces) in hard_case_results.items():
        if isinstance(faces, Exception):
            continue  # reported by test_hard_cases_do_not_crash
        folder = key.split("/")[0]
        total[folder] += 1
        with_face[folder] += bool(faces)
        n_faces[folder] += len(faces)
        found = face_output_problems(faces, shape, margin=0.5)
        if found:
            problems[key] = found
    summary = ", ".join(f"{f} {with_face[f]}/{total[f]} ({n_faces[f]} faces)" for f in sorted(total))
    empty = sorted(k for k, (_, v) in hard_case_results.items() if isinstance(v, list) and not v)
    print(f"\nhard cases with >=1 face: {summary}; none found in {empty}")
    assert not problems, f"implausible output: {problems}"


@pytest.mark.shared_data
def test_rotated_photos_find_a_face(hard_case_results) -> None:
    rotated = {k: v for k, (_, v) in hard_case_results.items() if k.startswith("rotation/")}
    if not rotated:
        pytest.skip("hard_cases/rotation holds no images")
    missed = [k for k, faces in rotated.items() if not isinstance(faces, list) or not faces]
    assert not missed, f"no face found in {missed}"


# --------------------------------------------------------------------------- frame edge


def _cut(image: np.ndarray, box: tuple[float, float, float, float], side: str, share: float):
    """The image with ``share`` of the box pushed out past one side; returns (crop, crop origin)."""
    x0, y0, x1, y1 = box
    if side == "left":
        c = round(x0 + share * (x1 - x0))
        return image[:, c:], (c, 0)
    if side == "right":
        return image[:, : round(x1 - share * (x1 - x0))], (0, 0)
    if side == "top":
        c = round(y0 + share * (y1 - y0))
        return image[c:], (0, c)
    return image[: round(y1 - share * (y1 - y0))], (0, 0)


@pytest.fixture(scope="module")
def astronaut_reference(perception):
    from skimage import data as skdata

    image = np.ascontiguousarray(skdata.astronaut())
    faces = perception.tracker(static=True, max_faces=4).process(image)
    assert len(faces) == 1, f"expected one face in astronaut(), found {len(faces)}"
    return image, faces[0]


# Faces cut by the frame (static mode): with 40% of the face's landmark box cut off on the left
# or top the full-range detector scores below its threshold, and the tracker's fallback to the
# short-range detector finds the face.


@pytest.mark.parametrize(
    "side",
    [
        "left",
        "right",
        "top",
        "bottom",
    ],
)
def test_face_cut_by_frame_edge(perception, astronaut_reference, side: str) -> None:
    """A portrait with ~40% of the face outside the frame: a face is still found, and the points
    still inside the frame land where the uncut photo put them."""
    image, ref = astronaut_reference
    crop, (ox, oy) = _cut(image, ref.box, side, EDGE_CUT)
    crop = np.ascontiguousarray(crop)
    ref_pts = ref.landmarks[:, :2] - np.array([ox, oy], dtype=np.float32)
    h, w = crop.shape[:2]
    visible = (ref_pts[:, 0] >= 0) & (ref_pts[:, 0] < w) & (ref_pts[:, 1] >= 0) & (ref_pts[:, 1] < h)

    faces = perception.tracker(static=True, max_faces=4).process(crop)
    assert faces, f"no face found with {EDGE_CUT:.0%} of the face cut off on the {side}"
    error = visible_landmark_error(faces[0].landmarks, ref_pts, visible)
    print(f"\nedge cut {side}: {visible.mean():.0%} of points visible, error {error:.2%} of eye distance")
    assert error < EDGE_MAX_ERROR, f"visible points moved by {error:.1%} of the eye distance ({side} cut)"
