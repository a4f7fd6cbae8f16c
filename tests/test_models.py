"""Model manifest, verified fetch into the cache, ONNX export and backend selection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from facetory_cam.models.manifest import load_manifest
from facetory_cam.models.store import ModelError, ModelStore


def _wheel_from(store: ModelStore, path: Path, *, corrupt: str | None = None) -> Path:
    """A wheel-shaped zip holding the cached (verified) model files at their member paths."""
    with zipfile.ZipFile(path, "w") as zf:
        for m in store.manifest.models:
            data = store.read_verified(m.name)
            if m.name == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            zf.writestr(m.member, data)
    return path


def test_manifest_pins_six_models() -> None:
    m = load_manifest()
    names = [e.name for e in m.models]
    assert names == [
        "face_detection_short_range",
        "face_detection_full_range_sparse",
        "face_landmark",
        "iris_landmark",
        "selfie_segmentation",
        "selfie_segmentation_landscape",
    ]
    assert m.package == "mediapipe" and m.version == "0.10.21"
    for e in m.models:
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
        assert e.license == "Apache-2.0"
        assert e.member.endswith(f"{e.name}.tflite")


def test_missing_model_names_the_fetch_command(tmp_path: Path) -> None:
    s = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="facetory models fetch"):
        s.require("face_landmark")
    assert not s.status("face_landmark").present


def test_install_from_wheel_verifies_and_caches(store: ModelStore, tmp_path: Path) -> None:
    wheel = _wheel_from(store, tmp_path / "mp.whl")
    target = ModelStore(tmp_path / "cache")
    seen: list[str] = []
    paths = target.fetch(from_wheel=wheel, progress=lambda e: seen.append(e.name))
    assert len(paths) == 6 and len(seen) == 6
    assert all(target.status(m.name).verified for m in target.manifest.models)
    assert not list((tmp_path / "cache").glob("*.part"))


def test_corrupt_member_is_refused(store: ModelStore, tmp_path: Path) -> None:
    wheel = _wheel_from(store, tmp_path / "bad.whl", corrupt="iris_landmark")
    target = ModelStore(tmp_path / "cache")
    with pytest.raises(ModelError, match="sha256"):
        target.fetch(from_wheel=wheel)
    assert not target.path_for("iris_landmark").exists()


def test_corrupt_cache_file_is_detected(store: ModelStore, tmp_path: Path) -> None:
    target = ModelStore(tmp_path)
    target.fetch(from_wheel=_wheel_from(store, tmp_path / "mp.whl"))
    p = target.path_for("face_landmark")
    p.write_bytes(p.read_bytes()[:-10])
    assert target.status("face_landmark").detail.startswith("sha256 mismatch")
    with pytest.raises(ModelError, match="corrupt"):
        target.read_verified("face_landmark")


def test_not_a_wheel(tmp_path: Path) -> None:
    bogus = tmp_path / "x.whl"
    bogus.write_text("not a zip")
    with pytest.raises(ModelError, match="not a readable wheel"):
        ModelStore(tmp_path / "c").fetch(from_wheel=bogus)


def test_tflite_reader_rejects_garbage() -> None:
    from facetory_cam.models.tflite_graph import TFLiteFormatError, load_graph

    with pytest.raises(TFLiteFormatError):
        load_graph(b"\x00" * 64)


def test_sparse_weights_are_densified(store: ModelStore) -> None:
    from facetory_cam.models.tflite_graph import load_graph

    g = load_graph(store.read_verified("face_detection_full_range_sparse"))
    convs = [op for op in g.ops if op.kind == "CONV_2D"]
    kernels = [g.tensors[op.inputs[1]].data for op in convs]
    assert all(k is not None and k.dtype == np.float32 for k in kernels)
    # about 70 % of the stored 1x1 weights are zeros after densifying, never all of them
    zero_frac = [float((k == 0).mean()) for k in kernels if k is not None and k.shape[1:3] == (1, 1)]
    assert max(zero_frac) > 0.5 and min(zero_frac) < 1.0


def test_onnx_export_has_metadata_and_dynamic_batch(store: ModelStore) -> None:
    import onnx

    from facetory_cam.models.backends import open_backend
    from facetory_cam.models.export import export_onnx

    path = export_onnx(store, "face_landmark")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["facetory.source_sha256"] == store.manifest.entry("face_landmark").sha256
    assert '"layout": "NHWC"' in meta["facetory.input"]
    x = np.random.default_rng(1).random((3, 192, 192, 3), dtype=np.float32)
    a = open_backend(store, "face_landmark", prefer="onnx-cpu").run(x)
    b = open_backend(store, "face_landmark", prefer="torch-cpu").run(x)
    assert a[0].shape == (3, 1, 1, 1404)
    assert float(np.abs(a[0] - b[0]).max()) < 1e-3


def test_backend_selection_errors(store: ModelStore) -> None:
    from facetory_cam.models.backends import NoBackendError, open_backend

    with pytest.raises(ValueError, match="unknown backend"):
        open_backend(store, "face_landmark", prefer="quantum")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(NoBackendError, match="torch-cuda: torch reports no CUDA"):
            open_backend(store, "face_landmark", prefer="torch-cuda")
    assert open_backend(store, "face_landmark").name in {"onnx-tensorrt", "onnx-cuda", "torch-cuda", "onnx-cpu"}


def test_bad_batch_shape(store: ModelStore) -> None:
    from facetory_cam.models.backends import open_backend

    b = open_backend(store, "iris_landmark", prefer="onnx-cpu")
    with pytest.raises(ValueError, match="expects a batch"):
        b.run(np.zeros((1, 32, 32, 3), np.float32))


def test_provider_chain_is_pure(tmp_path: Path) -> None:
    from facetory_cam.models.backends.onnx_backend import provider_chain

    assert provider_chain("cpu", cache_dir=tmp_path) == ["CPUExecutionProvider"]
    trt = provider_chain("tensorrt", cache_dir=tmp_path)
    assert [p if isinstance(p, str) else p[0] for p in trt] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert trt[0][1]["trt_engine_cache_path"].startswith(str(tmp_path))
