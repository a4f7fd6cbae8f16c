"""Turn a verified cached .tflite file into a ready torch module."""

from __future__ import annotations

import torch

from facetory_cam.models.store import ModelStore
from facetory_cam.models.tflite_graph import load_graph
from facetory_cam.models.torch_graph import TFLiteModule


def build_torch_model(store: ModelStore, name: str, *, for_export: bool = False) -> TFLiteModule:
    """Read the model's weights from its .tflite file (hash-checked) into an eval-mode module."""
    module = TFLiteModule(load_graph(store.read_verified(name)), for_export=for_export)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def model_input_example(store: ModelStore, name: str, batch: int = 1) -> torch.Tensor:
    spec = store.manifest.entry(name).input
    return torch.zeros(batch, spec.height, spec.width, spec.channels)
