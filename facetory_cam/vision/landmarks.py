"""Face mesh (468 points) and iris refinement (to 478 points) on rotated crops.

Every call takes the crops of all faces at once, so one model call serves every
face (and every source) in a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetory_cam.interfaces import InferenceBackend
from facetory_cam.vision.detector import Detection
from facetory_cam.vision.geometry import Roi, crop, project, roi_from_points, rotation_from, square_roi

MESH_SIZE = 192
IRIS_SIZE = 64
ROI_SCALE = 1.5
IRIS_ROI_SCALE = 2.3
# Eye corners that define each eye's crop; the image-right eye is mirrored for the iris model.
EYE_CORNERS = ((33, 133), (362, 263))
# The first 16 of the iris model's 71 eye-contour points, in face-mesh indices (image-left eye;
# the mirrored eye uses the mirror-image indices).
EYE_CONTOUR = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
)
IRIS_OFFSET = (468, 473)  # centre then 4 ring points for each eye
IRIS_RADIUS_PER_EYE_WIDTH = 0.195  # a human iris (~11.7 mm across) over the eye opening (~30 mm)


def approximate_iris(mesh: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks from a (468, 3) mesh without the iris model, for faces too small for it.

    The iris centre is the middle of the eye opening and its ring an average-sized circle:
    on a face a few dozen pixels wide the iris model has nothing to refine, and every
    consumer of 478 points (masks, the iris layer) keeps working.
    """
    full = np.empty((478, 3), dtype=np.float32)
    full[:468] = mesh[:468]
    for side, (a, b) in enumerate(EYE_CORNERS):
        contour = mesh[list(EYE_CONTOUR[side])]
        centre = contour.mean(axis=0)
        axis = mesh[b, :2] - mesh[a, :2]
        width = float(np.hypot(*axis))
        u = axis / max(width, 1e-6)
        v = np.array([-u[1], u[0]], dtype=np.float32)
        r = IRIS_RADIUS_PER_EYE_WIDTH * width
        start = IRIS_OFFSET[side]
        full[start, :2] = centre[:2]
        for k, d in enumerate((u, v, -u, -v)):
            full[start + 1 + k, :2] = centre[:2] + r * d
        full[start : start + 5, 2] = centre[2]
    return full


@dataclass(frozen=True)
class MeshResult:
    landmarks: np.ndarray  # (468, 3) image pixels (z scaled like x)
    presence: float


def roi_from_detection(det: Detection) -> Roi:
    """MediaPipe's detection-to-ROI: eye-line rotation, 1.5x square around the box."""
    x0, y0, x1, y1 = det.box
    rot = rotation_from(det.keypoints[0], det.keypoints[1])
    return square_roi((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rot, ROI_SCALE)


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """The next frame's crop from this frame's mesh (eye corners 33 -> 263)."""
    return roi_from_points(landmarks[:468, :2], 33, 263, ROI_SCALE)


class FaceMesh:
    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend

    def run(
        self, image: np.ndarray | list[np.ndarray], rois: list[Roi], owners: list[int] | None = None
    ) -> list[MeshResult]:
        """Landmarks for each ROI; ``owners[i]`` picks the image of ROI i when several images are given."""
        if not rois:
            return []
        images = image if isinstance(image, list) else [image]
        owners = owners or [0] * len(rois)
        batch = np.stack([crop(images[o], r, MESH_SIZE) for o, r in zip(owners, rois)]).astype(np.float32)
        batch *= 1.0 / 255.0
        coords, logits = self.backend.run(batch)
        coords = coords.reshape(len(rois), 468, 3)
        presence = 1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))
        return [
            MeshResult(project(coords[i], rois[i], MESH_SIZE).astype(np.float32), float(presence[i]))
            for i in range(len(rois))
        ]


class IrisRefiner:
    """Runs the iris model on both eyes of every face and extends the mesh to 478 points."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend

    @staticmethod
    def eye_rois(mesh: np.ndarray) -> list[Roi]:
        return [roi_from_points(mesh[[a, b], :2], 0, 1, IRIS_ROI_SCALE) for a, b in EYE_CORNERS]

    def run(
        self, image: np.ndarray | list[np.ndarray], meshes: list[np.ndarray], owners: list[int] | None = None
    ) -> list[np.ndarray]:
        """(478, 3) landmarks for each (468, 3) mesh."""
        if not meshes:
            return []
        images = image if isinstance(image, list) else [image]
        owners = owners or [0] * len(meshes)
        rois, crops = [], []
        for mesh, o in zip(meshes, owners):
            for side, roi in enumerate(self.eye_rois(mesh)):
                rois.append(roi)
                crops.append(crop(images[o], roi, IRIS_SIZE, flip=side == 1))
        batch = np.stack(crops).astype(np.float32) * (1.0 / 255.0)
        contours, irises = self.backend.run(batch)
        out = []
        for f, mesh in enumerate(meshes):
            full = np.empty((478, 3), dtype=np.float32)
            full[:468] = mesh
            for side in range(2):
                k = 2 * f + side
                flip = side == 1
                eye = project(contours[k].reshape(71, 3)[:16], rois[k], IRIS_SIZE, flip=flip)
                iris = project(irises[k].reshape(5, 3), rois[k], IRIS_SIZE, flip=flip)
                idx = list(EYE_CONTOUR[side])
                full[idx, :2] = eye[:, :2]
                start = IRIS_OFFSET[side]
                full[start : start + 5, :2] = iris[:, :2]
                full[start : start + 5, 2] = mesh[idx, 2].mean()
            out.append(full)
        return out
