"""Who may talk to the local API, and how: safe by default against the user's own browser.

Binding to loopback stops other machines, not web pages: any site the user visits can send
requests to 127.0.0.1 (image loads, form posts), and with DNS rebinding it can read the
answers too (Zoom CVE-2019-13450, Transmission CVE-2018-5702, Ollama GHSA-5jx5-hqx5-2vrj).
So every request passes, in order:

1. a Host allow-list (``localhost``, ``127.0.0.1``, ``[::1]`` with our port, exact match):
   anything else is 421, which defeats DNS rebinding;
2. an Origin / Sec-Fetch-Site check: a cross-site or same-site-but-other-origin request is 403;
3. the body cap, counted while the body streams in (Content-Length alone can be left out): 413;
4. authentication: ``Authorization: Bearer <token>`` (compared in constant time), or the session
   cookie that a one-time ``?token=`` link printed by the daemon exchanges for (HttpOnly,
   SameSite=Strict); never a token in an API URL (URLs leak into logs and history): 401;
5. writes carry JSON (or multipart on upload routes), which a cross-site form cannot send
   without a preflight that no CORS header ever answers: 415.

No route changes state on GET, and there is no CORS at all.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import platformdirs
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetory_cam.api.atomic import make_private_dir, write_atomic

log = logging.getLogger(__name__)

__all__ = [
    "TOKEN_ENV",
    "BodyTooLarge",
    "Credentials",
    "SecurityMiddleware",
    "allowed_hosts",
    "allowed_origins",
    "issue_token",
    "token_file",
]

TOKEN_ENV = "FACETORY_API_TOKEN"
MIN_TOKEN_CHARS = 32
LINK_TTL_S = 600.0
SESSION_TTL_S = 12 * 3600.0
SMALL_BODY = 64 * 1024  # state changes and the like
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_API = frozenset({"/api/health"})
_BEARER = re.compile(r"^bearer ([A-Za-z0-9._~+/=-]+)$", re.IGNORECASE)


def token_file() -> Path:
    """Where the daemon writes this run's token for local clients (the tray, scripts)."""
    return Path(platformdirs.user_config_dir("facetory-cam")) / "api-token"


def issue_token(*, path: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """This run's API token: ``FACETORY_API_TOKEN`` when set, else 32 fresh random bytes written to a 0600 file.

    A new token every start means a token that leaked yesterday is worthless today.
    """
    environ = os.environ if env is None else env
    given = environ.get(TOKEN_ENV)
    if given:
        if len(given) < MIN_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", given):
            raise ValueError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9, ._~+/=-")
        return given
    token = secrets.token_hex(32)
    target = token_file() if path is None else path
    make_private_dir(target.parent)
    write_atomic(target, (token + "\n").encode("ascii"), mode=0o600)
    return token


def allowed_hosts(port: int) -> frozenset[str]:
    """Host header values we answer to; exact strings, lower case."""
    names = ("localhost", "127.0.0.1", "[::1]")
    hosts = {f"{n}:{port}" for n in names}
    if port == 80:
        hosts.update(names)
    return frozenset(hosts)


def allowed_origins(port: int) -> frozenset[str]:
    """Origins of pages we serve ourselves (the web panel), in any of the loopback spellings."""
    names = ("localhost", "127.0.0.1", "[::1]")
    origins = {f"http://{n}:{port}" for n in names}
    if port == 80:
        origins.update(f"http://{n}" for n in names)
    return frozenset(origins)


class Credentials:
    """The bearer token, one-time login links and the browser sessions they opened (one set per server)."""

    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"an API token needs at least {MIN_TOKEN_CHARS} characters")
        self._token = token
        self._lock = threading.Lock()
        self._links: dict[str, float] = {}  # code -> expiry (monotonic)
        self._sessions: dict[str, float] = {}  # session id -> expiry (monotonic)

    def check_token(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode("utf-8"), self._token.encode("utf-8"))

    def new_link_code(self, ttl_s: float = LINK_TTL_S) -> str:
        """A code for one ``?token=`` link: valid once, for ``ttl_s`` seconds."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._links[code] = time.monotonic() + ttl_s
        return code

    def redeem_link(self, code: str) -> str | None:
        """Exchange a link code for a new session id; None when the code is unknown, used or expired."""
        now = time.monotonic()
        with self._lock:
            match = None
            for known, expiry in list(self._links.items()):
                if expiry < now:
                    del self._links[known]
                elif hmac.compare_digest(known.encode(), code.encode()):
                    match = known
            if match is None:
                return None
            del self._links[match]
            session = secrets.token_urlsafe(32)
            self._sessions[session] = now + SESSION_TTL_S
            return session

    def check_session(self, session: str) -> bool:
        now = time.monotonic()
        with self._lock:
            ok = False
            for known, expiry in list(self._sessions.items()):
                if expiry < now:
                    del self._sessions[known]
                elif hmac.compare_digest(known.encode(), session.encode()):
                    ok = True
            return ok


class BodyTooLarge(HTTPException):
    """The request body went over its cap while streaming in."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n // 1024} KiB"


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        if name in out:
            value = out[name] + ("; " if name == "cookie" else ", ") + value
        out[name] = value
    return out


def _cookies(header: str) -> dict[str, str]:
    jar: dict[str, str] = {}
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep:
            jar.setdefault(name, value)
    return jar


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SecurityMiddleware:
    """Pure ASGI middleware applying the checks of the module docstring to every request.

    ``body_limit(method, path)`` gives each route's byte cap; ``multipart_paths`` are the
    upload routes (which take ``multipart/form-data`` instead of JSON).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        credentials: Credentials,
        port: int,
        body_limit: Callable[[str, str], int],
        multipart_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.port = port
        self.hosts = allowed_hosts(port)
        self.origins = allowed_origins(port)
        self.body_limit = body_limit
        self.multipart_paths = multipart_paths
        self.cookie_name = f"facetory_session_{port}"  # cookies ignore ports: one name per server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no WebSocket routes exist; refuse rather than guess
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers = _headers(scope)
        host = headers.get("host", "").strip().lower()
        if host not in self.hosts:
            log.warning("refused a request for Host %r (DNS rebinding?)", host[:100])
            await _reply(send, 421, "misdirected request: this server answers only to localhost")
            return
        site = headers.get("sec-fetch-site", "").strip().lower()
        origin = headers.get("origin")
        if site in ("cross-site", "same-site"):
            await _reply(send, 403, f"cross-origin request refused (Sec-Fetch-Site: {site})")
            return
        if origin is not None and origin.strip().lower() not in self.origins:
            await _reply(send, 403, "cross-origin request refused (Origin is not this server)")
            return
        method = scope["method"].upper()
        path: str = scope["path"]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if any(k == "token" for k, _ in query):
            if path.startswith("/api/") or method != "GET":
                await _reply(
                    send, 401, "a token in the URL is not accepted here; send it as an Authorization: Bearer header"
                )
                return
            await self._redeem(scope, send, query)
            return
        needs_auth = path.startswith(("/api/", "/docs", "/redoc", "/openapi.json")) and path not in PUBLIC_API
        if needs_auth:
            how = self._authenticate(headers)
            if how is None:
                await _reply(
                    send, 401, "missing or wrong API token", [(b"www-authenticate", b'Bearer realm="facetory"')]
                )
                return
            if how == "cookie" and method in UNSAFE_METHODS and origin is None and site != "same-origin":
                await _reply(send, 403, "a browser session may only change things from this server's own pages")
                return
        if method in UNSAFE_METHODS and path.startswith("/api/"):
            problem = self._content_type_problem(headers, path)
            if problem is not None:
                await _reply(send, 415, problem)
                return
        limit = self.body_limit(method, path)
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if declared > limit:
                await _reply(send, 413, f"the request body is larger than {_size(limit)}")
                return
        await self._forward(scope, receive, send, limit, path.startswith("/api/"))

    def _authenticate(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization")
        if auth is not None:
            m = _BEARER.match(auth.strip())
            return "bearer" if m is not None and self.credentials.check_token(m.group(1)) else None
        session = _cookies(headers.get("cookie", "")).get(self.cookie_name)
        if session and self.credentials.check_session(session):
            return "cookie"
        return None

    def _content_type_problem(self, headers: dict[str, str], path: str) -> str | None:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if path in self.multipart_paths:
            return None if ctype == "multipart/form-data" else "send this as multipart/form-data"
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        if has_body and ctype != "application/json":
            return "send JSON (Content-Type: application/json)"
        return None

    async def _redeem(self, scope: Scope, send: Send, query: list[tuple[str, str]]) -> None:
        """The one-time link: trade its code for a session cookie and redirect to the same page without it."""
        code = next(v for k, v in query if k == "token")
        session = self.credentials.redeem_link(code)
        if session is None:
            await _reply(send, 403, "this login link is invalid, expired or already used; ask the daemon for a new one")
            return
        rest = [(k, v) for k, v in query if k != "token"]
        location = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
        cookie = f"{self.cookie_name}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={int(SESSION_TTL_S)}"
        headers = [
            (b"location", location.encode("utf-8")),
            (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
            *_SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _forward(self, scope: Scope, receive: Receive, send: Send, limit: int, api: bool) -> None:
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _reply(send, 413, str(exc.detail))
