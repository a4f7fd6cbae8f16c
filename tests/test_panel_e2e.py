"""The web panel end to end: headless Chromium (the system browser, driven by Playwright) against a real
``facetory run`` daemon on an image source, logging in through its one-time link like a user would."""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"open the panel \(one-time link\): (http://\S+)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # the dev extra installs it; without it the module skips
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install playwright)"),
]


@dataclass
class Daemon:
    """A running ``facetory run`` with its API reachable as a client with the token."""

    base: str
    first_link: str
    api: httpx.Client
    log: list[str] = field(default_factory=list)

    def link(self) -> str:
        """A fresh one-time login link, as the tray asks for one."""
        return self.api.post("/api/session/link").json()["url"]

    def user_looks(self) -> list[dict[str, Any]]:
        return [lk for lk in self.api.get("/api/looks").json() if not lk["read_only"]]

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Poll the API until ``check`` gives something truthy (the panel debounces its writes)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _drain(stream: Any, lines: list[str], found: queue.Queue[str]) -> None:
    for line in stream:
        lines.append(line)
        m = LINK.search(line)
        if m:
            found.put(m.group(1))


@pytest.fixture(scope="module")
def daemon(store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """``facetory run`` on the astronaut photo, null sink, a free port, its token and library in a temp dir."""
    import skimage.data

    tmp = tmp_path_factory.mktemp("daemon")
    photo = tmp / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACETORY_")}
    env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "facetory_cam", "run", "--source", str(photo), "--sink", "null", "--look", "none"]
    proc = subprocess.Popen(
        [*cmd, "--port", "0"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    lines: list[str] = []
    found: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_drain, args=(proc.stderr, lines, found), daemon=True)
    reader.start()
    try:
        try:
            link = found.get(timeout=90)
        except queue.Empty:
            raise AssertionError(f"the daemon printed no login link (exit {proc.poll()}):\n{''.join(lines)}") from None
        base = link.split("/?", 1)[0]
        token = (tmp / "config" / "facetory-cam" / "api-token").read_text(encoding="ascii").strip()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as api:
            yield Daemon(base, link, api, lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Session:
    context: BrowserContext
    page: Page
    requests: list[str]
    page_errors: list[str]


def _open(browser: Browser, daemon: Daemon, link: str, tmp_path: Path, **context: Any) -> Session:
    ctx = browser.new_context(accept_downloads=True, **context)
    page = ctx.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    resp = page.goto(link, wait_until="domcontentloaded")
    assert resp is not None and resp.ok
    assert page.url == daemon.base + "/"  # the code left the address bar: a reload cannot replay it
    expect(page.locator("#connection")).to_have_text("Connected")
    return Session(ctx, page, requests, errors)


@pytest.fixture()
def session(browser: Browser, daemon: Daemon, tmp_path: Path) -> Iterator[Session]:
    s = _open(browser, daemon, daemon.link(), tmp_path)
    try:
        yield s
    finally:
        s.context.close()
    assert s.page_errors == [], s.page_errors
    local = (daemon.base + "/", "blob:", "data:")
    assert [u for u in s.requests if not u.startswith(local)] == []  # no CDN, no fonts, nothing external


def _drop(page: Page, selector: str, data: bytes, name: str, mime: str) -> None:
    """Drag a file onto ``selector`` the way a file manager does (a DataTransfer with the file in it)."""
    page.evaluate(
        """([selector, b64, name, mime]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: mime }));
          const zone = document.querySelector(selector);
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
          }
        }""",
        [selector, base64.b64encode(data).decode("ascii"), name, mime],
    )


def _two_faces_jpeg() -> bytes:
    import skimage.data

    face = skimage.data.astronaut()
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _preview_shows_frames(page: Page) -> None:
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0", timeout=20_000)


def test_without_the_link_the_panel_asks_for_it_and_a_link_works_once(
    browser: Browser, daemon: Daemon, tmp_path: Path
) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(daemon.base + "/", wait_until="domcontentloaded")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login")).to_contain_text("one-time link")
        expect(page.locator("#connection")).to_have_text("Not logged in")
        link = daemon.link()
        assert page.goto(link, wait_until="domcontentloaded").ok  # type: ignore[union-attr]
        expect(page.locator("#connection")).to_have_text("Connected")
        expect(page.locator("#login")).to_be_hidden()
        cookies = ctx.cookies()
        assert [(c["httpOnly"], c["sameSite"]) for c in cookies] == [(True, "Strict")]
        other = browser.new_context()
        try:
            again = other.new_page().goto(link, wait_until="domcontentloaded")
            assert again is not None and again.status == 403  # the link was used up
        finally:
            other.close()
    finally:
        ctx.close()


def test_photo_to_look_edit_save_activate_and_snapshot(session: Session, daemon: Daemon, tmp_path: Path) -> None:
    page = session.page
    daemon.api.put("/api/state", json={"look": None, "intensity": 1.0, "enabled": True}).raise_for_status()
    _preview_shows_frames(page)
    page.get_by_role("button", name="Before/after split").click()
    expect(page.get_by_role("button", name="Before/after split")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"view=split"))
    _preview_shows_frames(page)

    # A photo with two faces, dropped on the panel: the look is read, and the face picker offers both.
    before = {lk["id"] for lk in daemon.user_looks()}
    _drop(page, "#dropzone", _two_faces_jpeg(), "two.jpg", "image/jpeg")
    picker = page.locator("#faces-buttons")
    expect(picker.get_by_role("button", name="Face 1")).to_have_attribute("aria-pressed", "true", timeout=60_000)
    expect(picker.get_by_role("button")).to_have_count(2)
    expect(page.locator("#faces-boxes .face-box")).to_have_count(2)
    first = daemon.wait("the extracted look", lambda: [lk for lk in daemon.user_looks() if lk["id"] not in before])
    assert len(first) == 1 and first[0]["source"] == "photo"
    picker.get_by_role("button", name="Face 2").click()
    expect(picker.get_by_role("button", name="Face 2")).to_have_attribute("aria-pressed", "true", timeout=60_000)
    second = daemon.wait(
        "the look from face 2 replacing the first",
        lambda: (
            [lk for lk in daemon.user_looks() if lk["id"] not in before and lk["id"] != first[0]["id"]]
            if first[0]["id"] not in {lk["id"] for lk in daemon.user_looks()}
            else None
        ),
    )
    assert len(second) == 1
    look_id = second[0]["id"]
    expect(page.locator("#editor")).to_be_visible()
    expect(page.locator("#look-name")).to_have_value(second[0]["name"])
    lips = page.locator("fieldset[data-layer='lipstick']")
    expect(lips).to_be_visible()

    # Keyboard on a slider: Home, then 40 steps right = opacity 0.40; a colour through the colour input.
    slider = page.locator("#layer-lipstick-opacity")
    slider.focus()
    page.keyboard.press("Home")
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    expect(lips.locator("output[for='layer-lipstick-opacity']")).to_have_text("40 %")
    expect(slider).to_have_attribute("aria-valuetext", "40 %")
    page.locator("#layer-lipstick-color").fill("#aa2244")

    def lipstick() -> dict[str, Any]:
        return daemon.api.get(f"/api/looks/{look_id}").json()["look"]["layers"]["lipstick"]

    daemon.wait(
        "the slider and colour saved", lambda: lipstick()["opacity"] == 0.4 and lipstick()["color"] == "#aa2244"
    )

    page.locator("#look-name").fill("E2E look")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#status")).to_have_text("Saved E2E look.")
    assert daemon.api.get(f"/api/looks/{look_id}").json()["name"] == "E2E look"

    page.locator("#activate").click()
    expect(page.locator("#active-name")).to_have_text("E2E look")
    assert daemon.api.get("/api/state").json()["look"] == look_id
    expect(page.locator(f"#grid li[data-id='{look_id}'] .meta")).to_contain_text("on camera")

    # Live controls: global intensity, a layer switched off on camera, bypass.
    page.locator("#global-intensity").fill("0.6")
    daemon.wait("global intensity 0.6", lambda: daemon.api.get("/api/state").json()["intensity"] == 0.6)
    page.locator("#state-layer-lipstick").uncheck()
    daemon.wait("lipstick off on camera", lambda: daemon.api.get("/api/state").json()["layers"]["lipstick"] is False)
    page.locator("#state-layer-lipstick").check()
    page.get_by_role("switch", name="Makeup filter on").uncheck()
    daemon.wait("bypass", lambda: daemon.api.get("/api/state").json()["enabled"] is False)
    page.get_by_role("switch", name="Makeup filter on").check()
    daemon.wait("filter back on", lambda: daemon.api.get("/api/state").json()["enabled"] is True)
    assert daemon.api.get("/api/state").json()["layers"]["lipstick"] is True

    # Snapshot, downloaded, at the camera's output size; it also becomes the active look's thumbnail.
    page.locator("#snapshot-thumb").check()
    page.get_by_role("button", name="Take snapshot").click()
    expect(page.locator("#snapshot-result")).to_be_visible()
    with page.expect_download() as got:
        page.get_by_role("link", name="Download snapshot").click()
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    assert saved.suffix == ".png"
    output = daemon.api.get("/api/stats").json()["sources"]["0"]["size"]
    with Image.open(saved) as png:
        png.load()
        assert png.format == "PNG" and list(png.size) == output == [1280, 720]
    expect(page.locator(f"#grid li[data-id='{look_id}'] img.thumb")).to_have_count(1)
    page.wait_for_function(
        "id => document.querySelector(`#grid li[data-id='${id}'] img.thumb`).naturalWidth > 0", arg=look_id
    )


def test_export_import_delete_and_readable_errors(session: Session, daemon: Daemon, tmp_path: Path) -> None:
    page = session.page
    doc = {"schema_version": 1, "name": "Bundle me", "layers": {"blush": {"color": "#dd7788", "opacity": 0.3}}}
    look_id = daemon.api.post("/api/looks", json=doc).json()["id"]
    daemon.api.put("/api/state", json={"look": look_id}).raise_for_status()
    page.reload(wait_until="domcontentloaded")
    card = page.locator(f"#grid li[data-id='{look_id}']")
    card.locator("button.pick").click()
    expect(page.locator("#look-name")).to_have_value("Bundle me")

    # Deleting the look on camera is refused by the daemon: the panel shows its reason, nothing is lost.
    page.once("dialog", lambda d: d.accept())
    page.locator("#delete").click()
    expect(page.locator("#error-text")).to_contain_text("on camera")
    assert daemon.api.get(f"/api/looks/{look_id}").status_code == 200
    page.get_by_role("button", name="Dismiss the error").click()
    expect(page.locator("#error")).to_be_hidden()

    with page.expect_download() as got:
        page.locator("#export").click()
    bundle = tmp_path / got.value.suggested_filename
    got.value.save_as(bundle)
    assert bundle.name == "Bundle-me.facetory"
    with zipfile.ZipFile(bundle) as z:
        assert json.loads(z.read("look.json"))["name"] == "Bundle me"

    count = len(daemon.user_looks())
    page.locator("#import").set_input_files(str(bundle))
    expect(page.locator("#status")).to_have_text("Imported Bundle me.")
    assert len(daemon.user_looks()) == count + 1
    imported = next(lk for lk in daemon.user_looks() if lk["name"] == "Bundle me" and lk["id"] != look_id)
    expect(page.locator(f"#grid li[data-id='{imported['id']}'] button.pick")).to_have_attribute("aria-pressed", "true")

    page.once("dialog", lambda d: d.accept())
    page.locator("#delete").click()
    expect(page.locator("#status")).to_have_text("Deleted Bundle me.")
    assert daemon.api.get(f"/api/looks/{imported['id']}").status_code == 404
    expect(page.locator(f"#grid li[data-id='{imported['id']}']")).to_have_count(0)

    # A preset is read-only: the first edit makes the user's own copy, which the camera then wears.
    daemon.api.put("/api/state", json={"look": "preset:natural"}).raise_for_status()
    page.locator("#grid li[data-id='preset:natural'] button.pick").click()
    expect(page.get_by_role("button", name="Save as a new look")).to_be_visible()
    page.locator("#look-intensity").fill("0.5")
    copy = daemon.wait(
        "a copy of the preset", lambda: [lk for lk in daemon.user_looks() if lk["name"] == "Natural (mine)"]
    )
    daemon.wait("the copy on camera", lambda: daemon.api.get("/api/state").json()["look"] == copy[0]["id"])
    assert daemon.api.get(f"/api/looks/{copy[0]['id']}").json()["look"]["intensity"] == 0.5
    assert daemon.api.get("/api/looks/preset:natural").json()["look"]["intensity"] == 1.0


FULL_LOOK: dict[str, Any] = {
    "schema_version": 1,
    "name": "Every layer, with a long name that has to wrap on a phone screen",
    "layers": {
        "foundation": {"tone": "#c89f88"},
        "skin_smoothing": {},
        "contour": {},
        "blush": {"color": "#e07a8a"},
        "eyeshadow": {"color": "#7a4a6a", "crease_color": "#3a2a3a"},
        "eyeliner": {"wing_length": 0.05},
        "mascara": {},
        "brows": {"color": "#4a3428"},
        "lipstick": {"color": "#a02040"},
        "lip_liner": {"color": "#801830"},
        "teeth_whitening": {},
        "iris": {"color": "#3a7ab0"},
    },
    "background": {"mode": "blur"},
}


def test_phone_width_keyboard_and_labels(browser: Browser, daemon: Daemon, tmp_path: Path) -> None:
    full = daemon.api.post("/api/looks", json=FULL_LOOK)
    assert full.status_code == 201, full.text
    s = _open(browser, daemon, daemon.link(), tmp_path, viewport={"width": 375, "height": 800})
    try:
        page = s.page
        # Keyboard: the first Tab lands on the skip link, which is then visible; focus rings are drawn.
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip"
        assert page.evaluate("() => document.activeElement.getBoundingClientRect().left") >= 0
        for _ in range(3):
            page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.tagName, getComputedStyle(document.activeElement).outlineStyle]"
        )
        assert focused[0] in ("BUTTON", "INPUT", "A") and focused[1] != "none", focused
        page.locator(f"#grid li[data-id='{full.json()['id']}'] button.pick").click()
        expect(page.locator("#editor fieldset.layer")).to_have_count(13)  # 12 layers and the background
        _preview_shows_frames(page)
        sizes = page.evaluate(
            """() => ({
              doc: document.documentElement.scrollWidth,
              view: document.documentElement.clientWidth,
              widest: [...document.querySelectorAll("body *")]
                .filter((e) => e.getClientRects().length > 0 && !e.closest(".skip"))
                .map((e) => [e.getBoundingClientRect().right, e.tagName + "#" + e.id + "." + e.className])
                .sort((a, b) => b[0] - a[0]).slice(0, 3),
            })"""
        )
        assert sizes["view"] == 375
        assert sizes["doc"] <= 375, sizes  # no horizontal scrolling on a phone
        assert sizes["widest"][0][0] <= 375.5, sizes
        # Every control has a label, and every clickable thing is a real button or link.
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll("input, select, textarea")]
              .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label")).map((e) => e.id || e.outerHTML)"""
        )
        assert unlabelled == []
        assert page.locator("[onclick], div[role=button], span[role=button]").count() == 0
        expect(page.locator("[role=status][aria-live=polite]")).to_have_count(1)
        assert s.page_errors == []
    finally:
        s.context.close()
