"""Logging that cannot flood: a failure repeating every frame logs once per interval."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, *, every: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # bounded by the few templates and stage names in use
        self._suppressed: dict[str, int] = {}

    def _emit(self, level: int, msg: str, args: tuple[Any, ...], exc_info: bool) -> bool:
        now = time.monotonic()
        key = f"{msg}|{args[0] if args else ''}"  # the template and its first argument (the stage, the source)
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        suffix = f" ({skipped} more like this suppressed)" if skipped else ""
        self.logger.log(level, msg + suffix, *args, exc_info=exc_info)
        return True

    def error(self, msg: str, *args: Any, exc_info: bool = False) -> bool:
        """Log unless the same message was logged within ``every`` seconds; True when logged."""
        return self._emit(logging.ERROR, msg, args, exc_info)
