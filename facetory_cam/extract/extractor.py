"""Looks from photos: decode, find the face, read each layer, assemble a look.

``extract_look`` is what the command line and the HTTP API call. A photo arrives as bytes (or a
path); faces are found with the static tracker on a working-size copy, largest first; the chosen
face must be large enough, facing the camera and not covered, or the caller gets an error that
says which; each makeup layer's estimator reads the face against the person's own bare baseline
and returns its settings with a confidence. Layers at or above the presence threshold go into the
look; every confidence, the other faces and the timings go into the ``Extraction``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetory_cam.config import ExtractSettings, Settings
from facetory_cam.errors import FaceIndexError, NoFaceError, UnusableFaceError
from facetory_cam.extract.baseline import Baseline, measure_baseline
from facetory_cam.extract.brows import estimate_brows
from facetory_cam.extract.cheeks import estimate_blush
from facetory_cam.extract.estimate import LayerEstimate
from facetory_cam.extract.eyes import estimate_eyeliner, estimate_eyeshadow, estimate_mascara
from facetory_cam.extract.forward import Forward
from facetory_cam.extract.lips import estimate_lipstick
from facetory_cam.extract.photo import Photo, decode_photo, read_photo
from facetory_cam.extract.skin import estimate_foundation, estimate_smoothing
from facetory_cam.extract.view import FaceView, make_view
from facetory_cam.looks.schema import Layers, Look, Provenance
from facetory_cam.vision.regions import LIPS_INNER_LOWER, LIPS_INNER_UPPER
from facetory_cam.vision.tracker import Face

__all__ = ["EXTRACTOR_VERSION", "Extraction", "FaceInfo", "analyse_face", "extract_look"]

EXTRACTOR_VERSION = "facetory-extract/1"

_BRIDGE = 168  # mesh point between the eyes
_OUTER_CORNERS = (33, 263)
_SEAM_CONTRAST = 5.0  # L*: a mouth whose line is fainter than this against the lips ...
_SEAM_REDNESS = 5.0  # ... and whose lips are no redder than the skin is covered (a face mask)


@dataclass(frozen=True)
class FaceInfo:
    """A face found in the photo, in the photo's own pixels."""

    index: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # detector confidence
    size: float  # px across

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "size": round(self.size, 1),
        }


@dataclass(frozen=True)
class Extraction:
    """A look read from a photo, with what it rests on."""

    look: Look
    face: int  # index of the face the look was read from
    faces: tuple[FaceInfo, ...]  # every face found, largest first
    estimates: dict[str, LayerEstimate]  # every layer looked for, present or not
    confidences: dict[str, float]
    timings_ms: dict[str, float]
    photo: dict[str, Any]  # format, width, height, sha256
    image: np.ndarray = field(repr=False)  # the photo at working size, RGB uint8 (for previews)
    landmarks: np.ndarray = field(repr=False)  # the chosen face's landmarks in ``image`` pixels
    extras: dict[str, Any] = field(default_factory=dict)  # texture and other additions

    def present(self) -> list[str]:
        """Layers that made it into the look."""
        return [k for k in self.estimates if getattr(self.look.layers, k) is not None]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: faces, the chosen face, per-layer confidences and timings."""
        return {
            "face": self.face,
            "faces": [f.to_json() for f in self.faces],
            "layers": {
                key: {
                    "present": getattr(self.look.layers, key) is not None,
                    "confidence": round(est.confidence, 3),
                }
                for key, est in self.estimates.items()
            },
            "photo": self.photo,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            **self.extras,
        }


Estimator = Callable[[FaceView, Baseline, Forward], LayerEstimate]

ESTIMATORS: dict[str, Estimator] = {
    "foundation": lambda v, b, f: estimate_foundation(v, b),
    "skin_smoothing": lambda v, b, f: estimate_smoothing(v, b),
    "blush": estimate_blush,
    "eyeshadow": lambda v, b, f: estimate_eyeshadow(v, f),
    "eyeliner": lambda v, b, f: estimate_eyeliner(v, b),
    "mascara": lambda v, b, f: estimate_mascara(v, b),
    "brows": lambda v, b, f: estimate_brows(v, b),
    "lipstick": estimate_lipstick,
}


def _settings(settings: Settings | ExtractSettings | None) -> ExtractSettings:
    if settings is None:
        return ExtractSettings()
    return settings.extract if isinstance(settings, Settings) else settings


def frontal_share(landmarks: np.ndarray) -> float:
    """How frontal a face is: the nearer outer eye corner's share of the two corner-to-bridge distances.

    0.5 for a face looking at the camera, falling towards 0 as the head turns to a profile.
    """
    bridge = landmarks[_BRIDGE, :2]
    a, b = (float(np.hypot(*(landmarks[i, :2] - bridge))) for i in _OUTER_CORNERS)
    return min(a, b) / max(a + b, 1e-6)


def _mouth_covered(view: FaceView, base: Baseline) -> bool:
    """A face mask (or a hand) over the mouth: no dark line between the lips and no lip redness."""
    lips = np.minimum(view.mask("upper_lip") + view.mask("lower_lip"), 1.0)
    body = view.lab[lips > 0.8]
    if len(body) < 20:
        return True
    seam = np.zeros(lips.shape, np.uint8)
    width = max(1, round(0.01 * view.face_size))
    pts = view.roi_landmarks
    for contour in (LIPS_INNER_UPPER, LIPS_INNER_LOWER):
        cv2.polylines(seam, [np.rint(pts[list(contour)]).astype(np.int32)], False, 1, width)
    line = (seam > 0) | (view.mask("mouth_inner") > 0.5)
    if not line.any():
        return False
    contrast = float(np.median(body[:, 0]) - np.percentile(view.lab[line][:, 0], 10.0))
    redness = float(np.median(body[:, 1]) - base.skin[1])
    return contrast < _SEAM_CONTRAST and redness < _SEAM_REDNESS


def _face_info(faces: list[Face], scale: float) -> tuple[FaceInfo, ...]:
    return tuple(
        FaceInfo(i, tuple(float(v) * scale for v in f.box), float(f.score), f.size * scale)  # type: ignore[arg-type]
        for i, f in enumerate(faces)
    )


def analyse_face(
    image: np.ndarray, landmarks: np.ndarray, cfg: ExtractSettings, timings: dict[str, float] | None = None
) -> dict[str, LayerEstimate]:
    """Every layer's estimate for one face of an RGB uint8 image (landmarks in its pixels).

    Raises UnusableFaceError when the face's mouth is covered. ``timings`` collects ms per step.
    """
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    view = make_view(image, landmarks, cfg.face_px)
    base = measure_baseline(view)
    if _mouth_covered(view, base):
        raise UnusableFaceError("the face's mouth is covered (a face mask, a hand?): its makeup cannot be read")
    forward = Forward(view)
    timings["view"] = (time.perf_counter() - t0) * 1000.0
    out: dict[str, LayerEstimate] = {}
    for key, estimator in ESTIMATORS.items():
        t = time.perf_counter()
        out[key] = estimator(view, base, forward)
        timings[key] = (time.perf_counter() - t) * 1000.0
    return out


def assemble_look(
    estimates: dict[str, LayerEstimate], *, presence: float, name: str, sha256: str | None, description: str
) -> Look:
    """The look holding every layer at least ``presence`` sure, with photo provenance."""
    layers = {k: e.settings for k, e in estimates.items() if e.present(presence)}
    return Look(
        name=name[:80] or "From a photo",
        description=description[:2000],
        tags=("from-photo",),
        provenance=Provenance(source="photo", photo_sha256=sha256, extractor_version=EXTRACTOR_VERSION),
        layers=Layers(**layers),
    )


def _describe(estimates: dict[str, LayerEstimate], presence: float, face: int, faces: int) -> str:
    found = [f"{k} {e.confidence:.2f}" for k, e in estimates.items() if e.present(presence)]
    text = "Read from a photo"
    text += f" (face {face} of {faces})" if faces > 1 else ""
    text += ". Layer confidence: " + (", ".join(found) if found else "no makeup found") + "."
    return text


def extract_look(
    data: bytes | Path,
    perception: Any,
    *,
    face: int | None = None,
    settings: Settings | ExtractSettings | None = None,
    name: str | None = None,
    texture: bool | None = None,
) -> Extraction:
    """Read a look from a photo (its bytes, or a path to it) of one face: the largest unless ``face`` is given.

    ``perception`` is a ``vision.perception.Perception`` (model sessions, shared between calls).
    ``texture`` (default: the settings' ``texture``) also reads a UV texture of the makeup no layer
    describes and adds it to the look when it is sure enough.
    Raises ImageError (unreadable, refused format, too large), NoFaceError (no face),
    FaceIndexError (``face`` out of range) or UnusableFaceError (too small, profile, covered).
    """
    cfg = _settings(settings)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    label = str(data) if isinstance(data, Path) else "photo"
    if isinstance(data, Path):
        raw = read_photo(data, max_bytes=cfg.max_bytes)
        name = name if name is not None else f"From {data.stem}"
    else:
        raw = bytes(data)
    photo: Photo = decode_photo(
        raw, max_bytes=cfg.max_bytes, max_pixels=cfg.max_pixels, work_side=cfg.work_side, name=label
    )
    timings["decode"] = (time.perf_counter() - start) * 1000.0

    t = time.perf_counter()
    tracker = perception.tracker(static=True, max_faces=cfg.max_faces)
    found: list[Face] = tracker.process(photo.rgb)
    timings["detect"] = (time.perf_counter() - t) * 1000.0
    infos = _face_info(found, photo.scale)
    if not found:
        raise NoFaceError(f"{label}: no face found")
    index = 0 if face is None else face
    if not 0 <= index < len(found):
        raise FaceIndexError(
            f"{label}: there is no face {index}; the photo has {len(found)} face"
            + ("s (0.." + str(len(found) - 1) + ")" if len(found) > 1 else " (0)")
        )
    chosen = found[index]
    size = chosen.size * photo.scale
    if size < cfg.min_face_px:
        raise UnusableFaceError(
            f"{label}: face {index} is {size:.0f} px across, too small to read makeup from "
            f"(at least {cfg.min_face_px} px are needed)"
        )
    share = frontal_share(chosen.landmarks)
    if share < cfg.min_frontal:
        raise UnusableFaceError(
            f"{label}: face {index} is turned too far to the side (a profile); use a photo facing the camera"
        )
    try:
        estimates = analyse_face(photo.rgb, chosen.landmarks, cfg, timings)
    except UnusableFaceError as exc:
        raise UnusableFaceError(f"{label}: face {index}: {exc}") from None
    look = assemble_look(
        estimates,
        presence=cfg.presence,
        name=name if name is not None else "From a photo",
        sha256=photo.sha256,
        description=_describe(estimates, cfg.presence, index, len(found)),
    )
    extras: dict[str, Any] = {}
    if cfg.texture if texture is None else texture:
        t = time.perf_counter()
        look, extras["texture"] = _with_texture(look, photo.rgb, chosen.landmarks, cfg)
        timings["texture"] = (time.perf_counter() - t) * 1000.0
    timings["total"] = (time.perf_counter() - start) * 1000.0
    return Extraction(
        look=look,
        face=index,
        faces=infos,
        estimates=estimates,
        confidences={k: e.confidence for k, e in estimates.items()},
        timings_ms=timings,
        photo={"format": photo.format, "width": photo.size[0], "height": photo.size[1], "sha256": photo.sha256},
        image=photo.rgb,
        landmarks=np.asarray(chosen.landmarks, np.float32),
        extras=extras,
    )


# Parametric layers and the regions the texture leaves to them, so the two never paint the same makeup.
_TEXTURE_LEAVES = {"eyeshadow": "eyeshadow", "blush": "cheeks"}


def _with_texture(look: Look, image: np.ndarray, landmarks: np.ndarray, cfg: ExtractSettings) -> tuple[Look, dict]:
    """The look with a UV texture of what its layers do not describe, when the texture is sure enough.

    The lips, eyes and brows are always left to the parametric layers; the lids and cheeks too when
    the look has eyeshadow or blush.
    """
    from facetory_cam.extract.texture import extract_texture, texture_data_uri
    from facetory_cam.looks.schema import UVTexture

    exclude = ["lips", "eyes", "brows"]
    exclude += [region for key, region in _TEXTURE_LEAVES.items() if getattr(look.layers, key) is not None]
    found = extract_texture(image, landmarks, exclude=tuple(exclude))
    info = {"confidence": round(found.confidence, 3), "coverage": round(found.coverage, 4), "present": False}
    if found.confidence < cfg.texture_confidence:
        return look, info
    info["present"] = True
    layer = UVTexture(image=texture_data_uri(found.rgba))
    return look.model_copy(update={"layers": look.layers.model_copy(update={"texture": layer})}), info
