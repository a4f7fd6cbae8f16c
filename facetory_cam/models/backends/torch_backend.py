"""Torch backend: the ports run directly, on CPU or CUDA."""

from __future__ import annotations

import numpy as np
import torch

from facetory_cam.models.backends.base import BackendUnavailable, check_batch
from facetory_cam.models.loader import build_torch_model
from facetory_cam.models.store import ModelStore


class TorchBackend:
    def __init__(self, store: ModelStore, model_name: str, *, device: str = "cpu", threads: int = 1) -> None:
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("torch reports no CUDA device")
        self.name = f"torch-{device}"
        self.model_name = model_name
        self.entry = store.manifest.entry(model_name)
        self.device = torch.device(device)
        if device == "cpu":
            torch.set_num_threads(threads)
        self.module = build_torch_model(store, model_name).to(self.device)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        x = torch.from_numpy(check_batch(self.entry, batch)).to(self.device, non_blocking=True)
        with torch.inference_mode():
            outs = self.module(x)
        return tuple(o.float().cpu().numpy() for o in outs)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
