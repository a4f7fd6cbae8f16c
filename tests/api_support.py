"""Shared set-up for the API tests: a real pipeline on a scripted camera, a temp library, the app, a server."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from facetory_cam.api.app import ApiDeps, create_app
from facetory_cam.api.control import ControlPlane
from facetory_cam.api.extraction import Extractor
from facetory_cam.api.preview import LivePreview
from facetory_cam.api.security import Credentials
from facetory_cam.api.server import ApiServer, bind_loopback
from facetory_cam.api.store import LibraryStore
from facetory_cam.daemon.commands import ControlState
from facetory_cam.daemon.pipeline import Pipeline
from facetory_cam.sinks.null import NullSink
from facetory_cam.sinks.preview import PreviewSink
from facetory_cam.sources import open_source
from facetory_cam.sources.scripted import ScriptedSource

SIZE = (320, 240)
FPS = 30.0
TOKEN = "t" * 8 + "0123456789abcdef0123456789abcdef0123456789abcdef"  # 56 chars, like a real one in shape
PORT = 48765  # what the in-process app believes its port is (TestClient never opens a socket)


@dataclass
class Harness:
    """A running pipeline with its sinks, the library and the app's dependencies."""

    pipeline: Pipeline
    null: NullSink
    output_preview: PreviewSink
    preview: LivePreview
    control: ControlPlane
    store: LibraryStore
    deps: ApiDeps
    library: Path
    stop_requested: threading.Event  # set by POST /api/shutdown

    def app(self, port: int = PORT) -> FastAPI:
        return create_app(replace(self.deps, port=port))

    def client(self, *, auth: bool = True, port: int = PORT, **kw: Any) -> TestClient:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        return TestClient(self.app(port), base_url=f"http://127.0.0.1:{port}", headers=headers, **kw)

    def frames(self) -> int:
        return self.null.frames

    def wait_frames(self, more: int, timeout: float = 10.0) -> int:
        """Block until the camera output moved on by ``more`` frames; returns the new count."""
        start = self.null.frames
        deadline = time.monotonic() + timeout
        while self.null.frames < start + more:
            if time.monotonic() > deadline:
                raise AssertionError(f"the pipeline stalled at {self.null.frames} frames (wanted {start + more})")
            time.sleep(0.01)
        return self.null.frames

    def fingerprint(self) -> dict[str, Any]:
        """Library rows and files plus the control state: equal before and after means nothing changed."""
        return {"library": self.store.fingerprint(), "state": self.control.state()}


@contextlib.contextmanager
def harness(
    tmp_path: Path,
    *,
    extractor: Extractor | None = None,
    keep_reference_photos: bool = False,
    max_upload_bytes: int = 2 * 2**20,
    max_parts: int = 4,
    extract_jobs: int = 1,
    tracker: Any = None,
    base_image: np.ndarray | None = None,
) -> Iterator[Harness]:
    """Start a real pipeline (scripted camera -> NullSink + PreviewSink) and a library in ``tmp_path``."""
    size = SIZE if base_image is None else (base_image.shape[1], base_image.shape[0])
    source = ScriptedSource(size, FPS, base_image=base_image, name="scripted")
    null = NullSink(size, FPS)
    out_preview = PreviewSink(size, FPS)

    def opener(spec: str) -> Any:
        return open_source(spec, width=SIZE[0], height=SIZE[1], fps=FPS)

    pipeline = Pipeline(
        [source], [[null, out_preview]], tracker=tracker, segmenter=None, state=ControlState(), fps=FPS, opener=opener
    )
    preview = LivePreview(outputs={"0": out_preview})
    preview.attach(pipeline.processor)
    control = ControlPlane(pipeline, state=pipeline.processor.state, sources=["scripted"])
    library = tmp_path / "library"
    store = LibraryStore(library, keep_reference_photos=keep_reference_photos)
    stop_requested = threading.Event()  # what POST /api/shutdown sets; `facetory run` stops on it
    deps = ApiDeps(
        control=control,
        store=store,
        preview=preview,
        credentials=Credentials(TOKEN),
        port=PORT,
        extractor=extractor,
        max_upload_bytes=max_upload_bytes,
        max_parts=max_parts,
        extract_jobs=extract_jobs,
        static_dir=None,
        shutdown=stop_requested.set,
    )
    pipeline.start()
    try:
        h = Harness(pipeline, null, out_preview, preview, control, store, deps, library, stop_requested)
        h.wait_frames(3)
        yield h
    finally:
        preview.close()
        pipeline.stop(2.0)
        store.close()


@contextlib.contextmanager
def live_server(h: Harness) -> Iterator[tuple[ApiServer, httpx.Client]]:
    """The app on real loopback sockets (a free port), and an httpx client for 127.0.0.1 with the token."""
    server = ApiServer(bind_loopback(0), lambda port: create_app(replace(h.deps, port=port)))
    server.start()
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{server.port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0
    )
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def png_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGB", color: Any = (200, 120, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **save)
    return buf.getvalue()


def texture_png(side: int = 64) -> bytes:
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0] = 180
    rgba[side // 4 : side // 2, side // 4 : side // 2, 3] = 200
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def simple_look(name: str = "Test look", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "tags": ["test"],
        "layers": {"lipstick": {"color": "#aa3344", "opacity": 0.5}},
    }
    doc.update(extra)
    return doc
