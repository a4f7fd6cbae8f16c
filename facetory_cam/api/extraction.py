"""Photo to look, as the API runs it: a bounded job queue and an adapter over ``facetory_cam.extract``.

Extraction is CPU-heavy (decode, face mesh, colour fitting), so it never runs on the event
loop: jobs go to a small thread pool, and when every worker is busy and the waiting room is
full the next request is told 429 at once instead of piling up memory and latency (a local
API is still a DoS target: CVE-2019-13449).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from facetory_cam.looks.schema import Look

__all__ = ["ExtractedLook", "ExtractionUnavailable", "Extractor", "FaceFound", "JobQueue", "extractor_for"]

T = TypeVar("T")
EXTRACTOR_MODULE = "facetory_cam.extract.extractor"


class ExtractionUnavailable(RuntimeError):
    """This build cannot turn photos into looks (the extractor is not installed)."""


@dataclass(frozen=True)
class FaceFound:
    index: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the (upright) photo's pixels
    score: float


@dataclass(frozen=True)
class ExtractedLook:
    """What an extractor returns: the look (a texture as a data: URI, if any), every face, the one used."""

    look: Look
    faces: list[FaceFound] = field(default_factory=list)
    face: int | None = None


Extractor = Callable[[bytes, int | None], ExtractedLook]


def _face(i: int, f: Any) -> FaceFound:
    i = int(getattr(f, "index", i))
    box = getattr(f, "box", None)
    if box is None and isinstance(f, dict):
        box = f.get("box")
    score = getattr(f, "score", None)
    if score is None and isinstance(f, dict):
        score = f.get("score", 0.0)
    x0, y0, x1, y1 = (float(v) for v in (box if box is not None else (0, 0, 0, 0)))
    return FaceFound(i, (x0, y0, x1, y1), float(score or 0.0))


def extractor_for(perception_factory: Callable[[], Any], settings: Any = None) -> Extractor | None:
    """An extractor over ``facetory_cam.extract.extractor.extract_look``; None when that module is absent.

    The perception (model sessions) is opened on the first job, on a worker thread; ``settings``
    (the daemon's) carry the extraction limits and options.
    """
    if importlib.util.find_spec(EXTRACTOR_MODULE) is None:
        return None
    lock = threading.Lock()
    opened: list[Any] = []

    def perception() -> Any:
        with lock:
            if not opened:
                opened.append(perception_factory())
            return opened[0]

    def run(photo: bytes, face: int | None) -> ExtractedLook:
        try:
            module = importlib.import_module(EXTRACTOR_MODULE)
            extract_look = module.extract_look
        except (ImportError, AttributeError) as exc:
            raise ExtractionUnavailable(f"extraction unavailable: {exc}") from None
        kw = {} if settings is None else {"settings": settings}
        result = extract_look(photo, perception(), face=face, **kw)
        look = result.look if hasattr(result, "look") else result
        faces = [_face(i, f) for i, f in enumerate(getattr(result, "faces", None) or [])]
        chosen = getattr(result, "face", None)
        if chosen is not None and not isinstance(chosen, int):
            chosen = getattr(chosen, "index", None)
        return ExtractedLook(look=look, faces=faces, face=chosen if chosen is not None else face)

    return run


class JobQueue:
    """At most ``workers`` jobs run and ``waiting`` more wait; past that, :meth:`try_enter` says no."""

    def __init__(self, workers: int, waiting: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a job queue needs at least one worker")
        self.capacity = workers + (workers if waiting is None else waiting)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="api-job")
        self._lock = threading.Lock()
        self._held = 0
        self.refused = 0

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    def try_enter(self) -> bool:
        """Take a place (for the whole request, upload included); False when full."""
        with self._lock:
            if self._held >= self.capacity:
                self.refused += 1
                return False
            self._held += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._held -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker and await it without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
