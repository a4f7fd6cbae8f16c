"""RGBA makeup painted in the canonical face UV space, warped onto the tracked face.

Looks generated from photos carry such a texture. The image is decoded once per
renderer (kept in the context's resources) and sampled through the per-pixel UV
map of the face, so it follows expression and pose like real makeup.
"""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from facetory_cam.looks.color import active_box, blend
from facetory_cam.looks.context import FaceContext
from facetory_cam.looks.schema import LookError, UVTexture
from facetory_cam.looks.uv import canonical_layout, uv_coordinates

MAX_TEXTURE_BYTES = 32 * 1024 * 1024
MAX_TEXTURE_SIDE = 4096


def load_texture(ref: str) -> np.ndarray:
    """Decode a texture (file path or ``data:image/...;base64,`` URI) to float32 RGBA in [0, 1]."""
    if ref.startswith("data:"):
        try:
            header, payload = ref.split(",", 1)
            if ";base64" not in header:
                raise ValueError("only base64 data URIs are supported")
            raw = base64.b64decode(payload, validate=True)
        except ValueError as exc:
            raise LookError(f"texture data URI is invalid: {exc}") from None
    else:
        path = Path(ref)
        try:
            if path.stat().st_size > MAX_TEXTURE_BYTES:
                raise LookError(f"texture {ref} is larger than {MAX_TEXTURE_BYTES // 2**20} MB")
            raw = path.read_bytes()
        except OSError as exc:
            raise LookError(f"cannot read texture {ref}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TEXTURE_BYTES:
        raise LookError(f"texture is larger than {MAX_TEXTURE_BYTES // 2**20} MB")
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise LookError("texture must be an RGBA image (PNG with an alpha channel)")
    if max(image.shape[:2]) > MAX_TEXTURE_SIDE:
        raise LookError(f"texture is larger than {MAX_TEXTURE_SIDE} px a side")
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA).astype(np.float32) / scale


def render(ctx: FaceContext, s: UVTexture, strength: float) -> None:
    key = f"texture:{s.image}"
    tex = ctx.resources.get(key)
    if tex is None:
        tex = ctx.resources[key] = load_texture(s.image)
    uv, cover = uv_coordinates(ctx.landmarks, ctx.shape, canonical_layout())
    th, tw = tex.shape[:2]
    sampled = cv2.remap(
        tex,
        uv[..., 0] * (tw - 1),
        uv[..., 1] * (th - 1),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    alpha = sampled[..., 3] * cover * strength
    box = active_box(alpha)
    if box is None:
        return
    ctx.rgb[box] = blend(ctx.rgb[box], sampled[box][..., :3], alpha[box], s.blend)
