"""Opens the models a pipeline needs, once, on the configured backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from facetory_cam.config import Settings
from facetory_cam.interfaces import InferenceBackend
from facetory_cam.models.backends import open_backend
from facetory_cam.models.store import ModelStore
from facetory_cam.vision.detector import FULL_RANGE, SHORT_RANGE, DetectorConfig, FaceDetector
from facetory_cam.vision.landmarks import FaceMesh, IrisRefiner
from facetory_cam.vision.segmentation import GENERAL, LANDSCAPE, PersonSegmenter
from facetory_cam.vision.tracker import FaceTracker, SmoothingParams

DETECTORS: dict[str, DetectorConfig] = {"short": SHORT_RANGE, "full": FULL_RANGE}


@dataclass
class Perception:
    """Model sessions shared by the trackers of one process (one owner thread)."""

    store: ModelStore
    backend: str = "auto"
    threads: int = 1
    _sessions: dict[str, InferenceBackend] = field(default_factory=dict, repr=False)

    def session(self, model: str) -> InferenceBackend:
        if model not in self._sessions:
            self._sessions[model] = open_backend(self.store, model, prefer=self.backend, threads=self.threads)
        return self._sessions[model]

    def detector(self, kind: str = "short", min_score: float | None = None) -> FaceDetector:
        if kind not in DETECTORS:
            raise ValueError(f"unknown detector {kind!r}; choose short or full")
        cfg = DETECTORS[kind]
        return FaceDetector(self.session(cfg.model), cfg, min_score=min_score)

    def mesh(self) -> FaceMesh:
        return FaceMesh(self.session("face_landmark"))

    def iris(self) -> IrisRefiner:
        return IrisRefiner(self.session("iris_landmark"))

    def segmenter(self, *, landscape: bool) -> PersonSegmenter:
        if landscape:
            return PersonSegmenter(self.session(LANDSCAPE), width=256, height=144)
        return PersonSegmenter(self.session(GENERAL), width=256, height=256)

    def tracker(
        self,
        *,
        static: bool = False,
        max_faces: int = 4,
        detector: str | None = None,
        min_detection_score: float | None = None,
        detect_period: int = 15,
        min_presence: float = 0.5,
        new_track_iou: float = 0.3,
        refine_iris: bool = True,
        smoothing: SmoothingParams | None = None,
        detect_grid: tuple[int, int] = (1, 1),
        detect_async: bool = False,
        iris_min_face_px: float = 0.0,
    ) -> FaceTracker:
        """A tracker for one source; photos (static) use the full-range detector, then short-range."""
        kind = detector or ("full" if static else "short")
        fallback = self.detector("short", min_detection_score) if static and kind == "full" else None
        return FaceTracker(
            detector=self.detector(kind, min_detection_score),
            fallback_detector=fallback,
            mesh=self.mesh(),
            iris=self.iris() if refine_iris else None,
            max_faces=max_faces,
            detect_period=detect_period,
            min_presence=min_presence,
            new_track_iou=new_track_iou,
            smoothing=smoothing,
            static=static,
            detect_grid=detect_grid,
            detect_async=detect_async,
            iris_min_face_px=iris_min_face_px,
        )

    def tracker_from_settings(self, settings: Settings, *, static: bool = False, live: bool = True) -> FaceTracker:
        """A tracker configured from the ``tracker`` and ``smoothing`` sections of the settings.

        ``live=False`` (files processed offline) keeps detection on the calling thread, so every
        frame sees the faces the detector finds in it and results do not depend on timing.
        """
        t, sm = settings.tracker, settings.smoothing
        return self.tracker(
            static=static,
            max_faces=t.max_faces,
            detector=None if static else t.detector,
            min_detection_score=t.min_detection_score,
            detect_period=t.detect_period,
            min_presence=t.min_presence,
            new_track_iou=t.iou_new_track,
            refine_iris=t.refine_iris,
            smoothing=SmoothingParams(sm.min_cutoff, sm.beta, sm.d_cutoff) if sm.enabled else None,
            detect_grid=(t.detect_tiles[0], t.detect_tiles[1]),
            detect_async=t.detect_async and live and not static,
            iris_min_face_px=0.0 if static else t.iris_min_face_px,
        )

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()
        self._sessions.clear()
