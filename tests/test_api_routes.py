"""The API doing its job against a real pipeline: state, looks, sharing, previews, snapshots, stats."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from api_support import Harness, harness, live_server, simple_look, texture_png
from PIL import Image

from facetory_cam.api.store import TEXTURE_REF
from facetory_cam.sources.scripted import decode_seq


@pytest.fixture()
def h(tmp_path: Path):
    with harness(tmp_path) as hh:
        yield hh


def _applied(h: Harness, key: str, value: object, timeout: float = 5.0) -> None:
    """Wait until the pipeline's own snapshot shows ``key == value`` (commands apply between frames)."""
    deadline = time.monotonic() + timeout
    while h.pipeline.snapshot()["state"][key] != value:
        assert time.monotonic() < deadline, (key, value, h.pipeline.snapshot()["state"])
        time.sleep(0.02)


def test_state_changes_reach_the_pipeline(h: Harness) -> None:
    c = h.client()
    r = c.put("/api/state", json={"look": "preset:glam", "intensity": 0.25, "layers": {"blush": False}})
    assert r.status_code == 200
    body = r.json()
    assert body["look"] == "preset:glam" and body["look_name"] == "Glam" and body["intensity"] == 0.25
    assert body["layers"]["blush"] is False and body["layers"]["lipstick"] is True
    _applied(h, "look", "Glam")
    _applied(h, "intensity", 0.25)
    _applied(h, "disabled_layers", ["blush"])
    assert c.get("/api/state").json() == body
    assert c.put("/api/state", json={"enabled": False}).json()["enabled"] is False
    _applied(h, "bypass", True)
    assert c.put("/api/state", json={"look": None, "enabled": True}).json()["look"] is None
    _applied(h, "look", None)


def test_bad_state_changes_change_nothing(h: Harness) -> None:
    c = h.client()
    c.put("/api/state", json={"look": "preset:natural", "intensity": 0.5})
    before = c.get("/api/state").json()
    for body, status in (
        ({"intensity": 1.5}, 422),
        ({"intensity": -0.1}, 422),
        ({"look": "preset:glam", "layers": {"nosuchlayer": True}}, 422),  # all or nothing: the look stays
        ({"look": "preset:nope"}, 404),
        ({"look": "0" * 32}, 404),
        ({"source": {"index": 3, "spec": "0"}}, 422),
        ({"source": {"index": 0, "spec": "/home/user/private.mp4"}}, 422),
        ({"source": {"index": 0, "spec": "http://evil.example/cam"}}, 422),
        ({"unknown": 1}, 422),
        ({"intensity": "NaN"}, 422),
    ):
        r = c.put("/api/state", json=body)
        assert r.status_code == status, (body, r.text)
    assert c.get("/api/state").json() == before
    time.sleep(0.2)
    assert h.pipeline.snapshot()["state"]["look"] == "Natural"


def test_source_switch_goes_to_the_capture(h: Harness) -> None:
    c = h.client()
    r = c.put("/api/state", json={"source": {"index": 0, "spec": "scripted:160x120@15"}})
    assert r.status_code == 200 and r.json()["sources"] == [{"index": 0, "spec": "scripted:160x120@15"}]
    deadline = time.monotonic() + 5
    while h.pipeline.captures[0].source_name != "scripted:160x120@15":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    h.wait_frames(10)  # still running, letterboxed into the fixed output size


def test_look_lifecycle_with_texture(h: Harness) -> None:
    c = h.client()
    uri = "data:image/png;base64," + base64.b64encode(texture_png()).decode()
    r = c.post("/api/looks", json=simple_look("Painted", layers={"texture": {"image": uri}}))
    assert r.status_code == 201, r.text
    created = r.json()
    lid = created["id"]
    assert created["look"]["layers"]["texture"]["image"] == TEXTURE_REF and created["has_texture"]
    tex = c.get(created["texture_url"])
    assert tex.status_code == 200 and tex.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(tex.content)) as im:
        assert im.mode == "RGBA" and im.size == (64, 64)
    assert any(x["id"] == lid for x in c.get("/api/looks").json())
    # Activate it, then edit it: the pipeline picks up the new version live.
    assert c.put("/api/state", json={"look": lid}).status_code == 200
    _applied(h, "look", "Painted")
    doc = created["look"]
    doc["name"] = "Painted again"
    r = c.put(f"/api/looks/{lid}", json=doc)  # texture.png keeps the texture
    assert r.status_code == 200 and r.json()["has_texture"] and r.json()["name"] == "Painted again"
    _applied(h, "look", "Painted again")
    # The look on camera cannot be deleted from under the call.
    assert c.delete(f"/api/looks/{lid}").status_code == 409
    c.put("/api/state", json={"look": "preset:natural"})
    assert c.delete(f"/api/looks/{lid}").status_code == 204
    assert c.get(f"/api/looks/{lid}").status_code == 404
    assert c.delete(f"/api/looks/{lid}").status_code == 404
    assert h.store.verify() == [] and list((h.library / "textures").iterdir()) == []


def test_presets_are_read_only_over_http(h: Harness) -> None:
    c = h.client()
    looks = c.get("/api/looks").json()
    presets = [x for x in looks if x["read_only"]]
    assert {"preset:natural", "preset:glam"} <= {x["id"] for x in presets}
    assert c.put("/api/looks/preset:natural", json=simple_look()).status_code == 403
    assert c.delete("/api/looks/preset:natural").status_code == 403
    detail = c.get("/api/looks/preset:natural").json()
    assert detail["look"]["name"] == "Natural" and detail["source"] == "preset"


def test_export_import_over_http(h: Harness) -> None:
    c = h.client()
    lid = c.post("/api/looks", json=simple_look("Share me")).json()["id"]
    h.wait_frames(2)
    assert c.post("/api/snapshot", json={"save_thumbnail_to": lid}).status_code == 200
    r = c.get(f"/api/looks/{lid}/export")
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="Share-me.facetory"'
    back = c.post("/api/looks/import", files={"bundle": ("whatever.facetory", r.content)})
    assert back.status_code == 201, back.text
    got = back.json()
    assert got["id"] != lid and got["name"] == "Share me" and got["source"] == "shared" and got["thumbnail_url"]
    thumb = c.get(got["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["x-content-type-options"] == "nosniff"
    assert c.post("/api/looks/import", files={"bundle": ("x", b"not a zip")}).status_code == 400
    assert c.get("/api/looks/preset:natural/export").status_code == 200
    assert h.store.verify() == []


def test_preview_views_and_snapshot(h: Harness) -> None:
    c = h.client()
    for view in ("after", "before", "split"):
        r = c.get(f"/api/preview.mjpg?view={view}&frames=3&fps=30")
        assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert r.content.count(b"Content-Type: image/jpeg") == 3
        still = c.get(f"/api/preview.jpg?view={view}")
        with Image.open(io.BytesIO(still.content)) as im:
            assert im.size == (320, 240)
    assert c.get("/api/preview.jpg?view=sideways").status_code == 422
    assert c.get("/api/preview.jpg?source=5").status_code == 404
    snap = c.post("/api/snapshot")
    assert snap.status_code == 200 and snap.content[:8] == b"\x89PNG\r\n\x1a\n"
    frame = np.asarray(Image.open(io.BytesIO(snap.content)).convert("RGB"))
    assert frame.shape == (240, 320, 3) and decode_seq(frame) is not None  # a real camera frame
    assert c.post("/api/snapshot", json={"save_thumbnail_to": "preset:natural"}).status_code == 403
    stats = c.get("/api/stats").json()
    assert stats["counters"]["frames_out"] > 0 and "latency" in stats


def test_before_and_after_differ_where_the_makeup_is(tmp_path: Path, perception, astronaut) -> None:
    from facetory_cam.config import Settings

    image = np.ascontiguousarray(astronaut[:384, 64:448])
    tracker = perception.tracker_from_settings(Settings())
    with harness(tmp_path, tracker=tracker, base_image=image) as h:
        c = h.client()
        c.put("/api/state", json={"look": "preset:bold-red-lip"})
        _applied(h, "look", "Bold Red Lip")
        h.wait_frames(30, timeout=30)
        views = {}
        for view in ("before", "after", "split"):
            jpeg = c.get(f"/api/preview.jpg?view={view}").content
            views[view] = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)
        diff = np.abs(views["after"] - views["before"]).sum(axis=2)
        assert (diff > 40).mean() > 0.002  # the lips changed
        assert views["split"].shape == views["after"].shape


def test_one_time_link_and_panel_mount(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        static = tmp_path / "static"
        static.mkdir()
        (static / "index.html").write_text("<h1>panel</h1>")
        h.deps.static_dir = static
        c = h.client()
        url = c.post("/api/session/link").json()["url"]
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        browser = h.client(auth=False, follow_redirects=False)
        parts = urlsplit(url)
        r = browser.get(f"{parts.path}?{parts.query}")
        assert r.status_code == 303 and r.headers["location"] == "/"
        page = h.client(auth=False).get("/")
        assert page.status_code == 200 and "panel" in page.text
    with harness(tmp_path / "b") as h:
        r = h.client(follow_redirects=False).get("/")
        assert r.status_code == 303 and r.headers["location"] == "/docs"
        assert h.client().get("/docs").status_code == 200


def test_real_server_serves_and_stops(h: Harness) -> None:
    with live_server(h) as (server, client):
        assert client.get("/api/health").json() == {"status": "ok"}
        with client.stream("GET", "/api/preview.mjpg?frames=2") as r:
            parts = b"".join(r.iter_bytes())
        assert parts.count(b"--frame") == 2
        assert client.get("/openapi.json").json()["info"]["title"] == "Facetory Cam local API"
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_extract_with_the_real_extractor(tmp_path: Path, perception, astronaut) -> None:
    from facetory_cam.api.extraction import extractor_for
    from facetory_cam.config import Settings

    extractor = extractor_for(lambda: perception, Settings())
    if extractor is None:
        pytest.skip("this build has no extractor")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="JPEG", quality=92)
    photo = buf.getvalue()
    with harness(tmp_path, extractor=extractor) as h:
        c = h.client()
        r = c.post("/api/looks/extract", files={"photo": ("astronaut.jpg", photo, "image/jpeg")})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["face"] == 0 and len(body["faces"]) >= 1
        x0, y0, x1, y1 = body["faces"][0]["box"]
        assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512  # in the uploaded photo's pixels
        look = body["look"]
        assert look["source"] == "photo" and not look["read_only"]
        assert look["look"]["provenance"]["photo_sha256"] == __import__("hashlib").sha256(photo).hexdigest()
        assert c.put("/api/state", json={"look": look["id"]}).status_code == 200
        bad = c.post("/api/looks/extract", files={"photo": ("a.jpg", photo, "image/jpeg")}, data={"face": "7"})
        assert bad.status_code == 422, bad.text
        assert h.store.count() == 1 and h.store.verify() == []


def test_snapshot_frame_has_the_output_size() -> None:
    """With an output size unlike the source's, a snapshot shows what the camera shows: letterboxed."""
    import numpy as np

    from facetory_cam.api.preview import LivePreview
    from facetory_cam.sinks.preview import PreviewSink

    live = LivePreview(outputs={"0": PreviewSink((320, 240), 30.0)})
    assert live.latest_frame("0") is None
    after = np.full((360, 640, 3), 200, np.uint8)
    live.observe("0", after, after)
    shot = live.latest_frame("0")
    assert shot is not None and shot.shape == (240, 320, 3)
    assert shot[:25].max() == 0 and shot[120, 160, 0] == 200  # bars above and below, picture in the middle
    bare = LivePreview()
    bare.observe("0", after, after)
    assert bare.latest_frame("0").shape == (360, 640, 3)
