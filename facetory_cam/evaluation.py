"""Accuracy measurements for face detection and landmarks against annotated photos.

Everything here takes paths, arrays or models as arguments; nothing knows where a data set
lives. The protocols follow the shared face data's README:

- Detection: predicted boxes are matched to ground-truth boxes greedily by IoU (best pair
  first, each box used once) at IoU >= 0.4; recall = matched / ground truth, false positives
  are counted per image.
- Landmarks: only the seven points with an unambiguous counterpart in the 478-point mesh are
  compared (outer and inner eye corners, nose tip, mouth corners) and the mean error is
  normalised by the ground truth's outer-eye-corner distance (NME).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels

# 68-point (iBUG 300-W) index -> 478-point mesh index. 68-pt 36 is the outer corner of the eye
# on the image's left (the subject's right eye), as is mesh 33; 45 and 263 are on the image's
# right. Mouth corners 48 / 54 are the image-left / image-right corners, as are 61 / 291.
MESH_FOR_68: dict[int, int] = {36: 33, 39: 133, 42: 362, 45: 263, 30: 1, 48: 61, 54: 291}
OUTER_EYE_68 = (36, 45)
OUTER_EYE_MESH = (33, 263)
DETECTION_IOU = 0.4


# --------------------------------------------------------------------------- loading


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as an RGB uint8 array (H, W, 3); raises ValueError when unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def load_pts(path: str | Path, *, one_based: bool = True) -> np.ndarray:
    """Points of an iBUG/300-W ``.pts`` file as a float64 (N, 2) array of (x, y) image pixels.

    300-W annotations were made in MATLAB and count pixels from 1 (iBUG's own tools and menpo
    subtract 1 on import); with ``one_based`` (the default) they are returned 0-based like
    every other coordinate in this project. Pass ``one_based=False`` for the values as stored.
    """
    text = Path(path).read_text()
    try:
        body = text[text.index("{") + 1 : text.index("}")]
    except ValueError as exc:
        raise ValueError(f"{path}: no '{{ ... }}' point block") from exc
    values = np.array(body.split(), dtype=np.float64)
    if values.size % 2:
        raise ValueError(f"{path}: odd number of coordinates")
    points = values.reshape(-1, 2)
    for line in text[: text.index("{")].splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "n_points" and int(value) != len(points):
            raise ValueError(f"{path}: header says {int(value)} points, found {len(points)}")
    return points - 1.0 if one_based else points


def load_ljson(path: str | Path, group: str = "LJSON") -> np.ndarray:
    """Points of a menpo ``.ljson`` landmark file as (N, 2) (x, y); the file stores (y, x)."""
    data = json.loads(Path(path).read_text())
    points = np.asarray(data["groups"][group]["landmarks"]["points"], dtype=np.float64)
    return points[:, ::-1].copy()


def _ltwh(x: float, y: float, w: float, h: float) -> Box:
    return (float(x), float(y), float(x + w), float(y + h))


def load_dlib_xml(path: str | Path, *, include_ignored: bool = False) -> dict[str, list[Box]]:
    """Face boxes of a dlib imglab XML file (``<box top left width height>``), per image file name."""
    root = ET.parse(path).getroot()
    out: dict[str, list[Box]] = {}
    for image in root.iter("image"):
        boxes = out.setdefault(image.attrib["file"], [])
        for box in image.iter("box"):
            if box.attrib.get("ignore", "0") not in ("0", "") and not include_ignored:
                continue
            a = box.attrib
            boxes.append(_ltwh(float(a["left"]), float(a["top"]), float(a["width"]), float(a["height"])))
    return out


def load_dlib_json(path: str | Path, *, include_ignored: bool = False) -> dict[str, list[Box]]:
    """Face boxes of the JSON copy of dlib's annotations: ``{file: {"faces": [{"box_ltwh": ...}]}}``."""
    data = json.loads(Path(path).read_text())
    out: dict[str, list[Box]] = {}
    for name, entry in data.items():
        out[name] = [
            _ltwh(*face["box_ltwh"]) for face in entry["faces"] if include_ignored or not face.get("ignore", False)
        ]
    return out


def load_celeba_bboxes(path: str | Path) -> dict[str, Box]:
    """CelebA ``list_bbox_celeba*.txt`` (``image_id x_1 y_1 width height``), one box per image."""
    out: dict[str, Box] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] == "image_id":
            continue
        out[parts[0]] = _ltwh(*(float(v) for v in parts[1:]))
    return out


def load_wider_gt(path: str | Path, *, include_invalid: bool = False) -> dict[str, list[Box]]:
    """WIDER FACE ``bbx_gt`` text (file, count, then ``x y w h blur expr illum invalid occl pose`` rows)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    out: dict[str, list[Box]] = {}
    i = 0
    while i < len(lines):
        name, count = lines[i], int(lines[i + 1])
        rows = lines[i + 2 : i + 2 + max(count, 1)]  # an image without faces still has one all-zero row
        i += 2 + max(count, 1)
        boxes: list[Box] = []
        for row in rows:
            v = [float(t) for t in row.split()]
            invalid = len(v) > 7 and v[7] != 0
            if v[2] > 0 and v[3] > 0 and (include_invalid or not invalid):
                boxes.append(_ltwh(*v[:4]))
        out[name] = boxes
    return out


# --------------------------------------------------------------------------- boxes


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def points_box(points: np.ndarray) -> Box:
    """Axis-aligned bounds of (N, >=2) points."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def match_boxes(pred: Sequence[Box], gt: Sequence[Box], iou_thresh: float = DETECTION_IOU) -> tuple[int, int, int]:
    """Greedy one-to-one matching, highest IoU first; returns (true pos., false pos., false neg.)."""
    pairs = sorted(
        ((box_iou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gt)),
        key=lambda t: -t[0],
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    for value, i, j in pairs:
        if value < iou_thresh:
            break
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
    tp = len(used_p)
    return tp, len(pred) - tp, len(gt) - tp


# --------------------------------------------------------------------------- landmarks


def landmark_nme(pred478: np.ndarray, gt68: np.ndarray) -> float:
    """Mean error of the seven shared points, divided by the ground truth's outer-eye distance."""
    pred = np.asarray(pred478, dtype=np.float64)[:, :2]
    gt = np.asarray(gt68, dtype=np.float64)[:, :2]
    if pred.shape[0] < 468 or gt.shape[0] != 68:
        raise ValueError(f"expected >=468 mesh and 68 ground-truth points, got {pred.shape} and {gt.shape}")
    idx68 = list(MESH_FOR_68)
    idx_mesh = list(MESH_FOR_68.values())
    norm = float(np.linalg.norm(gt[OUTER_EYE_68[0]] - gt[OUTER_EYE_68[1]]))
    if norm <= 0:
        raise ValueError("ground-truth outer eye corners coincide")
    return float(np.linalg.norm(pred[idx_mesh] - gt[idx68], axis=1).mean() / norm)


def visible_landmark_error(pred: np.ndarray, ref: np.ndarray, visible: np.ndarray) -> float:
    """Mean distance between the ``visible`` points of two meshes, over the reference's outer-eye distance."""
    p = np.asarray(pred, dtype=np.float64)[:, :2]
    r = np.asarray(ref, dtype=np.float64)[:, :2]
    mask = np.asarray(visible, dtype=bool)
    if not mask.any():
        raise ValueError("no visible points to compare")
    norm = float(np.linalg.norm(r[OUTER_EYE_MESH[0]] - r[OUTER_EYE_MESH[1]]))
    return float(np.linalg.norm(p[mask] - r[mask], axis=1).mean() / norm)


# --------------------------------------------------------------------------- models


@runtime_checkable
class _BoxDetector(Protocol):
    def detect(self, images: list[np.ndarray]) -> list[list]: ...


@runtime_checkable
class _FaceFinder(Protocol):
    def process(self, image: np.ndarray, timestamp: float | None = None) -> list: ...


BoxSource = _BoxDetector | _FaceFinder | Callable[[np.ndarray], Sequence[Box]]


def boxes_from(model: BoxSource, image: np.ndarray) -> list[Box]:
    """Face boxes in an image from a FaceDetector (``.detect``), a FaceTracker (``.process``,
    landmark bounds) or any callable returning boxes."""
    if isinstance(model, _BoxDetector):
        return [tuple(d.box) for d in model.detect([image])[0]]
    if isinstance(model, _FaceFinder):
        return [tuple(f.box) for f in model.process(image)]
    return [tuple(b) for b in model(image)]


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ImageDetection:
    name: str
    n_gt: int
    n_pred: int
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class DetectionReport:
    recall: float
    fp_per_image: float
    n_images: int
    n_faces: int
    per_image: list[ImageDetection] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return sum(r.tp for r in self.per_image)

    @property
    def misses(self) -> list[str]:
        return [r.name for r in self.per_image if r.fn]


@dataclass(frozen=True)
class PresenceReport:
    """For images known to hold ``expected`` faces but without boxes: how often faces were found."""

    n_images: int
    expected: int
    at_least_one: int
    exactly_expected: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return self.at_least_one / self.n_images if self.n_images else 0.0


@dataclass(frozen=True)
class LandmarkReport:
    mean_nme: float
    per_image: dict[str, float]
    failures: list[str]  # images whose annotated face was not found

    @property
    def max_nme(self) -> float:
        return max(self.per_image.values()) if self.per_image else float("nan")


def evaluate_detection(
    samples: Iterable[tuple[str, np.ndarray, Sequence[Box]]],
    model: BoxSource,
    *,
    iou_thresh: float = DETECTION_IOU,
) -> DetectionReport:
    """Recall and false positives per image over (name, RGB image, ground-truth boxes) samples."""
    rows: list[ImageDetection] = []
    for name, image, gt in samples:
        pred = boxes_from(model, image)
        tp, fp, fn = match_boxes(pred, list(gt), iou_thresh)
        rows.append(ImageDetection(name, len(gt), len(pred), tp, fp, fn))
    n_faces = sum(r.n_gt for r in rows)
    recall = sum(r.tp for r in rows) / n_faces if n_faces else float("nan")
    fp_rate = sum(r.fp for r in rows) / len(rows) if rows else float("nan")
    return DetectionReport(recall, fp_rate, len(rows), n_faces, rows)


def evaluate_presence(
    samples: Iterable[tuple[str, np.ndarray]], model: BoxSource, *, expected: int = 1
) -> PresenceReport:
    """Counts faces found in images that hold ``expected`` faces but have no boxes."""
    counts = {name: len(boxes_from(model, image)) for name, image in samples}
    return PresenceReport(
        n_images=len(counts),
        expected=expected,
        at_least_one=sum(c >= 1 for c in counts.values()),
        exactly_expected=sum(c == expected for c in counts.values()),
        counts=counts,
    )


def evaluate_landmarks(
    samples: Iterable[tuple[str, np.ndarray, np.ndarray]],
    tracker: _FaceFinder,
    *,
    min_iou: float = 0.3,
) -> LandmarkReport:
    """NME per (name, RGB image, 68 ground-truth points) sample.

    In photos with several people the face compared is the one whose landmark bounds overlap
    the ground-truth points' bounds most; when none overlaps by ``min_iou`` the image counts as
    a failure and is left out of the mean.
    """
    per_image: dict[str, float] = {}
    failures: list[str] = []
    for name, image, gt in samples:
        target = points_box(gt)
        faces = tracker.process(image)
        scored = [(box_iou(f.box, target), f) for f in faces]
        best = max(scored, key=lambda t: t[0], default=None)
        if best is None or best[0] < min_iou:
            failures.append(name)
            continue
        per_image[name] = landmark_nme(best[1].landmarks, gt)
    mean = float(np.mean(list(per_image.values()))) if per_image else float("nan")
    return LandmarkReport(mean, per_image, failures)


# --------------------------------------------------------------------------- sanity


def face_output_problems(faces: Sequence, image_shape: tuple[int, ...], *, margin: float = 0.5) -> list[str]:
    """What is wrong with a tracker's output for one image (empty when it looks sensible).

    Checks: a list; landmarks finite and within the image grown by ``margin`` of its size on
    every side; faces ordered by landmark-box area, largest first.
    """
    if not isinstance(faces, list):
        return [f"expected a list, got {type(faces).__name__}"]
    h, w = image_shape[:2]
    problems: list[str] = []
    for i, face in enumerate(faces):
        lm = np.asarray(face.landmarks, dtype=np.float64)
        if not np.isfinite(lm).all():
            problems.append(f"face {i}: non-finite landmarks")
            continue
        x, y = lm[:, 0], lm[:, 1]
        outside_x = x.min() < -margin * w or x.max() > (1 + margin) * w
        outside_y = y.min() < -margin * h or y.max() > (1 + margin) * h
        if outside_x or outside_y:
            problems.append(f"face {i}: landmarks outside the image grown by {margin:.0%}")
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    if any(a < b for a, b in zip(areas, areas[1:], strict=False)):
        problems.append(f"faces not sorted largest first: areas {[round(a) for a in areas]}")
    return problems
