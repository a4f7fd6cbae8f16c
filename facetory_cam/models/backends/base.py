"""Shared pieces of the inference backends."""

from __future__ import annotations

import numpy as np

from facetory_cam.models.manifest import ModelEntry


class BackendUnavailable(RuntimeError):
    """This backend cannot serve on this machine (missing package, no GPU, ...)."""


def check_batch(entry: ModelEntry, batch: np.ndarray) -> np.ndarray:
    """Validate an NHWC batch for ``entry`` and return it as contiguous float32."""
    spec = entry.input
    expected = (spec.height, spec.width, spec.channels)
    if batch.ndim != 4 or tuple(batch.shape[1:]) != expected or batch.shape[0] < 1:
        raise ValueError(
            f"{entry.name} expects a batch of shape (N, {expected[0]}, {expected[1]}, {expected[2]}), got {batch.shape}"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)
