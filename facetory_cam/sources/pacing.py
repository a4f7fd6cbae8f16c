"""Real-time pacing shared by the sources that make their own frame clock (files, stills, the fake camera)."""

from __future__ import annotations

import threading
import time

from facetory_cam.interfaces import SourceLost


def sleep_until(due: float, deadline: float, stop: threading.Event, name: str) -> bool:
    """Sleep until ``due`` (True) or ``deadline`` (False), whichever is first; never spins.

    Raises ``SourceLost`` when ``stop`` is set meanwhile (the source was closed from another thread).
    """
    while (now := time.monotonic()) < due:
        if now >= deadline:
            return False
        if stop.wait(min(due, deadline) - now):
            raise SourceLost(f"{name}: closed while reading")
    return True


def next_due(due: float, period: float, now: float) -> float:
    """When the frame after one due at ``due`` is due: one period on, or now for a late consumer (never a burst)."""
    return due + period if due + period >= now else now
