"""Person masks from the selfie models on a real portrait."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("landscape", [False, True])
def test_person_mask_separates_person_from_background(perception, astronaut, landscape: bool) -> None:
    seg = perception.segmenter(landscape=landscape)
    (mask,) = seg.run([astronaut])
    assert mask.shape == astronaut.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
    face = mask[90:170, 190:260]  # the astronaut's face
    suit = mask[350:500, 150:400]  # her space suit
    sky = mask[0:60, 0:100]  # the wall behind, top left
    assert float(face.mean()) > 0.9
    assert float(suit.mean()) > 0.8
    assert float(sky.mean()) < 0.1


def test_batch_of_frames_matches_single_calls(perception, astronaut) -> None:
    seg = perception.segmenter(landscape=False)
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    both = seg.run([astronaut, flipped])
    single = seg.run([flipped])[0]
    assert np.abs(both[1] - single).max() < 1e-4
    # the mirrored picture gives (nearly) the mirrored person
    a, b = both[0][:, ::-1] > 0.5, both[1] > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.9
