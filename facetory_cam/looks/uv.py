"""The project's canonical face UV layout, and mapping a UV texture onto a tracked face.

MediaPipe's canonical mesh and UVs are not in the wheel, so Facetory derives its
own: the 468 mesh points of a frontal portrait, rolled level, mirrored to be
exactly symmetric and scaled into the unit square, triangulated by Delaunay with
the eye and mouth openings left out (texture never paints into them). The
layout ships as ``data/face_uv.json``; ``derive_layout`` regenerates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

MESH = 468
# Openings: outer contours of both eyes and the inner lip line (mesh indices, in order).
_OPENINGS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191),
)


@dataclass(frozen=True)
class UVLayout:
    uv: np.ndarray  # (468, 2) in [0, 1], u to the image right of a frontal face, v down
    triangles: np.ndarray  # (T, 3) vertex indices


def _mirror_pairs(points: np.ndarray) -> np.ndarray:
    """The vertex matched to each vertex's mirror image about the vertical midline.

    An optimal one-to-one assignment (not nearest neighbours), made symmetric, so
    that averaging each vertex with its partner gives an exactly mirrored layout.
    """
    from scipy.optimize import linear_sum_assignment

    mirrored = points.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    d = np.linalg.norm(mirrored[:, None, :] - points[None, :, :], axis=2)
    _, pairs = linear_sum_assignment(d)
    for i, j in enumerate(pairs):  # keep only reciprocal pairs; the rest pair with themselves
        if pairs[j] != i:
            pairs[i] = i
    return pairs


def derive_layout(landmarks: np.ndarray) -> UVLayout:
    """A symmetric UV layout from the mesh of a (near) frontal face."""
    from scipy.spatial import Delaunay

    pts = np.asarray(landmarks, dtype=np.float64)[:MESH, :2]
    left, right = pts[33], pts[263]
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    c, s = np.cos(-angle), np.sin(-angle)
    centre = pts[[33, 263, 1, 152]].mean(axis=0)
    level = (pts - centre) @ np.array([[c, s], [-s, c]])
    level[:, 0] -= level[[33, 263], 0].mean()
    pairs = _mirror_pairs(level)
    sym = level.copy()
    sym[:, 0] = 0.5 * (level[:, 0] - level[pairs, 0])
    sym[:, 1] = 0.5 * (level[:, 1] + level[pairs, 1])
    lo, hi = sym.min(axis=0), sym.max(axis=0)
    side = float((hi - lo).max())
    centre = np.array([0.0, (lo[1] + hi[1]) / 2])  # x is already symmetric about 0
    uv = (sym - centre) / side * 0.9 + 0.5
    tris = Delaunay(uv).simplices
    centroids = uv[tris].mean(axis=1).astype(np.float32)
    keep = np.ones(len(tris), bool)
    for ring in _OPENINGS:
        poly = uv[list(ring)].astype(np.float32)
        inside = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0 for x, y in centroids])
        keep &= ~inside
    # drop the long sliver triangles Delaunay adds along the concave outline
    edges = np.linalg.norm(uv[tris] - uv[np.roll(tris, 1, axis=1)], axis=2).max(axis=1)
    keep &= edges < 0.25
    return UVLayout(uv.astype(np.float32), tris[keep].astype(np.int32))


@cache
def canonical_layout() -> UVLayout:
    """The shipped layout (immutable, so caching it is safe)."""
    raw = json.loads(resources.files("facetory_cam").joinpath("data/face_uv.json").read_text())
    return UVLayout(np.asarray(raw["uv"], np.float32), np.asarray(raw["triangles"], np.int32))


def uv_coordinates(
    landmarks: np.ndarray, shape: tuple[int, int], layout: UVLayout, *, step: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (u, v) of the face in an ROI of ``shape``, and where the mesh covers it.

    The mesh is rasterised on a grid ``step`` times coarser (triangle ids, then
    barycentric interpolation of the UVs, vectorised), then upsampled: a few
    milliseconds for a face of a few hundred pixels.
    """
    h, w = shape
    gh, gw = max(1, -(-h // step)), max(1, -(-w // step))
    pts = np.asarray(landmarks, np.float64)[:MESH, :2] / step
    ids = np.full((gh, gw), -1, np.int32)
    # painter's order: nearer triangles (smaller z) last, so they win where the face folds
    z = np.asarray(landmarks, np.float64)[:MESH, 2]
    order = np.argsort(-z[layout.triangles].mean(axis=1))
    shift = 4
    for t in order:
        poly = np.round(pts[layout.triangles[t]] * (1 << shift)).astype(np.int32)
        cv2.fillConvexPoly(ids, poly, int(t), lineType=cv2.LINE_8, shift=shift)
    yy, xx = np.nonzero(ids >= 0)
    uv = np.zeros((gh, gw, 2), np.float32)
    if yy.size:
        tri = layout.triangles[ids[yy, xx]]
        a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
        p = np.stack([xx, yy], axis=1).astype(np.float64)
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        den = np.where(np.abs(den) < 1e-9, 1e-9, den)
        wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        wa = 1.0 - wb - wc
        uvs = layout.uv
        uv[yy, xx] = wa[:, None] * uvs[tri[:, 0]] + wb[:, None] * uvs[tri[:, 1]] + wc[:, None] * uvs[tri[:, 2]]
    cover = (ids >= 0).astype(np.float32)
    uv_full = cv2.resize(uv, (w, h), interpolation=cv2.INTER_LINEAR)
    cover_full = cv2.resize(cover, (w, h), interpolation=cv2.INTER_LINEAR)
    return uv_full, cover_full
