"""ONNX Runtime backend over the exported ports (CPU, CUDA EP or TensorRT EP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facetory_cam.models.backends.base import BackendUnavailable, check_batch
from facetory_cam.models.export import export_onnx
from facetory_cam.models.store import ModelStore


def provider_chain(kind: str, *, cache_dir: Path, device_id: int = 0) -> list[Any]:
    """The ORT provider list for ``kind`` (cpu | cuda | tensorrt); pure, so it is unit-tested.

    TensorRT engines and timing caches live under the cache dir; ORT keys engines
    by model hash, and the folder is split by ORT version so upgrades rebuild.
    """
    import onnxruntime as ort

    cpu: list[Any] = ["CPUExecutionProvider"]
    cuda = ("CUDAExecutionProvider", {"device_id": device_id})
    if kind == "cpu":
        return cpu
    if kind == "cuda":
        return [cuda, *cpu]
    if kind == "tensorrt":
        trt_dir = cache_dir / "tensorrt" / f"ort-{ort.__version__}"
        trt = (
            "TensorrtExecutionProvider",
            {
                "device_id": device_id,
                "trt_fp16_enable": True,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(trt_dir),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(trt_dir),
            },
        )
        return [trt, cuda, *cpu]
    raise ValueError(f"unknown ONNX Runtime provider kind {kind!r}")


class OnnxBackend:
    def __init__(self, store: ModelStore, model_name: str, *, kind: str = "cpu", threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
            raise BackendUnavailable(f"onnxruntime is not installed: {exc}") from exc
        wanted = {
            "cpu": "CPUExecutionProvider",
            "cuda": "CUDAExecutionProvider",
            "tensorrt": "TensorrtExecutionProvider",
        }[kind]
        if wanted not in ort.get_available_providers():
            raise BackendUnavailable(f"onnxruntime has no {wanted} (install the gpu extra on an NVIDIA machine)")
        self.name = f"onnx-{kind}"
        self.model_name = model_name
        self.entry = store.manifest.entry(model_name)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        path = export_onnx(store, model_name)
        try:
            self.session = ort.InferenceSession(
                str(path), opts, providers=provider_chain(kind, cache_dir=store.cache_dir)
            )
        except Exception as exc:  # ORT raises its own exception types for provider failures
            raise BackendUnavailable(f"onnxruntime could not open {path.name} with {wanted}: {exc}") from exc
        if kind != "cpu" and self.session.get_providers()[0] != wanted:
            raise BackendUnavailable(f"onnxruntime fell back from {wanted} to {self.session.get_providers()[0]}")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        outs = self.session.run(self.output_names, {"input": check_batch(self.entry, batch)})
        return tuple(outs)

    def close(self) -> None:
        self.session = None
