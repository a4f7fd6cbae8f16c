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
