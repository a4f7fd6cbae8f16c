"""BlazeFace detection: letterboxed input, SSD anchors, box decoding, weighted NMS.

Options follow MediaPipe's face_detection graphs (short range: 128 px, 896
anchors; full range: 192 px, 2304 anchors). Keypoints are, in order: the
subject's right eye, left eye, nose tip, mouth centre, right and left tragion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facetory_cam.interfaces import InferenceBackend


@dataclass(frozen=True)
class DetectorConfig:
    model: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float
    min_scale: float = 0.1484375
    max_scale: float = 0.75


SHORT_RANGE = DetectorConfig("face_detection_short_range", 128, (8, 16, 16, 16), 1.0, 0.5)
FULL_RANGE = DetectorConfig("face_detection_full_range_sparse", 192, (4,), 0.0, 0.6)
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """A face found by the detector, in image pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (6, 2)


def ssd_anchors(cfg: DetectorConfig) -> np.ndarray:
    """Anchor centres (N, 2), normalised, in the model's (y, x, anchor) order.

    With fixed anchor size every anchor is 1 x 1, so only centres matter; layers
    sharing a stride are merged as MediaPipe's SsdAnchorsCalculator does.
    """
    anchors: list[tuple[float, float]] = []
    n = len(cfg.strides)
    layer = 0
    while layer < n:
        per_cell = 0
        last = layer
        while last < n and cfg.strides[last] == cfg.strides[layer]:
            per_cell += 2 if cfg.interpolated_scale_aspect_ratio > 0 else 1
            last += 1
        fm = -(-cfg.input_size // cfg.strides[layer])
        for y in range(fm):
            for x in range(fm):
                anchors.extend([((x + 0.5) / fm, (y + 0.5) / fm)] * per_cell)
        layer = last
    return np.asarray(anchors, dtype=np.float32)


def _iou_matrix(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_thresh: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: blend each cluster, keep the top score."""
    order = np.argsort(-scores, kind="stable")
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        overlap = _iou_matrix(boxes[top], boxes[remaining])
        cluster = remaining[overlap > iou_thresh]
        if top not in cluster:
            cluster = np.concatenate([[top], cluster])
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kp = (kps[cluster].reshape(len(cluster), -1) * w).sum(0) / w.sum()
        out.append((box, kp.reshape(-1, 2), float(scores[top])))
        remaining = remaining[overlap <= iou_thresh]
        remaining = remaining[remaining != top]
    return out


class FaceDetector:
    """Runs BlazeFace on whole images, many images per model call."""

    def __init__(self, backend: InferenceBackend, cfg: DetectorConfig, *, min_score: float | None = None) -> None:
        self.backend = backend
        self.cfg = cfg
        self.min_score = cfg.min_score if min_score is None else min_score
        self.anchors = ssd_anchors(cfg)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Letterbox an RGB uint8 image into the model input; returns (tensor, scale, pad_x, pad_y)."""
        h, w = image.shape[:2]
        side = max(h, w)
        size = self.cfg.input_size
        scale = size / side
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, (nw, nh), interpolation=interp)
        px, py = (size - nw) // 2, (size - nh) // 2
        canvas = np.zeros((size, size, 3), dtype=np.float32)
        canvas[py : py + nh, px : px + nw] = small.astype(np.float32) * (2.0 / 255.0) - 1.0
        # Letterbox bars are mid-grey (0 in the model's range). MediaPipe's CPU path pads black;
        # grey measured as good or better on the project's evaluation photos.
        return canvas, scale, px / scale, py / scale

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Detections per image (RGB uint8), sorted by score."""
        if not images:
            return []
        prepared = [self.preprocess(im) for im in images]
        regressors, logits = self.backend.run(np.stack([p[0] for p in prepared]))
        return [self._decode(regressors[i], logits[i], *prepared[i][1:]) for i in range(len(images))]

    def _decode(self, reg: np.ndarray, logit: np.ndarray, scale: float, pad_x: float, pad_y: float) -> list[Detection]:
        scores = 1.0 / (1.0 + np.exp(-np.clip(logit[:, 0].astype(np.float64), -100.0, 100.0)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        size = float(self.cfg.input_size)
        reg, anchors, scores = reg[keep], self.anchors[keep], scores[keep]
        cx = reg[:, 0] / size + anchors[:, 0]
        cy = reg[:, 1] / size + anchors[:, 1]
        bw, bh = reg[:, 2] / size, reg[:, 3] / size
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) / size + anchors[:, None, :]
        out = []
        for box, kp, score in weighted_nms(boxes, kps, scores):
            # normalised letterbox coordinates -> image pixels
            b = box * (size / scale) - np.array([pad_x, pad_y, pad_x, pad_y])
            k = kp * (size / scale) - np.array([pad_x, pad_y])
            out.append(Detection(tuple(float(v) for v in b), score, k.astype(np.float32)))
        return out


def tile_origins(
    width: int, height: int, cols: int, rows: int, overlap: float = 0.25
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, w, h) covering the image, ``overlap`` of a tile shared with its neighbour.

    A face smaller than the overlap band is wholly inside at least one tile.
    """
    if cols < 1 or rows < 1:
        raise ValueError("a tile grid needs at least one column and one row")
    tw = width if cols == 1 else min(width, round(width / (cols - (cols - 1) * overlap)))
    th = height if rows == 1 else min(height, round(height / (rows - (rows - 1) * overlap)))
    xs = [0] if cols == 1 else [round(i * (width - tw) / (cols - 1)) for i in range(cols)]
    ys = [0] if rows == 1 else [round(j * (height - th) / (rows - 1)) for j in range(rows)]
    return [(x, y, tw, th) for y in ys for x in xs]


def detect_tiled(
    detector: FaceDetector, images: list[np.ndarray], grid: tuple[int, int], overlap: float = 0.25
) -> list[list[Detection]]:
    """Detections per image from a grid of tiles, all tiles of all images in one model call.

    Small faces in a large frame (a crowd in 1080p) shrink below what the detector sees
    once the whole frame is squeezed into its 128 or 192 px input; tiles keep them large
    enough. The whole frame goes in too, for faces larger than a tile. A face found more
    than once is kept once (the higher score).
    """
    cols, rows = grid
    if (cols, rows) == (1, 1):
        return detector.detect(images)
    tiles: list[np.ndarray] = []
    owners: list[tuple[int, int, int]] = []
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        for x, y, tw, th in [(0, 0, w, h), *tile_origins(w, h, cols, rows, overlap)]:
            tiles.append(image[y : y + th, x : x + tw])
            owners.append((i, x, y))
    found: list[list[Detection]] = [[] for _ in images]
    for (i, x, y), dets in zip(owners, detector.detect(tiles)):
        shift = np.array([x, y], dtype=np.float32)
        for d in dets:
            box = (d.box[0] + x, d.box[1] + y, d.box[2] + x, d.box[3] + y)
            found[i].append(Detection(box, d.score, d.keypoints + shift))
    out: list[list[Detection]] = []
    for dets in found:
        kept: list[Detection] = []
        for d in sorted(dets, key=lambda d: -d.score):
            b = np.asarray(d.box)
            if kept and (_iou_matrix(b, np.asarray([k.box for k in kept])) > NMS_IOU).any():
                continue
            kept.append(d)
        out.append(kept)
    return out
