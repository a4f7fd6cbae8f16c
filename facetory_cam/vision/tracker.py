"""Multi-face tracking in the manner of MediaPipe's face mesh graph.

The detector runs only when fewer than ``max_faces`` are tracked: every frame
while nothing is tracked, every ``detect_period`` frames otherwise to pick up
newcomers. Each tracked face is re-cropped from its previous landmarks, dropped
when the mesh's presence score falls below threshold, refined to 478 points with
the iris model, and smoothed with a One Euro filter. All crops of a frame go to
each model in one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from facetory_cam.vision.detector import Detection, FaceDetector, detect_tiled
from facetory_cam.vision.geometry import Roi, iou
from facetory_cam.vision.landmarks import (
    FaceMesh,
    IrisRefiner,
    approximate_iris,
    roi_from_detection,
    roi_from_landmarks,
)
from facetory_cam.vision.smoothing import OneEuroFilter

log = logging.getLogger(__name__)

DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class Face:
    """One tracked face in image pixels."""

    track_id: int
    score: float  # detector confidence when the track started
    presence: float  # face-mesh presence probability this frame
    box: tuple[float, float, float, float]  # bounds of the landmarks: x0, y0, x1, y1
    landmarks: np.ndarray  # (478, 3) float32, or (468, 3) without iris refinement

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class SmoothingParams:
    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0


@dataclass
class _Track:
    track_id: int
    roi: Roi
    score: float
    box: tuple[float, float, float, float]  # last landmark bounds (detection box until then)
    smoother: OneEuroFilter | None = field(default=None, repr=False)


def landmark_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    pts = landmarks[:468, :2]
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _rotate(image: np.ndarray, quarter_turns: int) -> np.ndarray:
    codes = {1: cv2.ROTATE_90_CLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(image, codes[quarter_turns])


def _unrotate_detection(det: Detection, quarter_turns: int, width: int, height: int) -> Detection:
    """Map a detection found on the image rotated clockwise by quarter_turns x 90 degrees back."""

    def back(p: np.ndarray) -> np.ndarray:
        x, y = p[..., 0], p[..., 1]
        if quarter_turns == 1:  # rotated: x' = H - 1 - y, y' = x
            return np.stack([y, height - 1 - x], axis=-1)
        if quarter_turns == 2:
            return np.stack([width - 1 - x, height - 1 - y], axis=-1)
        return np.stack([width - 1 - y, x], axis=-1)

    corners = back(np.array([[det.box[0], det.box[1]], [det.box[2], det.box[3]]], dtype=np.float64))
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return Detection(
        (float(x0), float(y0), float(x1), float(y1)),
        det.score,
        back(det.keypoints.astype(np.float64)).astype(np.float32),
    )


@dataclass
class _SourceState:
    """What the tracker remembers about one source between its frames."""

    tracks: list[_Track] = field(default_factory=list)
    frame: int = 0
    last_detect: int = -(10**9)
    last_t: float | None = None


class FaceTracker:
    """Tracks faces across the frames of one or many sources (or finds them in one photo).

    Each source keeps its own tracks; ``process_many`` sends the crops of all sources
    to each model in one batch, so N cameras cost one model call per stage, not N.
    Track ids are unique across sources.
    """

    def __init__(
        self,
        *,
        detector: FaceDetector,
        mesh: FaceMesh,
        fallback_detector: FaceDetector | None = None,
        iris: IrisRefiner | None,
        max_faces: int = 4,
        detect_period: int = 15,
        min_presence: float = 0.5,
        new_track_iou: float = 0.3,
        smoothing: SmoothingParams | None = None,
        static: bool = False,
        detect_grid: tuple[int, int] = (1, 1),
        detect_async: bool = False,
        iris_min_face_px: float = 0.0,
    ) -> None:
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        self.detector = detector
        self.fallback_detector = fallback_detector
        self.mesh = mesh
        self.iris = iris
        self.max_faces = max_faces
        self.detect_period = max(1, detect_period)
        self.min_presence = min_presence
        self.new_track_iou = new_track_iou
        self.smoothing = None if static else smoothing
        self.static = static
        self._states: dict[str, _SourceState] = {}
        self._next_id = 0
        self.detector_runs = 0
        self.detect_grid = detect_grid
        self.iris_min_face_px = iris_min_face_px  # smaller faces get an estimated iris, not the iris model
        # Live streams look for newcomers on a worker thread: a detection (tens of ms for a
        # tiled 1080p frame) then never stalls a frame; its faces join a frame or two later.
        self.detect_async = detect_async and not static
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[list[str], Future[list[list[Detection]]]] | None = None

    def close(self) -> None:
        """Stop the detection worker (if any); the tracker still works, synchronously."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending = None
        self.detect_async = False

    def _detect_live(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return detect_tiled(self.detector, images, self.detect_grid)

    def _detections(
        self, images: Sequence[np.ndarray], sources: Sequence[str], due: list[int]
    ) -> dict[int, list[Detection]]:
        """Detections to merge into this frame's candidates, by position in the call."""
        if self.static:
            if due:
                self.detector_runs += 1
            return {i: self._detect_static(images[i]) for i in due}
        if not self.detect_async:
            if not due:
                return {}
            self.detector_runs += 1
            return dict(zip(due, self._detect_live([images[i] for i in due])))
        found: dict[int, list[Detection]] = {}
        if self._pending is not None and self._pending[1].done():
            keys, future = self._pending
            self._pending = None
            try:
                result = future.result()
            except Exception as exc:  # a failed detection only delays newcomers
                log.error("face detection failed: %s", exc)
                result = []
            position = {key: i for i, key in enumerate(sources)}
            found = {position[k]: dets for k, dets in zip(keys, result) if k in position}
        if due and self._pending is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-detect")
            self.detector_runs += 1
            keys = [sources[i] for i in due]
            self._pending = (keys, self._pool.submit(self._detect_live, [images[i] for i in due]))
        return found

    def reset(self, source: str | None = None) -> None:
        """Forget the tracks of one source (all sources when None), e.g. after it reconnects."""
        if source is None:
            self._states.clear()
        else:
            self._states.pop(source, None)

    def _detect_static(self, image: np.ndarray) -> list[Detection]:
        dets = self.detector.detect([image])[0]
        if dets:
            return dets
        # Photos: a face that fills (or is cut by) the frame can score low with the full-range
        # model and well with the short-range one; and photos may be sideways.
        if self.fallback_detector is not None:
            dets = self.fallback_detector.detect([image])[0]
            if dets:
                return dets
        h, w = image.shape[:2]
        for turns in (1, 3, 2):
            found = self.detector.detect([_rotate(image, turns)])[0]
            if found:
                return [_unrotate_detection(d, turns, w, h) for d in found]
        return []

    def process(self, image: np.ndarray, timestamp: float | None = None, *, source: str = "0") -> list[Face]:
        """Faces in an RGB uint8 image; in tracking mode a source's timestamps (seconds) must increase."""
        return self.process_many([image], [timestamp], [source])[0]

    def process_many(
        self, images: Sequence[np.ndarray], timestamps: Sequence[float | None], sources: Sequence[str]
    ) -> list[list[Face]]:
        """Faces in one frame of each of several sources, with one model call per stage for all."""
        if not (len(images) == len(timestamps) == len(sources)):
            raise ValueError("images, timestamps and sources must have the same length")
        if len(set(sources)) != len(sources):
            raise ValueError("one frame per source per call")
        states: list[_SourceState] = []
        times: list[float] = []
        for image, timestamp, source in zip(images, timestamps, sources):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
            state = _SourceState() if self.static else self._states.setdefault(source, _SourceState())
            if timestamp is not None and not self.static:
                if state.last_t is not None and timestamp <= state.last_t:
                    raise ValueError(f"timestamp {timestamp} is not after the previous frame's {state.last_t}")
                state.last_t = timestamp
            times.append(state.frame / 30.0 if timestamp is None else timestamp)
            state.frame += 1
            states.append(state)

        # Detection, batched over the sources that need it.
        due = [
            i
            for i, st in enumerate(states)
            if len(st.tracks) < self.max_faces
            and (not st.tracks or self.static or st.frame - 1 - st.last_detect >= self.detect_period)
        ]
        found = self._detections(images, sources, due)
        for i in due:
            states[i].last_detect = states[i].frame - 1  # asked for, even when the answer comes later
        candidates: list[list[_Track]] = []
        for i, st in enumerate(states):
            cands = list(st.tracks)
            if i in found:
                boxes = [t.box for t in st.tracks]
                for det in found[i]:
                    if len(cands) >= self.max_faces:
                        break
                    if any(iou(det.box, b) > self.new_track_iou for b in boxes):
                        continue
                    cands.append(_Track(-1, roi_from_detection(det), det.score, det.box))
                    boxes.append(det.box)
            candidates.append(cands)

        flat = [(i, c) for i, cands in enumerate(candidates) for c in cands]
        results = self.mesh.run(list(images), [c.roi for _, c in flat], [i for i, _ in flat])
        # A new face gets a second pass from the mesh's own crop, which is tighter than the
        # detector's box: its first landmarks then match the ones tracking will produce.
        fresh = [k for k, (_, c) in enumerate(flat) if c.track_id < 0 and results[k].presence >= self.min_presence]
        if fresh:
            again = self.mesh.run(
                list(images), [roi_from_landmarks(results[k].landmarks) for k in fresh], [flat[k][0] for k in fresh]
            )
            for k, res in zip(fresh, again):
                results[k] = res

        kept: list[tuple[int, _Track, np.ndarray, float, tuple[float, float, float, float]]] = []
        for (i, cand), res in zip(flat, results):
            if res.presence < self.min_presence:
                continue
            box = landmark_box(res.landmarks)
            if any(k[0] == i and iou(box, k[4]) > DUPLICATE_IOU for k in kept):
                continue  # two crops converged on one face: keep the older track
            kept.append((i, cand, res.landmarks, res.presence, box))

        full = [k[2] for k in kept]
        if self.iris is not None and kept:
            big = []
            for n, (_, _, mesh, _, (x0, _, x1, _)) in enumerate(kept):
                if x1 - x0 >= self.iris_min_face_px:
                    big.append(n)
                else:
                    full[n] = approximate_iris(mesh)
            refined = self.iris.run(list(images), [kept[n][2] for n in big], [kept[n][0] for n in big])
            for n, lm in zip(big, refined):
                full[n] = lm

        faces: list[list[Face]] = [[] for _ in images]
        tracks: list[list[_Track]] = [[] for _ in images]
        for (i, track, raw_mesh, presence, box), raw in zip(kept, full):
            if track.track_id < 0:
                track.track_id = self._next_id
                self._next_id += 1
            track.roi = roi_from_landmarks(raw_mesh)
            track.box = box
            out = raw
            if self.smoothing is not None:
                if track.smoother is None:
                    p = self.smoothing
                    track.smoother = OneEuroFilter(min_cutoff=p.min_cutoff, beta=p.beta, d_cutoff=p.d_cutoff)
                size = max(track.roi.width / 1.5, 1.0)
                out = track.smoother(raw, times[i], scale=size).astype(np.float32)
            tracks[i].append(track)
            faces[i].append(Face(track.track_id, track.score, presence, landmark_box(out), out))
        for st, trs in zip(states, tracks):
            st.tracks = trs
        if self.static:
            for i, fs in enumerate(faces):
                fs.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                faces[i] = [Face(k, f.score, f.presence, f.box, f.landmarks) for k, f in enumerate(fs)]
        return faces
