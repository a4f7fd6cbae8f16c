"""Keeps Python's cycle collector out of the frame budget.

A full (oldest-generation) collection walks every container object in the process: with
torch, ONNX Runtime, NumPy and the web stack loaded that is some 200,000 objects and
30-60 ms on a laptop core, long enough to miss an output tick. Almost all of them live
as long as the process. Once the pipeline is warm (models open, modules imported), one
collection and ``gc.freeze`` move them out of the collector's sight for good; later full
collections only see what was made since, which is little and quick.
"""

from __future__ import annotations

import gc


def settle_heap() -> bool:
    """Collect once and freeze what survives, the first time in this process; True when it did."""
    if gc.get_freeze_count() > 0:  # already settled: frozen objects are never collected, so freeze once
        return False
    gc.collect()
    gc.freeze()
    return True
