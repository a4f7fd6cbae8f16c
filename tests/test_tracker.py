"""Tracking behaviour on real faces: stability, lag, detector gating, track lifecycle."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from facetory_cam.vision.tracker import SmoothingParams

FPS = 30.0
SMOOTH = SmoothingParams(min_cutoff=0.05, beta=80.0)  # the shipped defaults (config/default.toml)


def _defaults() -> SmoothingParams:
    from facetory_cam.config import Settings

    s = Settings().smoothing
    return SmoothingParams(s.min_cutoff, s.beta, s.d_cutoff)


@pytest.fixture(scope="module")
def face_tile(astronaut) -> np.ndarray:
    """The astronaut's head and shoulders, scaled so the face is ~300 px wide, as on a webcam."""
    return cv2.resize(astronaut[0:260, 100:350], (600, 624), interpolation=cv2.INTER_CUBIC)


def webcam_frame(
    tile: np.ndarray, dx: float, rng: np.random.Generator, sigma: float = 4.0, x0: float = 340.0
) -> np.ndarray:
    """A 1280x720 frame with the tile shifted by dx px (sub-pixel) and fresh sensor noise."""
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    m = np.float32([[1, 0, x0 + dx], [0, 1, 60]])
    cv2.warpAffine(tile, m, (1280, 720), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    noisy = canvas.astype(np.float32) + rng.normal(0.0, sigma, canvas.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_defaults_are_the_tested_parameters() -> None:
    assert _defaults() == SMOOTH


def test_still_face_jitter_below_0_3_px(perception, face_tile) -> None:
    rng = np.random.default_rng(0)
    tracker = perception.tracker(smoothing=SMOOTH)
    pts = []
    for i in range(100):
        faces = tracker.process(webcam_frame(face_tile, 0.0, rng), i / FPS)
        assert len(faces) == 1 and faces[0].landmarks.shape == (478, 3)
        pts.append(faces[0].landmarks[:, :2])
    arr = np.asarray(pts)
    rms = float(np.sqrt(((arr - arr.mean(0)) ** 2).sum(-1).mean()))
    assert rms <= 0.3, f"jitter {rms:.3f} px RMS"
    # the filter is doing the work: the raw landmarks jitter more
    raw = perception.tracker(smoothing=None)
    rng = np.random.default_rng(0)
    arr_raw = np.asarray(
        [raw.process(webcam_frame(face_tile, 0.0, rng), i / FPS)[0].landmarks[:, :2] for i in range(40)]
    )
    rms_raw = float(np.sqrt(((arr_raw - arr_raw.mean(0)) ** 2).sum(-1).mean()))
    assert rms < rms_raw


def test_moving_face_lags_less_than_one_frame(perception, face_tile) -> None:
    speed = 200.0  # px/s
    rng = np.random.default_rng(1)
    tracker = perception.tracker(smoothing=SMOOTH)
    lags = []
    ref = None
    for i in range(60):
        dx = -150.0 + speed * i / FPS
        lm = tracker.process(webcam_frame(face_tile, dx, rng), i / FPS)[0].landmarks
        x = float(lm[:468, 0].mean())
        if ref is None:
            ref = x - dx
        lags.append(ref + dx - x)
    lag_frames = float(np.mean(lags[15:])) / (speed / FPS)
    assert abs(lag_frames) < 1.0, f"lag {lag_frames:.2f} frames"


def test_detector_runs_only_when_needed(perception, face_tile) -> None:
    rng = np.random.default_rng(2)
    frames = [webcam_frame(face_tile, 0.0, rng) for _ in range(30)]
    full = perception.tracker(max_faces=1, detect_period=15)
    for i, f in enumerate(frames):
        full.process(f, i / FPS)
    assert full.detector_runs == 1  # max_faces reached: never again
    room = perception.tracker(max_faces=4, detect_period=15)
    for i, f in enumerate(frames):
        room.process(f, i / FPS)
    assert room.detector_runs == 2  # looks for newcomers every 15 frames


def test_track_ids_are_stable_and_lost_faces_leave(perception, face_tile) -> None:
    rng = np.random.default_rng(3)
    tracker = perception.tracker(smoothing=SMOOTH)
    ids = [tracker.process(webcam_frame(face_tile, 3.0 * i, rng), i / FPS)[0].track_id for i in range(10)]
    assert len(set(ids)) == 1
    blank = np.full((720, 1280, 3), 90, np.uint8)
    assert tracker.process(blank, 10 / FPS) == []
    back = tracker.process(webcam_frame(face_tile, 0.0, rng), 11 / FPS)
    assert len(back) == 1 and back[0].track_id != ids[0]


def test_two_faces_two_tracks(perception, face_tile) -> None:
    small = cv2.resize(face_tile, (300, 312))
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[200:512, 150:450] = small
    frame[200:512, 800:1100] = small
    tracker = perception.tracker(max_faces=4, detector="full")
    faces = tracker.process(frame, 0.0)
    assert len(faces) == 2
    assert len({f.track_id for f in faces}) == 2
    xs = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert xs[0] < 450 < 800 < xs[1]
    one = perception.tracker(max_faces=1, detector="full")
    assert len(one.process(frame, 0.0)) == 1


def test_timestamps_must_increase(perception, face_tile) -> None:
    rng = np.random.default_rng(4)
    tracker = perception.tracker()
    tracker.process(webcam_frame(face_tile, 0.0, rng), 1.0)
    with pytest.raises(ValueError, match="not after"):
        tracker.process(webcam_frame(face_tile, 0.0, rng), 1.0)


def test_static_mode_orders_faces_and_finds_sideways_faces(perception, astronaut) -> None:
    big = cv2.resize(astronaut, (1024, 1024))
    canvas = np.full((1024, 1536, 3), 120, np.uint8)
    canvas[:, :1024] = big
    canvas[400:912, 1024:1536] = cv2.resize(astronaut, (512, 512))
    faces = perception.tracker(static=True, max_faces=8).process(canvas)
    assert [f.track_id for f in faces] == list(range(len(faces)))
    assert len(faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas[0] > areas[1]
    upright = perception.tracker(static=True).process(astronaut)[0]
    side = perception.tracker(static=True).process(np.ascontiguousarray(np.rot90(astronaut)))
    assert len(side) == 1
    # rot90 (counter-clockwise) maps (x, y) -> (y, W - 1 - x)
    expected = np.stack([upright.landmarks[:, 1], astronaut.shape[1] - 1 - upright.landmarks[:, 0]], axis=1)
    iod = float(np.linalg.norm(upright.landmarks[33, :2] - upright.landmarks[263, :2]))
    err = float(np.linalg.norm(side[0].landmarks[:, :2] - expected, axis=1).mean())
    assert err < 0.05 * iod


def test_rejects_bad_frames(perception) -> None:
    tracker = perception.tracker()
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.process(np.zeros((10, 10), np.uint8), 0.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.process(np.zeros((10, 10, 3), np.float32), 0.0)


def test_tracker_from_settings(perception, face_tile) -> None:
    from facetory_cam.config import load_settings

    settings = load_settings(
        overrides={"tracker": {"max_faces": 1, "detect_period": 5}, "smoothing": {"enabled": False}}
    )
    tracker = perception.tracker_from_settings(settings)
    assert tracker.max_faces == 1 and tracker.detect_period == 5 and tracker.smoothing is None
    assert tracker.detect_async  # the shipped default for live streams
    rng = np.random.default_rng(5)
    arrived = None
    for i in range(10):  # the detection runs on a worker: the face joins within a few frames
        faces = tracker.process(webcam_frame(face_tile, 0.0, rng), i / FPS)
        if faces:
            arrived = i
            break
        time.sleep(0.02)
    assert arrived is not None and 1 <= arrived <= 5
    assert len(faces) == 1 and faces[0].landmarks.shape == (478, 3)
    tracker.close()
    static = perception.tracker_from_settings(settings, static=True)
    assert not static.detect_async
    assert len(static.process(webcam_frame(face_tile, 0.0, rng))) == 1


def test_tiled_detection_finds_a_crowd(perception, shared_data) -> None:
    from facetory_cam.bench import video_frames
    from facetory_cam.vision.detector import detect_tiled, tile_origins
    from facetory_cam.vision.geometry import iou

    assert tile_origins(1920, 1080, 3, 2) == [
        (0, 0, 768, 617),
        (576, 0, 768, 617),
        (1152, 0, 768, 617),
        (0, 463, 768, 617),
        (576, 463, 768, 617),
        (1152, 463, 768, 617),
    ]
    frame = next(video_frames(shared_data / "videos" / "crowd_1080p.mp4", 1))
    detector = perception.detector("full")
    whole = detector.detect([frame])[0]
    tiled = detect_tiled(detector, [frame], (3, 2))[0]
    assert len(whole) <= 3 and len(tiled) >= 6  # about eight people walk towards the camera
    assert all(iou(a.box, b.box) < 0.3 for i, a in enumerate(tiled) for b in tiled[i + 1 :])  # each face once
    assert all(20 <= d.box[2] - d.box[0] <= 200 for d in tiled)


class _CountingBackend:
    """Wraps a model session and records the batch size of every call."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.model_name = inner.model_name
        self.batches: list[int] = []

    def run(self, batch: np.ndarray):
        self.batches.append(int(batch.shape[0]))
        return self.inner.run(batch)

    def close(self) -> None:
        pass


def test_sources_are_tracked_apart_with_one_model_call_per_stage(perception, face_tile) -> None:
    rng = np.random.default_rng(7)
    tracker = perception.tracker(max_faces=2)
    mesh = _CountingBackend(tracker.mesh.backend)
    iris = _CountingBackend(tracker.iris.backend)
    tracker.mesh.backend, tracker.iris.backend = mesh, iris
    left = [webcam_frame(face_tile, 0.0, rng, x0=100.0) for _ in range(5)]
    right = [webcam_frame(face_tile, 0.0, rng, x0=600.0) for _ in range(5)]
    alone = perception.tracker(max_faces=2)
    for i in range(5):
        a, b = tracker.process_many([left[i], right[i]], [i / FPS, i / FPS], ["cam-a", "cam-b"])
        assert len(a) == 1 and len(b) == 1
        assert a[0].track_id != b[0].track_id
        assert a[0].box[0] < 500 < b[0].box[0]  # each face stays with its own source
        ref = alone.process(right[i], i / FPS)
        # Batched and alone give the same landmarks (smoothing state included).
        np.testing.assert_allclose(b[0].landmarks[:, :2], ref[0].landmarks[:, :2], atol=0.05)
    # From the second frame on: one mesh call with both faces, one iris call with four eyes.
    assert mesh.batches[-4:] == [2, 2, 2, 2]
    assert iris.batches[-4:] == [4, 4, 4, 4]
    tracker.reset("cam-a")
    a, b = tracker.process_many([left[0], right[0]], [1.0, 1.0], ["cam-a", "cam-b"])
    assert a[0].track_id > b[0].track_id  # cam-a starts a new track, cam-b keeps its own
    with pytest.raises(ValueError, match="one frame per source"):
        tracker.process_many([left[0], right[0]], [2.0, 2.0], ["cam-a", "cam-a"])


def test_small_faces_get_an_estimated_iris(perception, face_tile) -> None:
    from facetory_cam.vision.landmarks import approximate_iris

    rng = np.random.default_rng(9)
    frame = webcam_frame(face_tile, 0.0, rng)
    refined = perception.tracker().process(frame, 0.0)[0].landmarks
    estimated = approximate_iris(refined[:468])
    np.testing.assert_array_equal(estimated[:468], refined[:468])
    for centre, ring, corners in ((468, slice(469, 473), (33, 133)), (473, slice(474, 478), (362, 263))):
        eye = float(np.linalg.norm(refined[corners[0], :2] - refined[corners[1], :2]))
        assert np.linalg.norm(estimated[centre, :2] - refined[centre, :2]) < 0.12 * eye
        r_est = np.linalg.norm(estimated[ring, :2] - estimated[centre, :2], axis=1).mean()
        r_ref = np.linalg.norm(refined[ring, :2] - refined[centre, :2], axis=1).mean()
        assert 0.7 < r_est / r_ref < 1.4
    tracker = perception.tracker(iris_min_face_px=10_000)  # every face counts as small
    iris = _CountingBackend(tracker.iris.backend)
    tracker.iris.backend = iris
    faces = tracker.process(frame, 0.0)
    assert faces[0].landmarks.shape == (478, 3) and iris.batches == []
