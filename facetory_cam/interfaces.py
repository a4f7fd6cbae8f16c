"""The small protocols at the project's seams."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs one model on a batch.

    ``run`` takes an NHWC float32 batch already normalised to the model's input
    range and returns the model's outputs in manifest order, each with the batch
    as its first dimension. Raises ``ValueError`` for a batch of the wrong shape.
    """

    name: str
    model_name: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def close(self) -> None: ...
