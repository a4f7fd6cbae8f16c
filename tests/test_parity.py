"""Every port agrees with Google's LiteRT on real inputs (1e-3 absolute), on torch and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from facetory_cam.models.manifest import load_manifest
from facetory_cam.vision.geometry import crop
from facetory_cam.vision.landmarks import IRIS_SIZE, MESH_SIZE, IrisRefiner, roi_from_landmarks
from tests.conftest import read_rgb

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT (dev extra) is not installed")
pytestmark = pytest.mark.litert

TOL = 1e-3
PORTRAITS = ["makeup/beautygan", "landmarks68/helen_300w", "boxes/celeba_wild"]


@pytest.fixture(scope="module")
def real_images(astronaut, request) -> list[np.ndarray]:
    images = [astronaut]
    from tests.conftest import SHARED_DATA

    if SHARED_DATA.is_dir():
        for folder in PORTRAITS:
            files = sorted(p for p in (SHARED_DATA / folder).glob("*") if p.suffix.lower() in {".jpg", ".png", ".jpeg"})
            images += [read_rgb(p) for p in files[:2]]
    return images


@pytest.fixture(scope="module")
def inputs(perception, real_images) -> dict[str, np.ndarray]:
    """Real, correctly prepared input batches for all six models."""
    tracker = perception.tracker(static=True, max_faces=4)
    det_short = perception.detector("short")
    det_full = perception.detector("full")
    mesh_crops, eye_crops = [], []
    for im in real_images:
        for face in tracker.process(im)[:1]:
            roi = roi_from_landmarks(face.landmarks)
            mesh_crops.append(crop(im, roi, MESH_SIZE))
            for side, eroi in enumerate(IrisRefiner.eye_rois(face.landmarks)):
                eye_crops.append(crop(im, eroi, IRIS_SIZE, flip=side == 1))
    assert len(mesh_crops) >= 1
    import cv2

    return {
        "face_detection_short_range": np.stack([det_short.preprocess(im)[0] for im in real_images]),
        "face_detection_full_range_sparse": np.stack([det_full.preprocess(im)[0] for im in real_images]),
        "face_landmark": np.stack(mesh_crops).astype(np.float32) / 255.0,
        "iris_landmark": np.stack(eye_crops).astype(np.float32) / 255.0,
        "selfie_segmentation": np.stack(
            [cv2.resize(im, (256, 256), interpolation=cv2.INTER_AREA) for im in real_images]
        ).astype(np.float32)
        / 255.0,
        "selfie_segmentation_landscape": np.stack(
            [cv2.resize(im, (256, 144), interpolation=cv2.INTER_AREA) for im in real_images]
        ).astype(np.float32)
        / 255.0,
    }


def _litert_outputs(store, model: str, batch: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    interp = litert.Interpreter(model_content=store.read_verified(model), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    by_name = {d["name"]: d["index"] for d in interp.get_output_details()}
    outs: list[list[np.ndarray]] = [[] for _ in names]
    for x in batch:
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        for k, n in enumerate(names):
            outs[k].append(interp.get_tensor(by_name[n])[0])
    return [np.stack(o) for o in outs]


MODELS = [m.name for m in load_manifest().models]


@pytest.mark.parametrize("backend_name", ["torch-cpu", "onnx-cpu"])
@pytest.mark.parametrize("model", MODELS)
def test_port_matches_litert(store, inputs, model: str, backend_name: str) -> None:
    from facetory_cam.models.backends import open_backend

    entry = store.manifest.entry(model)
    batch = inputs[model]
    ref = _litert_outputs(store, model, batch, entry.outputs)
    ours = open_backend(store, model, prefer=backend_name).run(batch)
    assert len(ours) == len(ref)
    for name, a, b in zip(entry.outputs, ours, ref):
        assert a.shape == b.shape, name
        err = float(np.abs(a - b).max())
        assert err <= TOL, f"{model}/{name} on {backend_name}: max |ours - LiteRT| = {err:.2e}"
    if model.startswith("selfie"):
        # real portraits must produce a real person mask, not an all-zero output
        assert float(ref[0].max()) > 0.9
    if model == "face_landmark":
        assert float(ref[1].min()) > 0.0  # presence logits of real faces are positive
