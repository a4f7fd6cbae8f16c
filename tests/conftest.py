"""Shared fixtures: model store (skips cleanly without weights), real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def store():
    from facetory_cam.models.store import ModelError, ModelStore

    s = ModelStore()
    try:
        for m in s.manifest.models:
            s.require(m.name)
    except ModelError as exc:
        pytest.skip(f"model weights not fetched ({exc})")
    return s


@pytest.fixture(scope="session")
def perception(store):
    from facetory_cam.vision.perception import Perception

    return Perception(store, backend="onnx-cpu")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("the real face data set (../shared/data) is not present")
    return SHARED_DATA


def read_rgb(path: Path) -> np.ndarray:
    from facetory_cam.imageio import load_image

    return load_image(path)
