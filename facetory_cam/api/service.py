"""The API as part of ``facetory run``: opened before the pipeline, started with it, closed after it.

If the API cannot start (port taken, library locked by another daemon) the camera still
runs: the error is printed and the daemon goes on without remote control, because a
virtual camera that refuses to start over a control-plane problem is worse than one
without a panel.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from facetory_cam.api.app import ApiDeps, create_app
from facetory_cam.api.control import ControlPlane
from facetory_cam.api.extraction import extractor_for
from facetory_cam.api.preview import LivePreview
from facetory_cam.api.security import TOKEN_ENV, Credentials, issue_token, token_file
from facetory_cam.api.server import ApiServer, bind_loopback
from facetory_cam.api.store import PRESET_PREFIX, LibraryStore, StoreError, default_library_dir
from facetory_cam.sinks.preview import PreviewSink

log = logging.getLogger(__name__)

__all__ = ["ApiService", "preset_id"]


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", "-", text.strip().lower())


def preset_id(name: str | None) -> str | None:
    """The library id of the preset a user named on the command line (None for a file or no look)."""
    if not name:
        return None
    from facetory_cam.looks.library import presets

    wanted = _key(name)
    for stem, look in presets():
        if _key(stem) == wanted or _key(look.name) == wanted:
            return PRESET_PREFIX + stem
    return None


class ApiService:
    """Sockets, token and library, opened up front; :meth:`start` attaches them to a built pipeline."""

    def __init__(self, settings: Any, *, port: int | None = None) -> None:
        api = settings.api
        self.settings = settings
        self.stop_requested = threading.Event()  # set by POST /api/shutdown; the run loop watches it
        self.outputs: dict[str, PreviewSink] = {}
        self.server: ApiServer | None = None
        self.preview: LivePreview | None = None
        self.sockets = bind_loopback(api.port if port is None else port)
        try:
            self.credentials = Credentials(issue_token())
            library = api.library_dir if api.library_dir is not None else default_library_dir()
            self.store = LibraryStore(library, keep_reference_photos=api.keep_reference_photos)
        except BaseException:
            for s in self.sockets:
                s.close()
            raise

    @classmethod
    def try_open(cls, settings: Any, *, port: int | None = None) -> ApiService | None:
        """An ApiService, or None (after printing why) when the API cannot be served."""
        try:
            return cls(settings, port=port)
        except (OSError, StoreError, ValueError) as exc:
            print(f"facetory: the control API is off: {exc}", file=sys.stderr)
            return None

    def extra_sinks(self, index: int, size: tuple[int, int], fps: float) -> list[Any]:
        """The ``build_pipeline`` hook: a preview of each output (what the camera really sends)."""
        sink = PreviewSink(size, fps, name=f"preview-{index}")
        self.outputs[str(index)] = sink
        return [sink]

    def start(self, pipeline: Any, *, sources: Sequence[str], look: str | None) -> None:
        """Serve the API over ``pipeline`` and print the one-time login link to stderr."""
        from facetory_cam.models.store import ModelStore
        from facetory_cam.vision.perception import Perception

        s = self.settings
        self.preview = LivePreview(outputs=self.outputs)
        self.preview.attach(pipeline.processor)
        control = ControlPlane(
            pipeline,
            state=pipeline.processor.state,
            look_id=preset_id(look),
            sources=sources,
            switch_sources=True,
        )

        def perception() -> Any:
            return Perception(
                ModelStore(s.models.resolved_cache_dir()), backend=s.models.backend, threads=s.models.threads
            )

        deps = ApiDeps(
            control=control,
            store=self.store,
            preview=self.preview,
            credentials=self.credentials,
            port=0,
            extractor=extractor_for(perception, s),
            max_upload_bytes=s.api.max_upload_bytes,
            max_parts=s.api.max_parts,
            extract_jobs=s.api.extract_jobs,
            shutdown=self.stop_requested.set,
        )
        self.server = ApiServer(self.sockets, lambda port: create_app(replace(deps, port=port)))
        self.server.start()
        if deps.extractor is None:
            log.warning("photo-to-look extraction is not available in this build: POST /api/looks/extract gives 503")
        where = f"{TOKEN_ENV}" if _token_from_env() else str(token_file())
        link = f"{self.server.urls[0]}/?token={self.credentials.new_link_code()}"
        print(
            f"facetory: control API on {', '.join(self.server.urls)} (token in {where})\n"
            f"facetory: open the panel (one-time link): {link}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """Stop serving and release the library (idempotent)."""
        if self.preview is not None:
            self.preview.close()
        if self.server is not None:
            self.server.stop()
            jobs = getattr(self.server.app.state, "jobs", None)
            if jobs is not None:
                jobs.shutdown()
            self.server = None
        else:
            for sock in self.sockets:
                sock.close()
        self.store.close()


def _token_from_env() -> bool:
    return bool(os.environ.get(TOKEN_ENV))
