"""The tray: its menu model against the real API (real pipeline, real sockets), a daemon that is down,
and the pystray icon itself on a virtual X display, docking into a stand-in system tray."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import SIZE, TOKEN, harness, live_server
from PIL import Image

from facetory_cam.tray.client import ApiClient, ApiUnreachable, load_token
from facetory_cam.tray.menu import Action, Effects, MenuItem, build_menu, fetch_view, perform, title_of

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, httpx.Client, threading.Event]]:
    """The real app over a running pipeline on a free loopback port, a Bearer client for checking, and the
    event POST /api/shutdown sets (what `facetory run` stops on)."""
    with harness(tmp_path_factory.mktemp("tray")) as h, live_server(h) as (server, client):
        yield server.port, client, h.stop_requested


def _item(items: tuple[MenuItem, ...], label: str) -> MenuItem:
    found = [i for i in items if i.label == label]
    assert len(found) == 1, f"no single menu item {label!r} in {[i.label for i in items]}"
    return found[0]


def _checked(items: tuple[MenuItem, ...]) -> list[str]:
    return [i.label for i in items if i.checked]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_menu_follows_the_real_api_and_its_actions_change_the_daemon(
    served: tuple[int, httpx.Client, threading.Event], tmp_path: Path
) -> None:
    port, check, stop_requested = served
    client = ApiClient(port, token=TOKEN)
    opened: list[str] = []
    quits: list[bool] = []
    effects = Effects(open_url=opened.append, snapshot_dir=tmp_path / "pictures", quit=lambda: quits.append(True))
    check.put("/api/state", json={"look": None, "intensity": 1.0, "enabled": True}).raise_for_status()

    view = fetch_view(client)
    assert view.reachable
    menu = build_menu(view)
    assert _item(menu, "Camera filter on").checked is True
    looks = _item(menu, "Look").submenu
    library = check.get("/api/looks").json()
    assert [i.label for i in looks] == ["No makeup"] + [lk["name"] for lk in library]
    assert _checked(looks) == ["No makeup"] and all(i.radio for i in looks)
    assert [i.label for i in _item(menu, "Intensity").submenu] == ["25 %", "50 %", "75 %", "100 %"]
    assert _checked(_item(menu, "Intensity").submenu) == ["100 %"]
    assert _item(menu, "Open panel").default and _item(menu, "Open panel").enabled
    assert not any(i.label == "Retry now" for i in menu)
    assert "daemon keeps running" in menu[-1].label  # quit ends the tray only
    assert _item(menu, "Quit daemon").enabled

    natural = next(i for i in looks if i.label == "Natural")
    assert perform(client, natural.action, effects) == "Look: Natural"
    assert check.get("/api/state").json()["look"] == "preset:natural"
    half = _item(_item(build_menu(fetch_view(client)), "Intensity").submenu, "50 %")
    assert perform(client, half.action, effects) == "Intensity 50 %"
    view = fetch_view(client)
    menu = build_menu(view)
    assert view.state is not None and view.state["intensity"] == 0.5
    assert _checked(_item(menu, "Look").submenu) == ["Natural"]
    assert _checked(_item(menu, "Intensity").submenu) == ["50 %"]
    assert title_of(view) == "Facetory: Natural, 50 %"

    assert perform(client, _item(menu, "Camera filter on").action, effects) == "Camera filter off"
    view = fetch_view(client)
    assert view.state is not None and view.state["enabled"] is False
    assert _item(build_menu(view), "Camera filter on").checked is False
    assert title_of(view).startswith("Facetory: off")
    perform(client, _item(build_menu(view), "Camera filter on").action, effects)
    assert check.get("/api/state").json()["enabled"] is True

    # Open panel: a fresh one-time link (never the API token), which logs a browser in exactly once.
    assert perform(client, Action("open_panel"), effects) is None
    assert len(opened) == 1 and opened[0].startswith(f"http://127.0.0.1:{port}/?token=")
    assert TOKEN not in opened[0]
    with httpx.Client() as browser:
        first = browser.get(opened[0], follow_redirects=False)
        assert first.status_code == 303 and "HttpOnly" in first.headers["set-cookie"]
        assert browser.get(f"http://127.0.0.1:{port}/api/state").status_code == 200  # cookie works
        assert httpx.get(opened[0], follow_redirects=False).status_code == 403  # used up

    message = perform(client, Action("snapshot"), effects)
    assert message is not None and message.startswith("Snapshot saved to ")
    saved = Path(message.removeprefix("Snapshot saved to "))
    assert saved.parent == tmp_path / "pictures"
    with Image.open(saved) as png:
        assert png.format == "PNG" and png.size == SIZE

    # A refused change comes back as a readable message and changes nothing.
    before = check.get("/api/state").json()
    assert perform(client, Action("look", "0" * 32), effects) == "The daemon said: no look with this id"
    assert check.get("/api/state").json() == before

    assert perform(client, Action("quit"), effects) is None and quits == [True]
    assert check.get("/api/shutdown").status_code == 405  # GET never changes state
    assert not stop_requested.is_set()
    assert perform(client, _item(build_menu(fetch_view(client)), "Quit daemon").action, effects) == "Daemon stopping"
    assert stop_requested.is_set()


def test_unreachable_daemon_disables_everything_but_retry_and_quit(tmp_path: Path) -> None:
    client = ApiClient(_closed_port(), token="x" * 40, timeout=1.0)
    start = time.monotonic()
    view = fetch_view(client)
    assert time.monotonic() - start < 2.0
    assert not view.reachable and view.error is not None and "unreachable" in view.error
    menu = build_menu(view)
    assert menu[0].label == "Daemon unreachable" and not menu[0].enabled
    usable = [i.label for i in menu if i.enabled and not i.separator]
    assert usable == ["Retry now", "Quit tray (the daemon keeps running)"]
    assert not _item(menu, "Quit daemon").enabled
    assert _item(menu, "Retry now").default
    for label in ("Camera filter on", "Look", "Intensity", "Open panel", "Take snapshot"):
        assert not _item(menu, label).enabled
    assert title_of(view) == "Facetory: daemon unreachable"
    # Clicking a stale item while the daemon is down answers with a message instead of raising.
    effects = Effects(open_url=lambda url: None, snapshot_dir=tmp_path)
    message = perform(client, Action("snapshot"), effects)
    assert message is not None and "unreachable" in message
    assert list(tmp_path.iterdir()) == []


def test_wrong_or_missing_token_is_reported(served: tuple[int, httpx.Client, threading.Event], tmp_path: Path) -> None:
    port, _, _ = served
    view = fetch_view(ApiClient(port, token="w" * 40))
    assert not view.reachable and view.error is not None and "refused the API token" in view.error
    assert build_menu(view)[0].label == "Daemon unreachable"

    nowhere = tmp_path / "no-token-file"
    assert load_token(env={}, path=nowhere) is None
    with pytest.raises(ApiUnreachable, match="no API token"):
        ApiClient(port, token_path=nowhere).state()
    # The token file the daemon writes is read (and re-read: a restarted daemon has a new token).
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN + "\n", encoding="ascii")
    assert ApiClient(port, token_path=token_file).state()["intensity"] >= 0.0
    assert load_token(env={"FACETORY_API_TOKEN": "e" * 40}, path=token_file) == "e" * 40


# -- the real icon, on a virtual X display -------------------------------------------------------------

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from facetory_cam.tray.app import TrayApp
from facetory_cam.tray.client import ApiClient

port, token, pictures = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
app = TrayApp(ApiClient(port, token=token), interval=0.2, open_url=lambda url: None, pictures=pictures)
icon = app.create_icon()
thread = threading.Thread(target=app.run, name="icon")
thread.start()
deadline = time.monotonic() + 10
while not (icon.visible and app.refreshes >= 1) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"backend": type(icon).__module__, "visible": icon.visible, "title": icon.title}), flush=True)
sys.stdin.readline()
app.stop()
thread.join(5)
print(json.dumps({"stopped": not thread.is_alive()}), flush=True)
"""


@contextlib.contextmanager
def _xvfb() -> Iterator[str]:
    """Xvfb on a display it picks itself (-displayfd), so parallel runs never collide."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "320x240x24"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            number = pipe.readline().strip().decode()
        if not number.isdigit():
            pytest.skip(f"Xvfb did not start (exit code {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _tray_manager(display: object) -> tuple[object, object]:
    """A stand-in system tray: owns _NET_SYSTEM_TRAY_S0 so the icon has somewhere to dock."""
    from Xlib import X

    screen = display.screen()  # type: ignore[attr-defined]
    window = screen.root.create_window(0, 0, 1, 1, 0, screen.root_depth)
    selection = display.intern_atom("_NET_SYSTEM_TRAY_S0")  # type: ignore[attr-defined]
    window.set_selection_owner(selection, X.CurrentTime)
    display.sync()  # type: ignore[attr-defined]
    return window, display.intern_atom("_NET_SYSTEM_TRAY_OPCODE")  # type: ignore[attr-defined]


def _dock_request(display: object, opcode: object, timeout: float = 10.0) -> int:
    """Wait for the icon's SYSTEM_TRAY_REQUEST_DOCK message; returns the icon's window id."""
    from Xlib import X

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while display.pending_events():  # type: ignore[attr-defined]
            event = display.next_event()  # type: ignore[attr-defined]
            if event.type == X.ClientMessage and event.client_type == opcode:
                _fmt, data = event.data
                if data[1] == 0:  # SYSTEM_TRAY_REQUEST_DOCK
                    return int(data[2])
        time.sleep(0.05)
    raise AssertionError("the icon never asked the system tray to dock it")


def _wait_for_name(display: object, window_id: int, want: str, timeout: float = 10.0) -> str:
    window = display.create_resource_object("window", window_id)  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    name = ""
    while time.monotonic() < deadline:
        name = window.get_wm_name() or ""
        if want in name:
            return name
        time.sleep(0.1)
    raise AssertionError(f"the icon's title stayed {name!r}, never showing {want!r}")


def test_pystray_icon_docks_polls_and_stops_under_xvfb(
    served: tuple[int, httpx.Client, threading.Event], tmp_path: Path
) -> None:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    if importlib.util.find_spec("Xlib") is None:
        pytest.skip("python-xlib is not installed (pip install python-xlib)")
    if importlib.util.find_spec("pystray") is None:
        pytest.skip("pystray is not installed (pip install 'facetory-cam[tray]')")
    from Xlib.display import Display

    port, check, _ = served
    check.put("/api/state", json={"look": "preset:natural", "intensity": 1.0, "enabled": True}).raise_for_status()
    with _xvfb() as display_name:
        display = Display(display_name)
        try:
            _manager, opcode = _tray_manager(display)
            env = {**os.environ, "DISPLAY": display_name, "PYSTRAY_BACKEND": "xorg", "PYTHONPATH": str(REPO)}
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(port), TOKEN, str(tmp_path)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert child.stdout is not None and child.stdin is not None
                started = json.loads(child.stdout.readline() or "{}")
                assert started.get("backend") == "pystray._xorg", started
                assert started["visible"] is True
                assert started["title"] == "Facetory: Natural, 100 %"
                window_id = _dock_request(display, opcode)
                assert "Natural, 100 %" in _wait_for_name(display, window_id, "Natural")
                # The icon polls: a change made elsewhere (the panel) shows up in its title.
                check.put("/api/state", json={"intensity": 0.75}).raise_for_status()
                _wait_for_name(display, window_id, "Natural, 75 %")
                child.stdin.write("stop\n")
                child.stdin.flush()
                stopped = json.loads(child.stdout.readline() or "{}")
                assert stopped == {"stopped": True}
                assert child.wait(10) == 0
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                errors = child.stderr.read() if child.stderr else ""
            assert "Traceback" not in errors, errors
        finally:
            display.close()


def test_icon_artwork_is_a_64px_png_and_the_desktop_entry_starts_the_tray() -> None:
    from facetory_cam.tray.app import ARTWORK, draw_icon, icon_image

    with Image.open(ARTWORK) as art:
        assert art.format == "PNG" and art.size == (64, 64)
    assert icon_image(True).size == (64, 64)
    off = icon_image(False, artwork=REPO / "missing.png")  # drawn when the artwork is absent, greyed when off
    assert off.size == draw_icon().size
    r, g, b, _ = off.getpixel((32, 8))
    assert r == g == b
    entry = (REPO / "tray" / "facetory-tray.desktop").read_text(encoding="utf-8")
    assert "\nExec=facetory tray\n" in entry and "[Desktop Entry]" in entry
    buf = io.BytesIO()
    draw_icon().save(buf, format="PNG")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
