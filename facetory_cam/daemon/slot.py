"""A one-frame hand-off between two threads.

Live mode keeps only the newest item: a slow consumer never makes the producer wait
and never sees stale frames (the item it replaced is counted as dropped). Lossless
mode makes the producer wait until the consumer took the item, so offline runs
process every frame. Either way at most one item is held.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The slot was closed while waiting on it."""


class Slot(Generic[T]):
    def __init__(self, *, lossless: bool = False, on_change: threading.Condition | None = None) -> None:
        self.lossless = lossless
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self._notify = on_change  # wakes a consumer that waits on several slots
        self.dropped = 0

    def put(self, item: T, *, timeout: float | None = None) -> bool:
        """Hand over ``item``; False when lossless and the consumer did not take the previous one in time."""
        with self._cond:
            if self._closed:
                raise Closed
            if self.lossless and self._item is not None:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._item is not None and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                if self._closed:
                    raise Closed
            elif self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
        if self._notify is not None:
            with self._notify:
                self._notify.notify_all()
        return True

    def take(self, *, timeout: float | None = None) -> T | None:
        """The held item, removed; waits up to ``timeout`` for one (None when none came)."""
        with self._cond:
            if self._item is None and not self._closed and timeout:
                self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()
            return item

    def peek_ready(self) -> bool:
        with self._cond:
            return self._item is not None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._notify is not None:
            with self._notify:
                self._notify.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
