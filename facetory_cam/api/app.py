"""The FastAPI application: routes over the control plane, the look library and the previews.

Built by :func:`create_app` from explicitly passed dependencies (nothing module-level is
mutable), so tests run it against a real pipeline with a scripted camera and a temporary
library. Security lives in :mod:`facetory_cam.api.security` and wraps every route.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, StreamingResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from facetory_cam.api.bundles import BUNDLE_MEDIA_TYPE, BundleError, export_bundle, read_bundle
from facetory_cam.api.control import ControlPlane, StateChange, StateError
from facetory_cam.api.extraction import ExtractionUnavailable, Extractor, JobQueue
from facetory_cam.api.preview import MJPEG_CONTENT_TYPE, LivePreview, View
from facetory_cam.api.security import SMALL_BODY, Credentials, SecurityMiddleware
from facetory_cam.api.store import (
    KEEP,
    TEXTURE_REF,
    LibraryStore,
    LookNotFound,
    LookRecord,
    ReadOnlyLook,
    StoreError,
    is_look_id,
)
from facetory_cam.api.uploads import (
    UploadError,
    decode_data_uri,
    encode_png,
    read_multipart,
    sanitize_photo,
    sanitize_texture,
)
from facetory_cam.errors import FacetoryError
from facetory_cam.looks.schema import Look, LookError

log = logging.getLogger(__name__)

__all__ = ["ApiDeps", "create_app", "STATIC_DIR"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
EXTRACT_PATH = "/api/looks/extract"
IMPORT_PATH = "/api/looks/import"
MULTIPART_PATHS = frozenset({EXTRACT_PATH, IMPORT_PATH})
FIELD_SMALL = 64


@dataclass
class ApiDeps:
    """Everything the app talks to; built by the daemon (or a test) and handed in."""

    control: ControlPlane
    store: LibraryStore
    preview: LivePreview
    credentials: Credentials
    port: int
    extractor: Extractor | None = None
    max_upload_bytes: int = 20 * 2**20
    max_parts: int = 4
    extract_jobs: int = 1
    static_dir: Path | None = STATIC_DIR
    shutdown: Callable[[], None] | None = None  # stops the daemon (it releases camera and virtual camera)


# -- response and request models ---------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LookSummary(BaseModel):
    id: str
    name: str
    tags: list[str]
    description: str
    source: str = Field(description="Where the look came from: preset, manual, photo or shared.")
    read_only: bool
    created: datetime | None
    updated: datetime | None
    has_texture: bool
    thumbnail_url: str | None
    problem: str | None = Field(None, description="Why the look cannot be used, if a file went missing.")


class LookDetail(LookSummary):
    look: Look = Field(description="The look document; its texture, if any, is named texture.png.")
    texture_url: str | None


class SourceIn(_Strict):
    index: int = Field(ge=0, le=63)
    spec: str = Field(min_length=1, max_length=64, description="Camera index, /dev/videoN or scripted[:WxH[@FPS]].")


class StateIn(_Strict):
    """Only the fields given change."""

    look: str | None = Field(None, max_length=80, description="Look id to apply; null for no makeup.")
    intensity: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    enabled: bool | None = Field(None, description="False passes frames through untouched (bypass).")
    layers: dict[Annotated[str, Field(max_length=32)], bool] | None = Field(None, max_length=32)
    source: SourceIn | None = None


class SourceOut(BaseModel):
    index: int
    spec: str


class StateOut(BaseModel):
    look: str | None
    look_name: str | None
    intensity: float
    enabled: bool
    layers: dict[str, bool]
    sources: list[SourceOut]


class FaceOut(BaseModel):
    index: int
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in the uploaded photo's upright pixels.")
    score: float


class ExtractOut(BaseModel):
    look: LookDetail
    faces: list[FaceOut]
    face: int | None


class SnapshotIn(_Strict):
    source: int = Field(0, ge=0, le=63)
    save_thumbnail_to: str | None = Field(
        None, max_length=80, description="A user look id: the snapshot also becomes its thumbnail."
    )


class LinkOut(BaseModel):
    url: str


class Health(BaseModel):
    status: Literal["ok"]


# -- helpers -------------------------------------------------------------------------------


def _summary(record: LookRecord) -> dict[str, Any]:
    look = record.look
    return {
        "id": record.id,
        "name": look.name,
        "tags": list(look.tags),
        "description": look.description,
        "source": look.provenance.source,
        "read_only": record.read_only,
        "created": record.created,
        "updated": record.updated,
        "has_texture": record.texture_sha256 is not None,
        "thumbnail_url": None if record.thumbnail_sha256 is None else f"/api/looks/{record.id}/thumbnail.png",
        "problem": record.problem,
    }


def _detail(record: LookRecord) -> LookDetail:
    texture_url = None if record.texture_sha256 is None else f"/api/looks/{record.id}/texture.png"
    return LookDetail(**_summary(record), look=record.look, texture_url=texture_url)


def _check_id(look_id: str) -> str:
    if not is_look_id(look_id):
        raise HTTPException(400, "invalid look id: a preset id (preset:name) or 32 hexadecimal digits")
    return look_id


def _split_texture(look: Look, *, can_keep: bool, max_bytes: int) -> tuple[Look, Any]:
    """The look with its texture named texture.png, and the clean texture bytes (or KEEP / None)."""
    tex = look.layers.texture
    if look.background.image is not None:
        raise HTTPException(422, "background.image: looks saved through the API cannot name image files")
    if tex is None:
        return look, None
    if tex.image == TEXTURE_REF:
        if not can_keep:
            raise HTTPException(422, "layers.texture.image: texture.png names a texture this look does not have yet")
        return look, KEEP
    if not tex.image.startswith("data:"):
        raise HTTPException(422, "layers.texture.image must be a data:image/png;base64 URI (or texture.png to keep)")
    try:
        png = sanitize_texture(decode_data_uri(tex.image, max_bytes=max_bytes))
    except UploadError as exc:
        raise HTTPException(exc.status, f"layers.texture.image: {exc.message}") from None
    layers = look.layers.model_copy(update={"texture": tex.model_copy(update={"image": TEXTURE_REF})})
    return look.model_copy(update={"layers": layers}), png


def _store_errors(exc: Exception) -> HTTPException:
    if isinstance(exc, LookNotFound):
        return HTTPException(404, "no look with this id")
    if isinstance(exc, ReadOnlyLook):
        return HTTPException(403, str(exc))
    if isinstance(exc, LookError):
        return HTTPException(422, str(exc))
    return HTTPException(507, f"the library could not save: {exc}")


def _png_of(image: np.ndarray, *, max_side: int | None = None) -> bytes:
    pil = Image.fromarray(image)
    if max_side is not None:
        pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return encode_png(pil, compress_level=1)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "look"


def _multipart_body(fields: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": fields, "required": required}}
            },
        }
    }


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


# -- the app -------------------------------------------------------------------------------


def create_app(deps: ApiDeps) -> FastAPI:
    """The API over ``deps``; every request goes through :class:`SecurityMiddleware` first."""
    app = FastAPI(
        title="Facetory Cam local API",
        version="1",
        description="Control the face-filter virtual camera: looks, state, previews. Loopback only; "
        "send the token from the daemon's token file as `Authorization: Bearer <token>`.",
        redoc_url=None,
    )
    store, control, preview = deps.store, deps.control, deps.preview
    jobs = JobQueue(deps.extract_jobs)
    app.state.jobs = jobs
    upload_cap = deps.max_upload_bytes

    def body_limit(method: str, path: str) -> int:
        if path in MULTIPART_PATHS or (path.startswith("/api/looks") and method in ("POST", "PUT")):
            return upload_cap
        return SMALL_BODY

    app.add_middleware(
        SecurityMiddleware,
        credentials=deps.credentials,
        port=deps.port,
        body_limit=body_limit,
        multipart_paths=MULTIPART_PATHS,
    )

    def runtime(look_id: str) -> Look:
        try:
            return store.runtime_look(look_id)
        except LookNotFound:
            raise HTTPException(404, "no look with this id") from None
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None

    # -- health, state, stats ----------------------------------------------------------
    @app.get("/api/health", response_model=Health, tags=["daemon"])
    def health() -> dict[str, str]:
        """Liveness; the only route that needs no token."""
        return {"status": "ok"}

    @app.get("/api/state", response_model=StateOut, tags=["daemon"])
    def get_state() -> dict[str, Any]:
        return control.state()

    @app.put("/api/state", response_model=StateOut, tags=["daemon"])
    def put_state(body: StateIn) -> dict[str, Any]:
        """Change the active look, intensity, layer toggles, bypass or a source; all or nothing."""
        given = body.model_fields_set
        kw: dict[str, Any] = {}
        if "look" in given:
            if body.look is None:
                kw["look"] = None
            else:
                kw["look"] = (_check_id(body.look), runtime(body.look))
        if "intensity" in given and body.intensity is not None:
            kw["intensity"] = body.intensity
        if "enabled" in given and body.enabled is not None:
            kw["enabled"] = body.enabled
        if "layers" in given and body.layers is not None:
            kw["layers"] = body.layers
        if "source" in given and body.source is not None:
            kw["source"] = (body.source.index, body.source.spec)
        try:
            return control.apply(StateChange(**kw))
        except StateError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/stats", tags=["daemon"])
    def get_stats() -> dict[str, Any]:
        """Pipeline statistics: per-stage timings, frame counters, latency, source states."""
        return control.stats()

    @app.post("/api/session/link", response_model=LinkOut, tags=["daemon"])
    def new_link() -> dict[str, str]:
        """A fresh one-time link that logs a browser in (for the tray's "open panel")."""
        return {"url": f"http://127.0.0.1:{deps.port}/?token={deps.credentials.new_link_code()}"}

    # -- library -----------------------------------------------------------------------
    @app.get("/api/looks", response_model=list[LookSummary], tags=["looks"])
    def list_looks() -> list[dict[str, Any]]:
        return [_summary(r) for r in store.list()]

    @app.post("/api/looks", response_model=LookDetail, status_code=201, tags=["looks"])
    def create_look(look: Look) -> LookDetail:
        """Save a new look; a texture comes as a data:image/png;base64 URI and is stored as a file."""
        clean, texture = _split_texture(look, can_keep=False, max_bytes=upload_cap)
        try:
            return _detail(store.create(clean, texture_png=texture))
        except (LookError, StoreError) as exc:
            raise _store_errors(exc) from None

    @app.api_route(EXTRACT_PATH, methods=["GET", "PUT", "DELETE", "PATCH"], include_in_schema=False, status_code=405)
    @app.api_route(IMPORT_PATH, methods=["GET", "PUT", "DELETE", "PATCH"], include_in_schema=False, status_code=405)
    def upload_routes_are_post_only() -> Response:
        return Response(status_code=405, headers={"Allow": "POST"})

    @app.get("/api/looks/{look_id}", response_model=LookDetail, tags=["looks"])
    def get_look(look_id: Annotated[str, PathParam(max_length=80)]) -> LookDetail:
        try:
            return _detail(store.get(_check_id(look_id)))
        except LookNotFound:
            raise HTTPException(404, "no look with this id") from None

    @app.put("/api/looks/{look_id}", response_model=LookDetail, tags=["looks"])
    def put_look(look_id: Annotated[str, PathParam(max_length=80)], look: Look) -> LookDetail:
        """Replace a look; texture.png keeps its texture, a data: URI replaces it. An active look updates live."""
        _check_id(look_id)
        clean, texture = _split_texture(look, can_keep=True, max_bytes=upload_cap)
        try:
            record = store.update(look_id, clean, texture_png=texture)
        except (LookNotFound, LookError, StoreError) as exc:
            raise _store_errors(exc) from None
        if control.look_id == look_id:
            control.refresh_look(look_id, store.runtime_look(look_id))
        return _detail(record)

    @app.delete("/api/looks/{look_id}", status_code=204, tags=["looks"])
    def delete_look(look_id: Annotated[str, PathParam(max_length=80)]) -> Response:
        """Delete a user look and its files; the active look must be switched off first (409)."""
        _check_id(look_id)
        if control.look_id == look_id:
            raise HTTPException(409, "this look is on camera now; switch to another look first")
        try:
            store.delete(look_id)
        except (LookNotFound, StoreError) as exc:
            raise _store_errors(exc) from None
        return Response(status_code=204)

    def _image(look_id: str, kind: Literal["texture", "thumbnail"]) -> Response:
        try:
            record = store.get(_check_id(look_id))
        except LookNotFound:
            raise HTTPException(404, "no look with this id") from None
        sha = record.texture_sha256 if kind == "texture" else record.thumbnail_sha256
        if sha is None:
            raise HTTPException(404, f"this look has no {kind}")
        try:
            data = store.read_blob(kind, sha)
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get(
        "/api/looks/{look_id}/thumbnail.png",
        tags=["looks"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def get_thumbnail(look_id: Annotated[str, PathParam(max_length=80)]) -> Response:
        return _image(look_id, "thumbnail")

    @app.get(
        "/api/looks/{look_id}/texture.png",
        tags=["looks"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def get_texture(look_id: Annotated[str, PathParam(max_length=80)]) -> Response:
        return _image(look_id, "texture")

    @app.get(
        "/api/looks/{look_id}/export",
        tags=["looks"],
        response_class=Response,
        responses={200: {"content": {BUNDLE_MEDIA_TYPE: {}}}},
    )
    def export_look(look_id: Annotated[str, PathParam(max_length=80)]) -> Response:
        """The look as a .facetory bundle (look.json, texture.png, thumbnail.png; never the photo)."""
        try:
            record = store.get(_check_id(look_id))
            texture = None if record.texture_sha256 is None else store.read_blob("texture", record.texture_sha256)
            thumb = None if record.thumbnail_sha256 is None else store.read_blob("thumbnail", record.thumbnail_sha256)
        except LookNotFound:
            raise HTTPException(404, "no look with this id") from None
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        data = export_bundle(record.look, texture_png=texture, thumbnail_png=thumb)
        disposition = f'attachment; filename="{_slug(record.name)}.facetory"'
        return Response(data, media_type=BUNDLE_MEDIA_TYPE, headers={"Content-Disposition": disposition})

    @app.post(
        IMPORT_PATH,
        response_model=LookDetail,
        status_code=201,
        tags=["looks"],
        openapi_extra=_multipart_body({"bundle": {"type": "string", "format": "binary"}}, ["bundle"]),
    )
    async def import_look(request: Request) -> LookDetail:
        """Import a .facetory bundle (multipart field ``bundle``); refused whole, nothing written, when unsafe."""
        if not jobs.try_enter():
            raise HTTPException(429, "busy: too many uploads are being processed", headers={"Retry-After": "5"})
        try:
            parts = await _read_form(request, {"bundle": upload_cap})
            if "bundle" not in parts:
                raise HTTPException(422, "the form needs a 'bundle' file")
            try:
                bundle = await jobs.run(read_bundle, parts["bundle"].data)
            except BundleError as exc:
                raise HTTPException(exc.status, exc.message) from None
            try:
                record = await jobs.run(
                    lambda: store.create(
                        bundle.look, texture_png=bundle.texture_png, thumbnail_png=bundle.thumbnail_png
                    )
                )
            except (LookError, StoreError) as exc:
                raise _store_errors(exc) from None
            return _detail(record)
        finally:
            jobs.leave()

    @app.post(
        EXTRACT_PATH,
        response_model=ExtractOut,
        status_code=201,
        tags=["looks"],
        openapi_extra=_multipart_body(
            {"photo": {"type": "string", "format": "binary"}, "face": {"type": "integer", "minimum": 0}}, ["photo"]
        ),
    )
    async def extract(request: Request) -> ExtractOut:
        """Make a look from a photo (JPEG, PNG or WebP; field ``photo``, optional ``face`` index) and save it."""
        extractor = deps.extractor
        if extractor is None:
            raise HTTPException(503, "extraction unavailable: this build has no photo-to-look extractor")
        if not jobs.try_enter():
            raise HTTPException(429, "busy: too many photos are being processed", headers={"Retry-After": "5"})
        try:
            parts = await _read_form(request, {"photo": upload_cap, "face": FIELD_SMALL})
            if "photo" not in parts:
                raise HTTPException(422, "the form needs a 'photo' file")
            face = None
            if "face" in parts:
                text = parts["face"].data.decode("ascii", "replace").strip()
                if not text.isdigit() or int(text) > 63:
                    raise HTTPException(422, "face must be a face index from 0 to 63")
                face = int(text)
            try:
                clean = await jobs.run(sanitize_photo, parts["photo"].data)
            except UploadError as exc:
                raise HTTPException(exc.status, exc.message) from None
            try:
                result = await jobs.run(extractor, clean.png, face)
            except ExtractionUnavailable as exc:
                raise HTTPException(503, str(exc)) from None
            except (FacetoryError, IndexError, ValueError) as exc:
                raise HTTPException(422, str(exc) or type(exc).__name__) from None
            provenance = result.look.provenance.model_copy(
                update={"source": "photo", "photo_sha256": clean.original_sha256}
            )
            look, texture = await jobs.run(
                lambda: _split_texture(
                    result.look.model_copy(update={"provenance": provenance}), can_keep=False, max_bytes=upload_cap
                )
            )
            try:
                record = await jobs.run(lambda: store.create(look, texture_png=texture, photo_png=clean.png))
            except (LookError, StoreError) as exc:
                raise _store_errors(exc) from None
            k = clean.original_size[0] / clean.width  # boxes in the uploaded photo's (upright) pixels
            faces = [FaceOut(index=f.index, box=tuple(v * k for v in f.box), score=f.score) for f in result.faces]
            return ExtractOut(look=_detail(record), faces=faces, face=result.face)
        finally:
            jobs.leave()

    async def _read_form(request: Request, fields: dict[str, int]) -> dict[str, Any]:
        try:
            return await read_multipart(
                request.headers.get("content-type", ""),
                _body_chunks(request),
                fields=fields,
                max_parts=deps.max_parts,
            )
        except UploadError as exc:
            raise HTTPException(exc.status, exc.message) from None

    # -- previews ----------------------------------------------------------------------

    def _source_key(source: int) -> str:
        key = str(source)
        if key not in preview.sources():
            raise HTTPException(404, f"no preview for source {source} (yet)")
        return key

    @app.get(
        "/api/preview.mjpg",
        tags=["preview"],
        response_class=StreamingResponse,
        responses={200: {"content": {"multipart/x-mixed-replace": {}}}},
    )
    def preview_stream(
        view: View = "after",
        source: Annotated[int, Query(ge=0, le=63)] = 0,
        fps: Annotated[float, Query(gt=0, le=60)] = 15.0,
        frames: Annotated[int | None, Query(ge=1, le=100_000, description="End after this many frames.")] = None,
    ) -> StreamingResponse:
        """Live MJPEG: ``after`` (what the camera sends), ``before`` (the raw camera) or ``split`` (half each)."""
        key = _source_key(source)
        return StreamingResponse(
            preview.mjpeg(key, view, max_fps=fps, frames=frames),
            media_type=MJPEG_CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        "/api/preview.jpg",
        tags=["preview"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def preview_still(view: View = "after", source: Annotated[int, Query(ge=0, le=63)] = 0) -> Response:
        """The newest preview frame as one JPEG."""
        key = _source_key(source)
        got = preview.next_jpeg(key, view, 0, timeout=1.0)
        if got is None:
            raise HTTPException(503, "no frame yet")
        return Response(got[1], media_type="image/jpeg")

    @app.post("/api/shutdown", status_code=202, tags=["daemon"])
    def shutdown() -> dict[str, bool]:
        """Stop the daemon cleanly (the tray's "Quit daemon"); the answer comes before it stops."""
        if deps.shutdown is None:
            raise HTTPException(501, "this server cannot stop its daemon")
        deps.shutdown()
        return {"stopping": True}

    @app.post(
        "/api/snapshot",
        tags=["preview"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def snapshot(body: SnapshotIn | None = None) -> Response:
        """PNG of the current output frame; with ``save_thumbnail_to`` it also becomes that look's thumbnail."""
        req = body or SnapshotIn()
        frame = preview.latest_frame(_source_key(req.source))
        if frame is None:
            raise HTTPException(503, "no frame yet")
        headers: dict[str, str] = {}
        if req.save_thumbnail_to is not None:
            look_id = _check_id(req.save_thumbnail_to)
            try:
                store.set_thumbnail(look_id, _png_of(frame, max_side=512))
            except (LookNotFound, StoreError) as exc:
                raise _store_errors(exc) from None
            headers["X-Facetory-Thumbnail-Of"] = look_id
        return Response(_png_of(frame), media_type="image/png", headers=headers)

    # -- the panel's mount point -------------------------------------------------------
    static = deps.static_dir
    if static is not None and static.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=static, html=True), name="panel")
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/docs", status_code=303)

    return app
