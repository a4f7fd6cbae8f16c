"""A side-by-side preview of an extracted look: the reference, what was extracted, and the result.

One RGB image of three square panels, so a user (or a reviewer of the extractor) sees at a glance
whether the look read from the photo is the look in the photo:

1. the reference face, cropped;
2. the extracted layers as swatches: each present layer's colour chip(s), name, the numbers that
   matter for it (opacity, coverage, strength) and the extractor's confidence when given, plus a
   thumbnail of the UV texture over a checkerboard when the look has one;
3. the look rendered by the project's ``LookRenderer`` onto the target face (or, with no target,
   onto the reference's own face), cropped the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from facetory_cam.looks.layers import ORDER
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Look, LookError

__all__ = ["face_crop", "preview_panels"]

_BACKGROUND = (32, 32, 36)
_TEXT = (235, 235, 235)
_DIM = (150, 150, 155)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CROP_SCALE = 1.6  # crop side / the face's landmark extent: the whole head with a little room


def _check_face(image: np.ndarray, landmarks: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{what} must be an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    pts = np.asarray(landmarks, np.float32)
    if pts.ndim != 2 or pts.shape[0] not in (468, 478) or pts.shape[1] not in (2, 3):
        raise ValueError(f"{what} landmarks must have shape (478 or 468, 2 or 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{what} landmarks contain NaN or infinite values")
    return img, pts


def face_crop(image: np.ndarray, landmarks: np.ndarray, side: int) -> np.ndarray:
    """A ``side`` x ``side`` crop centred on the face (padded with the background where it leaves the image)."""
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    extent = max(float((hi - lo).max()) * _CROP_SCALE, 8.0)
    scale = side / extent
    # maps the crop's top-left corner to the image point centre - extent / 2
    m = np.array([[scale, 0.0, side / 2.0 - scale * centre[0]], [0.0, scale, side / 2.0 - scale * centre[1]]])
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (side, side), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=_BACKGROUND)


def _chips(layer: object, key: str) -> list[str]:
    """The ``#rrggbb`` colours a layer shows as chips."""
    fields = {
        "eyeshadow": ("color", "crease_color"),
        "contour": ("contour_color", "highlight_color"),
        "foundation": ("tone",),
    }.get(key, ("color",))
    return [str(v) for f in fields if isinstance(v := getattr(layer, f, None), str)]


def _numbers(layer: object, key: str) -> str:
    """The figures worth showing for a layer, short."""
    parts = []
    for field, label in (("opacity", "op"), ("coverage", "cov"), ("strength", "str"), ("contour", "shade")):
        value = getattr(layer, field, None)
        if isinstance(value, float):
            parts.append(f"{label} {value:.2f}")
    if key == "contour":
        parts.append(f"light {getattr(layer, 'highlight', 0.0):.2f}")
    if key == "texture":
        parts.append(f"{getattr(layer, 'blend', 'normal')}")
    intensity = getattr(layer, "intensity", 1.0)
    if intensity != 1.0:
        parts.append(f"int {intensity:.2f}")
    if not getattr(layer, "enabled", True):
        parts.append("off")
    return "  ".join(parts)


def _put(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    """Anti-aliased text; callers draw it on a dark background or band, so it needs no outline."""
    cv2.putText(canvas, text, org, _FONT, scale, colour, _thickness(scale), cv2.LINE_AA)


def _thickness(scale: float) -> int:
    return max(1, round(scale * 1.6))


def _fit_scale(text: str, width: int, scale: float) -> float:
    """The font scale at most ``scale`` at which ``text`` fits in ``width`` pixels."""
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, _thickness(scale))
    return scale if w <= width else scale * width / max(w, 1)


def _title(panel: np.ndarray, text: str) -> None:
    side = panel.shape[0]
    band = max(14, side // 14)
    panel[:band] = (panel[:band].astype(np.float32) * 0.35).astype(np.uint8)
    scale = _fit_scale(text, panel.shape[1] - 16, band / 32.0)
    _put(panel, text, (8, int(band * 0.72)), scale, _TEXT)


def _checker(side: int) -> np.ndarray:
    cell = max(2, side // 16)
    yy, xx = np.mgrid[0:side, 0:side] // cell
    light = ((yy + xx) % 2 == 0)[..., None]
    return np.where(light, np.float32(0.78), np.float32(0.6)) * np.ones((1, 1, 3), np.float32)


def _texture_thumb(ref: str, side: int) -> np.ndarray | None:
    from facetory_cam.looks.layers.texture import load_texture

    try:
        tex = load_texture(ref)
    except LookError:
        return None
    tex = cv2.resize(tex, (side, side), interpolation=cv2.INTER_AREA)
    alpha = tex[..., 3:4]
    rgb = tex[..., :3] * alpha + _checker(side) * (1.0 - alpha)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _swatches(look: Look, side: int, confidences: Mapping[str, float] | None) -> np.ndarray:
    """The middle panel: one row per present layer (two columns when they are many), the texture below."""
    panel = np.empty((side, side, 3), np.uint8)
    panel[:] = _BACKGROUND
    band = max(14, side // 14)
    margin = max(2, side // 64)
    rows = [(k, layer) for k in ORDER if k != "texture" and (layer := getattr(look.layers, k, None)) is not None]
    texture = look.layers.texture
    thumb_side = side // 3 if texture is not None else 0
    top, bottom = band + margin, side - margin - (thumb_side + band if texture is not None else 0)
    if not rows:
        _put(
            panel, "no parametric layers", (side // 20, top + band), _fit_scale("no parametric layers", side, 0.6), _DIM
        )
    else:
        columns = 1 if len(rows) * (side // 14) <= bottom - top else 2
        per_column = -(-len(rows) // columns)
        row_h = max(8, min(side // 10, (bottom - top) // per_column))
        col_w = side // columns
        for i, (key, layer) in enumerate(rows):
            x0 = (i // per_column) * col_w + margin
            y0 = top + (i % per_column) * row_h
            _swatch_row(panel, key, layer, (x0, y0), (col_w - 2 * margin, row_h), confidences)
    if texture is not None:
        y = side - margin - thumb_side
        x = (side - thumb_side) // 2
        conf = None if confidences is None else confidences.get("texture")
        label = "uv texture" + (f"  conf {conf:.2f}" if conf is not None else "") + f"  {_numbers(texture, 'texture')}"
        _put(panel, label, (margin * 2, y - band // 3), _fit_scale(label, side - 4 * margin, band / 34.0), _TEXT)
        thumb = _texture_thumb(texture.image, thumb_side)
        if thumb is None:
            cv2.rectangle(panel, (x, y), (x + thumb_side, y + thumb_side), _DIM, 1)
            _put(
                panel, "unreadable", (x + 6, y + thumb_side // 2), _fit_scale("unreadable", thumb_side - 12, 0.6), _DIM
            )
        else:
            panel[y : y + thumb_side, x : x + thumb_side] = thumb
    _title(panel, f"extracted: {look.name}")
    return panel


def _swatch_row(
    panel: np.ndarray,
    key: str,
    layer: object,
    origin: tuple[int, int],
    size: tuple[int, int],
    confidences: Mapping[str, float] | None,
) -> None:
    """Colour chips, then the layer's name (and confidence) over its colours and figures."""
    (x, y0), (width, row_h) = origin, size
    chip = max(4, row_h - max(2, row_h // 5))
    colours = _chips(layer, key)
    for colour in colours or ["#808080"]:
        rgb = tuple(int(colour[j : j + 2], 16) for j in (1, 3, 5))
        cv2.rectangle(panel, (x, y0), (x + chip, y0 + chip), rgb, -1)
        cv2.rectangle(panel, (x, y0), (x + chip, y0 + chip), _DIM, 1)
        x += chip + max(2, chip // 8)
    x = origin[0] + 2 * (chip + max(2, chip // 8)) + max(2, chip // 6)
    conf = None if confidences is None else confidences.get(key)
    name = key.replace("_", " ") + (f"  conf {conf:.2f}" if conf is not None else "")
    room = origin[0] + width - x
    scale = chip / 40.0
    detail = " ".join([*colours, _numbers(layer, key)]).strip()
    if _fit_scale(detail, room, scale * 0.85) < 0.7 * scale * 0.85:  # too long to read: the figures alone
        detail = _numbers(layer, key)
    _put(panel, name, (x, y0 + int(chip * 0.42)), _fit_scale(name, room, scale), _TEXT)
    _put(panel, detail, (x, y0 + int(chip * 0.92)), _fit_scale(detail, room, scale * 0.85), _DIM)


def preview_panels(
    reference: np.ndarray,
    reference_landmarks: np.ndarray,
    look: Look,
    target: np.ndarray | None = None,
    target_landmarks: np.ndarray | None = None,
    *,
    height: int = 512,
    confidences: Mapping[str, float] | None = None,
) -> np.ndarray:
    """One RGB uint8 image, ``height`` x ``3 * height``: reference crop | extracted layers | look applied.

    Images are RGB uint8 with the tracker's (478 or 468, 2|3) landmarks in their pixels. With no
    ``target`` the look is applied to the reference's own face. ``confidences`` (layer name -> 0..1,
    "texture" for the UV texture) are printed beside the swatches.
    """
    if height < 64:
        raise ValueError(f"height must be at least 64 pixels, got {height}")
    ref, ref_pts = _check_face(reference, reference_landmarks, "reference")
    if (target is None) != (target_landmarks is None):
        raise ValueError("give target and target_landmarks together")
    if target is None:
        dst, dst_pts = ref, ref_pts
    else:
        dst, dst_pts = _check_face(target, target_landmarks, "target")
    rendered = dst.copy()
    LookRenderer(look, fade_s=0.0).render_face(rendered, dst_pts)
    left = face_crop(ref, ref_pts, height)
    right = face_crop(rendered, dst_pts, height)
    _title(left, "reference")
    _title(right, "applied" + (" to target" if target is not None else " to reference"))
    middle = _swatches(look, height, confidences)
    return np.hstack([left, middle, right])
