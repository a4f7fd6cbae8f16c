"""A small HTTP client for the daemon's local API, with the Bearer token and short timeouts.

The tray polls every few seconds from a UI process, so a stuck daemon must cost at most a
couple of seconds and never hang the menu: every call has a short timeout and every failure
becomes one of two exceptions the menu knows how to show. Only the standard library is used,
so the tray needs nothing beyond pystray and Pillow.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ApiClient", "ApiError", "ApiUnreachable", "load_token"]

TOKEN_ENV = "FACETORY_API_TOKEN"  # the same variable the daemon reads (facetory_cam.api.security)
DEFAULT_TIMEOUT_S = 2.0


class ApiUnreachable(ConnectionError):
    """No daemon answered (not running, wrong port, timed out, or no token to talk to it with)."""


class ApiError(RuntimeError):
    """The daemon answered with an error; ``detail`` is its readable message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _default_token_file() -> Path:
    """Where the daemon writes its token; imported lazily so the tray starts without the web stack loaded."""
    from facetory_cam.api.security import token_file

    return token_file()


def load_token(*, env: Mapping[str, str] | None = None, path: Path | None = None) -> str | None:
    """The API token: ``FACETORY_API_TOKEN`` when set, else the daemon's token file; None when neither exists.

    Read again on every retry, because the daemon writes a fresh token each time it starts.
    """
    environ = os.environ if env is None else env
    given = environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    target = _default_token_file() if path is None else path
    try:
        text = target.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def _detail(body: bytes, status: int) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return f"HTTP {status}"
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):  # FastAPI validation errors
        return "; ".join(str(d.get("msg", d)) for d in detail)
    return f"HTTP {status}"


class ApiClient:
    """Talks to ``http://127.0.0.1:PORT``; the token comes from ``token`` or, when None, from ``load_token``."""

    def __init__(
        self,
        port: int,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        timeout: float = DEFAULT_TIMEOUT_S,
        token_path: Path | None = None,
    ) -> None:
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.timeout = timeout
        self._token = token
        self._token_path = token_path

    def token(self) -> str | None:
        return self._token if self._token is not None else load_token(path=self._token_path)

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[bytes, str]:
        """One request; returns (body, content type). Raises ApiUnreachable or ApiError."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth:
            token = self.token()
            if token is None:
                raise ApiUnreachable("no API token: the daemon is not running (no token file) or FACETORY_API_TOKEN")
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            with exc:
                raise ApiError(exc.code, _detail(exc.read(), exc.code)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnreachable(f"daemon unreachable at {self.base_url}: {reason}") from None

    def _json(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data, _ = self.request(method, path, body, auth=auth)
        try:
            return json.loads(data) if data else None
        except ValueError:
            raise ApiError(502, f"{path} did not answer JSON") from None

    def health(self) -> bool:
        return self._json("GET", "/api/health", auth=False) == {"status": "ok"}

    def state(self) -> dict[str, Any]:
        return self._json("GET", "/api/state")

    def put_state(self, **change: Any) -> dict[str, Any]:
        """Change only the given fields (look, intensity, enabled, layers)."""
        return self._json("PUT", "/api/state", change)

    def looks(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/looks")

    def session_link(self) -> str:
        """A fresh one-time login link for the panel (the API token itself never goes into a URL)."""
        return str(self._json("POST", "/api/session/link")["url"])

    def shutdown(self) -> None:
        """Ask the daemon to stop (it releases the camera and the virtual camera)."""
        self._json("POST", "/api/shutdown", {})

    def snapshot(self) -> bytes:
        """PNG of the current output frame."""
        data, ctype = self.request("POST", "/api/snapshot", {})
        if not ctype.startswith("image/png"):
            raise ApiError(502, "the snapshot is not a PNG")
        return data
