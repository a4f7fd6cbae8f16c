"""Renderer quality on real faces: untouched stays untouched, colour lands, no flicker."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.bench import EVERY_LAYER_LOOK
from facetory_cam.looks.color import rgb_to_lab
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import parse_look
from facetory_cam.vision.masks import REGION_NAMES, face_region_masks, union_mask
from facetory_cam.vision.tracker import SmoothingParams
from tests.conftest import read_rgb

FULL_LOOK = EVERY_LAYER_LOOK
LIP_TARGET = "#a01828"


@pytest.fixture(scope="module")
def portraits(astronaut) -> list[np.ndarray]:
    images = [astronaut]
    from tests.conftest import SHARED_DATA

    folder = SHARED_DATA / "makeup" / "beautygan" / "no_makeup"
    if folder.is_dir():
        images += [read_rgb(p) for p in sorted(folder.glob("*.png"))[:4]]
    return images


@pytest.fixture(scope="module")
def detected(perception, portraits):
    tracker = perception.tracker(static=True, max_faces=1)
    return [(im, tracker.process(im)) for im in portraits]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_outside_the_masks_is_untouched(detected) -> None:
    renderer = LookRenderer(parse_look(FULL_LOOK))
    for image, faces in detected:
        assert faces
        out = renderer.render(image, faces)
        assert out.shape == image.shape and out.dtype == np.uint8
        inside = np.zeros(image.shape[:2], np.uint8)
        for face in faces:
            masks = face_region_masks(face.landmarks, image.shape[:2], feather=renderer.feather or 2.0)
            union = union_mask(masks, REGION_NAMES)
            x0, y0, x1, y1 = masks.box
            inside[y0:y1, x0:x1] |= (union > 0).astype(np.uint8)
        inside = cv2.dilate(inside, np.ones((9, 9), np.uint8))  # 4 px either way
        outside = inside == 0
        assert _psnr(out[outside], image[outside]) >= 50.0
        assert not np.array_equal(out, image)  # and the look did something


@pytest.mark.parametrize("finish", ["matte"])
def test_matte_lipstick_hits_the_target_colour(detected, finish: str) -> None:
    look = parse_look({"name": "red", "layers": {"lipstick": {"color": LIP_TARGET, "finish": finish, "opacity": 1.0}}})
    renderer = LookRenderer(look)
    target = rgb_to_lab(np.array([[[int(LIP_TARGET[i : i + 2], 16) / 255 for i in (1, 3, 5)]]], np.float32))[0, 0]
    for image, faces in detected:
        face = faces[0]
        out = renderer.render(image, [face])
        masks = face_region_masks(face.landmarks, image.shape[:2], feather=2.0)
        lips = union_mask(masks, ["upper_lip", "lower_lip"]) > 0.9
        x0, y0, x1, y1 = masks.box
        before = rgb_to_lab(image[y0:y1, x0:x1].astype(np.float32) / 255)[lips]
        after = rgb_to_lab(out[y0:y1, x0:x1].astype(np.float32) / 255)[lips]
        assert lips.sum() > 25
        da = abs(float(np.median(after[:, 1])) - float(target[1]))
        db = abs(float(np.median(after[:, 2])) - float(target[2]))
        assert da <= 6.0 and db <= 6.0, f"median a*/b* off by {da:.1f}/{db:.1f}"
        r = float(np.corrcoef(before[:, 0], after[:, 0])[0, 1])
        assert r >= 0.8, f"lip lightness pattern lost (r = {r:.2f})"


CLIPS = ["liveportrait_d6.mp4", "sadtalker_WDA_AlexandriaOcasioCortez_000.mp4", "deepfacelive_Obama_speaking.mp4"]


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", CLIPS)
def test_lipstick_does_not_flicker_on_talking_heads(shared_data: Path, perception, clip: str) -> None:
    from facetory_cam.config import Settings

    sm = Settings().smoothing
    tracker = perception.tracker(smoothing=SmoothingParams(sm.min_cutoff, sm.beta, sm.d_cutoff))
    renderer = LookRenderer(
        parse_look({"name": "red", "layers": {"lipstick": {"color": LIP_TARGET, "finish": "satin"}}}), fade_s=0.0
    )
    cap = cv2.VideoCapture(str(shared_data / "videos" / clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    prev_raw = prev_delta = None
    layer_change, raw_change = [], []
    for i in range(90):
        ok, bgr = cap.read()
        if not ok:
            break
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = tracker.process(frame, i / fps)
        if not faces:
            prev_raw = prev_delta = None
            continue
        out = renderer.render(frame, faces[:1], i / fps)
        delta = out.astype(np.float32) - frame.astype(np.float32)
        lips = faces[0].landmarks[[0, 17, 61, 291, 13, 14]]
        x0, y0 = np.floor(lips[:, :2].min(0)).astype(int) - 6
        x1, y1 = np.ceil(lips[:, :2].max(0)).astype(int) + 6
        sl = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
        if prev_raw is not None:
            layer_change.append(float(np.abs(delta[sl] - prev_delta[sl]).mean()))
            raw_change.append(float(np.abs(frame[sl].astype(np.float32) - prev_raw[sl]).mean()))
        prev_raw, prev_delta = frame.astype(np.float32), delta
    cap.release()
    assert len(raw_change) >= 30
    ratio = float(np.mean(layer_change) / max(np.mean(raw_change), 1e-6))
    print(f"\n{clip}: makeup change / raw change in the lip ROI = {ratio:.2f}")
    assert ratio <= 1.5
