"""``facetory run`` serves the API: a one-time link on stderr, the token in a 0600 file, clean stop."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    env.pop("FACETORY_API_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "facetory_cam", "run", "--source", "scripted:320x240@30", "--sink", "null", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"{pattern!r} not in: {''.join(seen)}")


def test_run_serves_the_api_and_stops_cleanly(store, tmp_path: Path) -> None:
    proc = _start(tmp_path, "--look", "natural", "--port", "0")
    try:
        link = _read_until(proc, r"one-time link\): (http://127\.0\.0\.1:(\d+)/\?token=\S+)", 60).group(1)
        port = int(link.split(":")[2].split("/")[0])
        token_file = tmp_path / "config" / "facetory-cam" / "api-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in link
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            state = c.get("/api/state").json()
            assert state["look"] == "preset:natural" and state["sources"][0]["spec"] == "scripted:320x240@30"
            assert c.put("/api/state", json={"look": "preset:glam"}).json()["look_name"] == "Glam"
            deadline = time.monotonic() + 5
            while c.get("/api/stats").json()["state"]["look"] != "Glam":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.get("/api/preview.jpg").content[:3] == b"\xff\xd8\xff"
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as browser:
            r = browser.get(link.removeprefix(base))
            assert r.status_code == 303 and "HttpOnly" in r.headers["set-cookie"]
            assert browser.get("/api/state").status_code == 200  # the browser is logged in by its cookie
            assert browser.get(link.removeprefix(base)).status_code == 403  # and the link is spent
        assert (tmp_path / "data" / "facetory-cam" / "library" / "library.sqlite3").is_file()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < 4.0
    finally:
        proc.kill()
    with httpx.Client(timeout=2) as c:
        try:
            c.get(f"http://127.0.0.1:{port}/api/health")
            raise AssertionError("the API outlived the daemon")
        except httpx.ConnectError:
            pass


def test_no_api_flag(store, tmp_path: Path) -> None:
    proc = _start(tmp_path, "--look", "none", "--no-api", "--stats-every", "0.5")
    try:
        _read_until(proc, r"in fps", 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "one-time link" not in err and not (tmp_path / "config" / "facetory-cam" / "api-token").exists()


def test_shutdown_route_stops_the_daemon(store, tmp_path: Path) -> None:
    proc = _start(tmp_path, "--look", "natural", "--port", "0")
    try:
        link = _read_until(proc, r"one-time link\): (http://127\.0\.0\.1:(\d+)/\?token=\S+)", 60).group(1)
        port = int(link.split(":")[2].split("/")[0])
        token = (tmp_path / "config" / "facetory-cam" / "api-token").read_text().strip()
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/api/shutdown", timeout=5).status_code == 401  # never without the token
        assert proc.poll() is None
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            t0 = time.monotonic()
            r = c.post("/api/shutdown", json={})
            assert r.status_code == 202 and r.json() == {"stopping": True}
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < 4.0 and "stopped in" in err
    finally:
        proc.kill()
