"""The attack suite: DNS rebinding, cross-site requests, tokenless form posts, GET side effects,
tokens in the wrong place and path traversal, each refused with the right status and no change
to the library, its files or the pipeline state. Plus the token file, the one-time link and the
loopback-only bind, on a real server."""

from __future__ import annotations

import base64
import http.client
import socket
import stat
from pathlib import Path

import pytest
from api_support import PORT, TOKEN, Harness, harness, jpeg_bytes, live_server, png_bytes, simple_look

from facetory_cam.api.security import TOKEN_ENV, Credentials, issue_token

P = PORT
FORGED_HOSTS = [
    "attacker.example",
    f"attacker.example:{P}",
    f"localhost.attacker.example:{P}",
    f"127.0.0.1.nip.io:{P}",
    f"localtest.me:{P}",
    f"192.168.1.5:{P}",
    f"10.0.0.1:{P}",
    f"0.0.0.0:{P}",
    f"127.0.0.2:{P}",
    f"127.1:{P}",
    f"2130706433:{P}",
    f"0x7f000001:{P}",
    f"[::ffff:127.0.0.1]:{P}",
    f"[::]:{P}",
    f"[0:0:0:0:0:0:0:1]:{P}",
    f"[::1%25lo]:{P}",
    "[::1]",
    "127.0.0.1",  # no port: not our origin
    "localhost",
    f"localhost:{P + 1}",
    f"localhost.:{P}",
    f"localhost:{P}.attacker.example",
    f"user@localhost:{P}",
    "",
]
CROSS_ORIGINS = [
    "https://evil.example",
    "http://evil.example",
    f"http://127.0.0.1.evil.com:{P}",
    f"http://localhost:{P}.evil.com",
    f"http://localhost.evil.com:{P}",
    "null",
    f"http://127.0.0.1:{P + 1}",
    "http://127.0.0.1",
    f"https://127.0.0.1:{P}",
    f"http://[::1]:{P}@evil.example",
    f"HTTP://EVIL.EXAMPLE:{P}",
]


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory):
    with harness(tmp_path_factory.mktemp("sec")) as hh:
        client = hh.client()
        look = client.post("/api/looks", json=simple_look("Victim")).json()
        client.put("/api/state", json={"look": look["id"], "intensity": 0.7})
        hh.victim = look["id"]  # type: ignore[attr-defined]
        yield hh


def _unchanged(h: Harness, before: dict) -> None:
    assert h.fingerprint() == before


MUTATIONS = [
    ("PUT", "/api/state", {"json": {"intensity": 0.1, "enabled": False}}),
    ("POST", "/api/looks", {"json": simple_look("Injected")}),
    ("POST", "/api/snapshot", {"json": {}}),
]


@pytest.mark.parametrize("host", FORGED_HOSTS)
def test_forged_host_is_421_even_with_the_token(h: Harness, host: str) -> None:
    before = h.fingerprint()
    client = h.client()
    assert client.get("/api/state", headers={"Host": host}).status_code == 421
    for method, path, kw in MUTATIONS:
        r = client.request(method, path, headers={"Host": host}, **kw)
        assert r.status_code == 421, (host, path, r.text)
        assert "localhost" in r.json()["detail"]
    _unchanged(h, before)


@pytest.mark.parametrize("origin", CROSS_ORIGINS)
def test_cross_origin_is_403_even_with_the_token(h: Harness, origin: str) -> None:
    before = h.fingerprint()
    client = h.client()
    for method, path, kw in [("GET", "/api/state", {}), *MUTATIONS]:
        r = client.request(method, path, headers={"Origin": origin}, **kw)
        assert r.status_code == 403, (origin, method, path, r.text)
    _unchanged(h, before)


@pytest.mark.parametrize("site", ["cross-site", "same-site", "CROSS-SITE"])
def test_cross_site_fetch_metadata_is_403(h: Harness, site: str) -> None:
    before = h.fingerprint()
    client = h.client()
    for method, path, kw in [("GET", "/api/preview.jpg", {}), *MUTATIONS]:
        assert client.request(method, path, headers={"Sec-Fetch-Site": site}, **kw).status_code == 403
    _unchanged(h, before)


def test_own_origins_and_same_origin_fetches_are_allowed(h: Harness) -> None:
    client = h.client()
    for origin in (f"http://127.0.0.1:{P}", f"http://localhost:{P}", f"http://[::1]:{P}"):
        assert client.get("/api/state", headers={"Origin": origin}).status_code == 200
    for site in ("same-origin", "none"):
        assert client.get("/api/state", headers={"Sec-Fetch-Site": site}).status_code == 200
    for host in (f"127.0.0.1:{P}", f"localhost:{P}", f"[::1]:{P}", f"LOCALHOST:{P}"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    ("path", "field"), [("/api/looks/extract", "photo"), ("/api/looks/import", "bundle")], ids=["extract", "import"]
)
@pytest.mark.parametrize("origin", [None, "https://evil.example"])
def test_tokenless_cross_site_form_post_does_nothing(h: Harness, path: str, field: str, origin: str | None) -> None:
    """The classic attack: a hidden <form enctype=multipart/form-data> auto-submitted to localhost."""
    before = h.fingerprint()
    client = h.client(auth=False)
    headers = {"Origin": origin} if origin else {}
    r = client.post(path, files={field: ("me.jpg", jpeg_bytes(), "image/jpeg")}, headers=headers)
    assert r.status_code == (403 if origin else 401), r.text
    form = client.post(
        "/api/state",
        content=b"intensity=0",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code in ((403,) if origin else (401,))
    _unchanged(h, before)


def test_every_route_needs_the_token_except_health(h: Harness) -> None:
    client = h.client(auth=False)
    app = h.app()
    checked = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or []):
            if not path.startswith("/api/") or method == "HEAD":
                continue
            url = path.replace("{look_id}", "preset:natural")
            r = client.request(method, url)
            expected = 200 if path == "/api/health" else 401
            assert r.status_code == expected, (method, url, r.status_code)
            checked += 1
    for path in ("/docs", "/openapi.json"):
        assert client.get(path).status_code == 401
    assert checked >= 20


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Basic {base64.b64encode(f'user:{TOKEN}'.encode()).decode()}"},
        {"Authorization": f"Token {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer  {TOKEN} extra"},
        {"X-Api-Token": TOKEN},
        {"Cookie": f"facetory_session_{P}={TOKEN}"},
        {"Cookie": f"token={TOKEN}"},
    ],
    ids=lambda h: next(iter(h)) + ":" + next(iter(h.values()))[:12],
)
def test_token_in_the_wrong_place_or_form_is_401(h: Harness, headers: dict[str, str]) -> None:
    before = h.fingerprint()
    client = h.client(auth=False)
    assert client.get("/api/state", headers=headers).status_code == 401
    assert client.put("/api/state", json={"intensity": 0.0}, headers=headers).status_code == 401
    _unchanged(h, before)


def test_token_in_an_api_query_string_is_refused_even_when_right(h: Harness) -> None:
    before = h.fingerprint()
    client = h.client(auth=False)
    for path in ("/api/state", "/api/looks", "/api/preview.jpg"):
        r = client.get(f"{path}?token={TOKEN}")
        assert r.status_code == 401 and "Authorization" in r.json()["detail"]
    assert client.put(f"/api/state?token={TOKEN}", json={"intensity": 0.0}).status_code == 401
    code = h.deps.credentials.new_link_code()
    assert client.get(f"/api/state?token={code}").status_code == 401  # a link code is no API credential either
    assert h.client(auth=True).get(f"/api/state?token={TOKEN}").status_code == 401  # not even next to a good header
    _unchanged(h, before)


def test_get_never_changes_state(h: Harness) -> None:
    before = h.fingerprint()
    client = h.client()
    for path in ("/api/snapshot", "/api/looks/extract", "/api/looks/import", "/api/session/link"):
        r = client.get(path)
        assert r.status_code == 405, (path, r.status_code)
    # Query strings that look like commands are ignored by GET routes.
    victim = h.victim  # type: ignore[attr-defined]
    for path in (
        "/api/state?intensity=0&enabled=false&look=preset:glam",
        f"/api/looks/{victim}?delete=1&_method=DELETE",
        f"/api/looks/{victim}/export?delete=true",
        "/api/looks?name=x",
    ):
        assert client.get(path).status_code == 200
    # Every GET route, called: nothing moves.
    for route in h.app().routes:
        if "GET" in (getattr(route, "methods", None) or ()) and route.path.startswith("/api/"):  # type: ignore[attr-defined]
            url = route.path.replace("{look_id}", victim)  # type: ignore[attr-defined]
            if url.endswith(".mjpg"):
                url += "?frames=1"
            assert client.get(url).status_code < 500
    _unchanged(h, before)
    assert client.get("/api/state").json()["intensity"] == 0.7


TRAVERSAL_IDS = [
    "..",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%2F..%2Fetc%2Fpasswd",
    "..%5C..%5Cwindows%5Cwin.ini",
    "%2Fetc%2Fpasswd",
    "%252e%252e%252f",
    "preset:..%2F..%2Fetc",
    "preset:..",
    "preset:%2e%2e",
    "preset:natural%00.json",
    "C:%5CWindows%5Csystem32",
    "%00",
    "~root",
    "a" * 81,
    "0123456789abcdef0123456789abcdeg",
    "0123456789ABCDEF0123456789ABCDEF",
]


@pytest.mark.parametrize("look_id", TRAVERSAL_IDS)
def test_path_traversal_ids_are_refused(h: Harness, look_id: str) -> None:
    before = h.fingerprint()
    client = h.client()
    for method, suffix, kw in (
        ("GET", "", {}),
        ("GET", "/export", {}),
        ("GET", "/thumbnail.png", {}),
        ("PUT", "", {"json": simple_look("Overwrite")}),
        ("DELETE", "", {}),
    ):
        r = client.request(method, f"/api/looks/{look_id}{suffix}", **kw)
        assert r.status_code in (400, 404, 405, 422), (method, look_id, suffix, r.status_code)
    r = client.put("/api/state", json={"look": look_id.replace("%2F", "/").replace("%2e", ".")})
    assert r.status_code in (400, 404, 422)
    r = client.post("/api/snapshot", json={"save_thumbnail_to": "../../etc/passwd"})
    assert r.status_code in (400, 422)
    _unchanged(h, before)


def test_json_routes_refuse_other_content_types(h: Harness) -> None:
    before = h.fingerprint()
    client = h.client()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        r = client.put("/api/state", content=b'{"intensity": 0}', headers={"Content-Type": ctype})
        assert r.status_code == 415, ctype
    r = client.post("/api/looks/extract", json={"photo": "x"})
    assert r.status_code == 415
    _unchanged(h, before)


def test_no_cors_headers_and_preflight_from_elsewhere_is_refused(h: Harness) -> None:
    client = h.client(auth=False)
    r = client.options(
        "/api/state",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert r.status_code == 403
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    ok = h.client().get("/api/state", headers={"Origin": f"http://127.0.0.1:{P}"})
    assert not any(k.lower().startswith("access-control-") for k in ok.headers)
    assert ok.headers["x-content-type-options"] == "nosniff" and ok.headers["cache-control"] == "no-store"


def test_one_time_link_gives_a_strict_httponly_cookie_and_works_once(h: Harness) -> None:
    code = h.deps.credentials.new_link_code()
    browser = h.client(auth=False, follow_redirects=False)
    r = browser.get(f"/docs?token={code}&x=1")
    assert r.status_code == 303 and r.headers["location"] == "/docs?x=1"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    jar = {"Cookie": session}
    fresh = h.client(auth=False)
    assert fresh.get("/api/state", headers=jar).status_code == 200
    assert fresh.get("/docs", headers=jar).status_code == 200
    # Used once: a replay of the link is refused, and no second cookie is given.
    again = h.client(auth=False, follow_redirects=False).get(f"/?token={code}")
    assert again.status_code == 403 and "set-cookie" not in again.headers
    # A cookie alone cannot write: the browser must also show our own origin (or same-origin fetch metadata).
    before = h.fingerprint()
    assert fresh.put("/api/state", json={"intensity": 0.2}, headers=jar).status_code == 403
    assert (
        fresh.put("/api/state", json={"intensity": 0.2}, headers={**jar, "Origin": "https://evil"}).status_code == 403
    )
    _unchanged(h, before)
    ok = fresh.put("/api/state", json={"intensity": 0.7}, headers={**jar, "Origin": f"http://localhost:{P}"})
    assert ok.status_code == 200
    ok = fresh.put("/api/state", json={"intensity": 0.7}, headers={**jar, "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200
    # The API token is not a link code, and a made-up code is not one either.
    for bad in (TOKEN, "x" * 43):
        assert h.client(auth=False, follow_redirects=False).get(f"/?token={bad}").status_code == 403


def test_link_codes_expire(h: Harness) -> None:
    creds = Credentials(TOKEN)
    code = creds.new_link_code(ttl_s=-1.0)
    assert creds.redeem_link(code) is None
    code = creds.new_link_code()
    session = creds.redeem_link(code)
    assert session and creds.check_session(session) and not creds.check_session(session + "x")


def test_token_file_is_private_random_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "api-token"
    first = issue_token(path=path, env={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first and len(first) == 64 and int(first, 16) >= 0
    second = issue_token(path=path, env={})
    assert second != first and path.read_text().strip() == second  # rotated every start
    assert [p.name for p in path.parent.iterdir()] == ["api-token"]  # no temp file left
    given = "e" * 40
    other = tmp_path / "other" / "api-token"
    assert issue_token(path=other, env={TOKEN_ENV: given}) == given and not other.exists()
    with pytest.raises(ValueError, match=TOKEN_ENV):
        issue_token(path=other, env={TOKEN_ENV: "short"})
    with pytest.raises(ValueError):
        Credentials("short")


def _raw(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_real_server_loopback_only_and_raw_attacks(h: Harness) -> None:
    before = h.fingerprint()
    with live_server(h) as (server, client):
        hosts = {s.getsockname()[0] for s in server.sockets}
        assert hosts <= {"127.0.0.1", "::1"} and "127.0.0.1" in hosts
        assert client.get("/api/state").status_code == 200
        port = server.port
        # Not reachable on the machine's other addresses.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("10.255.255.255", 1))
            lan_ip = probe.getsockname()[0]
        except OSError:
            lan_ip = None
        finally:
            probe.close()
        if lan_ip and not lan_ip.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((lan_ip, port), timeout=2).close()
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        cases = [
            (b"GET /api/state HTTP/1.1\r\nHost: attacker.example\r\n" + auth + b"\r\n", 421),
            # two Host headers: the HTTP parser itself refuses (400) before the app sees it
            (f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil\r\n".encode() + auth + b"\r\n", 400),
            (b"GET /api/state HTTP/1.0\r\n" + auth + b"\r\n", 421),  # no Host at all
            (f"GET /api/looks/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + auth + b"\r\n", 404),
            (
                f"GET /api/looks/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
                + auth
                + b"\r\n",
                404,
            ),
            (f"GET /api/state?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode(), 401),
            (
                f"PUT /api/state HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: text/plain\r\n".encode()
                + auth
                + b'Content-Length: 17\r\n\r\n{"intensity": 0}',
                415,
            ),
        ]
        for request, status in cases:
            got, data = _raw(port, request)
            assert got == status, (request[:60], data[:200])
        # The same rebinding check over IPv6 loopback, where the machine has it.
        if "::1" in hosts:
            conn = http.client.HTTPConnection("::1", port, timeout=10)
            conn.request("GET", "/api/state", headers={"Host": "attacker.example", "Authorization": f"Bearer {TOKEN}"})
            assert conn.getresponse().status == 421
            conn.close()
            conn = http.client.HTTPConnection("::1", port, timeout=10)
            conn.request("GET", "/api/state", headers={"Host": f"[::1]:{port}", "Authorization": f"Bearer {TOKEN}"})
            assert conn.getresponse().status == 200
            conn.close()
    _unchanged(h, before)


def test_uploads_need_token_before_any_byte_is_parsed(h: Harness, tmp_path: Path) -> None:
    """A tokenless upload is refused at the door: the library and temp folders stay as they were."""
    before = h.fingerprint()
    client = h.client(auth=False)
    r = client.post("/api/looks/import", files={"bundle": ("x.facetory", png_bytes() * 1000, "application/zip")})
    assert r.status_code == 401
    _unchanged(h, before)
