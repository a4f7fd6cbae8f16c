"""Backend selection, in exactly one place: a table from name to factory, tried in order."""

from __future__ import annotations

from collections.abc import Callable

from facetory_cam.interfaces import InferenceBackend
from facetory_cam.models.backends.base import BackendUnavailable
from facetory_cam.models.store import ModelStore

Factory = Callable[[ModelStore, str, int], InferenceBackend]


def _onnx(kind: str) -> Factory:
    def make(store: ModelStore, model: str, threads: int) -> InferenceBackend:
        from facetory_cam.models.backends.onnx_backend import OnnxBackend

        return OnnxBackend(store, model, kind=kind, threads=threads)

    return make


def _torch(device: str) -> Factory:
    def make(store: ModelStore, model: str, threads: int) -> InferenceBackend:
        from facetory_cam.models.backends.torch_backend import TorchBackend

        return TorchBackend(store, model, device=device, threads=threads)

    return make


# Fastest first. "auto" walks this list; a named backend is tried alone.
BACKENDS: dict[str, Factory] = {
    "onnx-tensorrt": _onnx("tensorrt"),
    "onnx-cuda": _onnx("cuda"),
    "torch-cuda": _torch("cuda"),
    "onnx-cpu": _onnx("cpu"),
    "torch-cpu": _torch("cpu"),
}


class NoBackendError(RuntimeError):
    """No backend could open a model; the message lists every backend's reason."""


def open_backend(store: ModelStore, model: str, *, prefer: str = "auto", threads: int = 1) -> InferenceBackend:
    """Open ``model`` on the preferred backend, or on the first that works when ``prefer`` is auto."""
    if prefer != "auto" and prefer not in BACKENDS:
        raise ValueError(f"unknown backend {prefer!r}; choose auto or one of {', '.join(BACKENDS)}")
    names = list(BACKENDS) if prefer == "auto" else [prefer]
    reasons: list[str] = []
    for name in names:
        try:
            return BACKENDS[name](store, model, threads)
        except BackendUnavailable as exc:
            reasons.append(f"{name}: {exc}")
    raise NoBackendError(f"no backend could open {model}:\n  " + "\n  ".join(reasons))
