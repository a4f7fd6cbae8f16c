"""Serving the API on loopback only, from a background thread of the daemon.

The sockets are bound here, explicitly to 127.0.0.1 and ::1 (never 0.0.0.0, never the name
``localhost``, which may resolve elsewhere), before the app is built, so the app knows the
real port (``0`` picks a free one) for its Host allow-list, and a busy port fails at start-up
with a clear message instead of in a thread nobody watches.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

__all__ = ["ApiServer", "bind_loopback"]

LOOPBACK = (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6))


def _bind(host: str, family: socket.AddressFamily, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_loopback(port: int) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1 and (where the machine has it) ::1, on the same port."""
    try:
        first = _bind("127.0.0.1", socket.AF_INET, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(
                exc.errno, f"port {port} on 127.0.0.1 is in use: pick another with --port or stop the other program"
            ) from None
        raise
    socks = [first]
    real = first.getsockname()[1]
    try:
        socks.append(_bind("::1", socket.AF_INET6, real))
    except OSError as exc:  # no IPv6 loopback here, or the port is taken there: IPv4 alone still works
        log.info("API not served on [::1]:%d (%s)", real, exc.strerror or exc)
    return socks


class ApiServer:
    """uvicorn on pre-bound loopback sockets in a daemon thread; ``stop`` ends it within a few seconds."""

    def __init__(self, sockets: list[socket.socket], app_factory: Callable[[int], FastAPI]) -> None:
        if not sockets:
            raise ValueError("no sockets to serve on")
        for s in sockets:
            host = s.getsockname()[0]
            if host not in ("127.0.0.1", "::1"):
                raise ValueError(f"refusing to serve the API on {host}: loopback only")
        self.sockets = sockets
        self.port: int = sockets[0].getsockname()[1]
        self.app = app_factory(self.port)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,  # a login link's code would land in the log
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            limit_concurrency=64,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="api-server", daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self._server.run(sockets=self.sockets)
        except BaseException as exc:  # noqa: BLE001 - reported through .error and the log
            self.error = exc
            log.error("the API server stopped: %s", exc)

    @property
    def urls(self) -> list[str]:
        out = []
        for s in self.sockets:
            host = s.getsockname()[0]
            out.append(f"http://{'[::1]' if ':' in host else host}:{self.port}")
        return out

    def start(self, timeout: float = 5.0) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start: {self.error or 'timed out'}")
            time.sleep(0.02)

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask the server to exit and wait; True when the thread ended."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()
        return not self._thread.is_alive()
