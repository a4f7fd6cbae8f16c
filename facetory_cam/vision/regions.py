"""Face regions as MediaPipe face-mesh landmark indices.

The contour index lists follow the ``FACEMESH_*`` connection sets of MediaPipe's
face mesh (Apache-2.0), written out here as ordered contours so they can be
filled as polygons. The cheek, eyeshadow and nose definitions are this
project's own choices, picked by eye on real faces.

"Left" and "right" are always the *subject's*: the left eye is on the image's
right in an unmirrored photo, as in MediaPipe's ``FACEMESH_LEFT_EYE``.

``FaceSide.outline`` lists the mesh points of one side (more than 40 % of the half-width
from the midline on frontal faces) that became vertices of that side's convex hull when
real faces' meshes were turned through -75..75 degrees of yaw and -30..30 of pitch; the hull
of these points covers the side of the face in any pose, out to a turned cheek's silhouette.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FACE_OVAL",
    "HALF_FACES",
    "LEFT",
    "LIPS_INNER_LOWER",
    "LIPS_INNER_UPPER",
    "LIPS_OUTER_LOWER",
    "LIPS_OUTER_UPPER",
    "MESH_POINTS",
    "MIDLINE",
    "NOSE_OUTLINE",
    "REGION_NAMES",
    "RIGHT",
    "WITH_IRIS_POINTS",
    "FaceSide",
]

MESH_POINTS = 468  # face mesh alone
WITH_IRIS_POINTS = 478  # face mesh plus 5 points per iris (centre, then a ring of 4)

REGION_NAMES: tuple[str, ...] = (
    "upper_lip",
    "lower_lip",
    "mouth_inner",
    "left_eye",
    "right_eye",
    "left_iris",
    "right_iris",
    "left_brow",
    "right_brow",
    "left_eyeshadow",
    "right_eyeshadow",
    "left_cheek",
    "right_cheek",
    "skin",
    "nose",
)

# Lip contours, each ordered from the subject's right mouth corner (image left) to the left one.
LIPS_OUTER_UPPER: tuple[int, ...] = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER: tuple[int, ...] = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Face outline, clockwise in the image from the top of the forehead.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

# Profile line down the middle of the face, forehead to chin (skipping the inner lips).
MIDLINE: tuple[int, ...] = (
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 17, 18, 200, 199, 175, 152,
)  # fmt: skip

# Each half of the face: its side of the oval, closed by the midline.
HALF_FACES: tuple[tuple[int, ...], ...] = (
    FACE_OVAL[: FACE_OVAL.index(152) + 1] + MIDLINE[-2:0:-1],  # subject's left (image right)
    FACE_OVAL[FACE_OVAL.index(152) :] + MIDLINE[:-1],  # subject's right, back up to the forehead
)

# Nose outline: from between the eyes down the subject's left side of the bridge, round the left
# ala, under the tip (2 = base of the columella), round the right ala and back up.
NOSE_OUTLINE: tuple[int, ...] = (
    168, 351, 419, 248, 281, 363, 360, 279, 294, 327, 326, 2,
    97, 98, 64, 49, 131, 134, 51, 3, 196, 122,
)  # fmt: skip


@dataclass(frozen=True)
class FaceSide:
    """Landmark indices of one side of the face (one eye, brow, iris and cheek)."""

    eye_upper: tuple[int, ...]  # upper lid, outer corner -> inner corner
    eye_lower: tuple[int, ...]  # lower lid, outer corner -> inner corner
    brow_upper: tuple[int, ...]  # upper edge of the brow, tail -> head
    brow_lower: tuple[int, ...]  # lower edge of the brow, tail -> head
    iris_centre: int
    iris_ring: tuple[int, ...]
    cheek_centre: tuple[int, ...]  # mean of these is the apple of the cheek
    cheek_across: tuple[int, int]  # (nose side, ear side): sets the blob's long axis and its length
    cheek_down: tuple[int, int]  # (under the eye, above the mouth corner): its short axis
    outline: tuple[int, ...]  # points of this side whose convex hull bounds it in any head pose

    @property
    def eye_contour(self) -> tuple[int, ...]:
        """The 16-point eye opening as one closed polygon."""
        return self.eye_upper + self.eye_lower[-2:0:-1]

    @property
    def brow_contour(self) -> tuple[int, ...]:
        """The brow as one closed polygon: along the top edge, back along the bottom edge."""
        return self.brow_upper + self.brow_lower[::-1]

    @property
    def eyeshadow_contour(self) -> tuple[int, ...]:
        """Lid to brow: along the upper lid, back along the brow's lower edge."""
        return self.eye_upper + self.brow_lower[::-1]


_LEFT_OUTLINE: tuple[int, ...] = (
    251, 258, 264, 266, 276, 280, 283, 284, 288, 293, 295, 296, 297, 298, 299, 300, 301, 307,
    322, 323, 332, 333, 334, 345, 352, 356, 361, 364, 365, 366, 367, 376, 378, 379, 385, 389,
    395, 397, 401, 411, 416, 423, 424, 425, 427, 431, 433, 434, 435, 442, 447, 454,
)  # fmt: skip
_RIGHT_OUTLINE: tuple[int, ...] = (
    21, 34, 36, 46, 50, 53, 54, 58, 62, 63, 65, 66, 67, 68, 69, 70, 71, 92, 93, 103, 104, 105,
    116, 123, 127, 132, 135, 136, 137, 138, 145, 146, 147, 149, 150, 162, 170, 172, 177, 187,
    192, 204, 205, 207, 211, 213, 214, 215, 227, 234,
)  # fmt: skip

LEFT = FaceSide(
    eye_upper=(263, 466, 388, 387, 386, 385, 384, 398, 362),
    eye_lower=(263, 249, 390, 373, 374, 380, 381, 382, 362),
    brow_upper=(300, 293, 334, 296, 336),
    brow_lower=(276, 283, 282, 295, 285),
    iris_centre=473,
    iris_ring=(474, 475, 476, 477),
    cheek_centre=(280, 425, 411, 347),
    cheek_across=(423, 352),
    cheek_down=(347, 427),
    outline=_LEFT_OUTLINE,
)

RIGHT = FaceSide(
    eye_upper=(33, 246, 161, 160, 159, 158, 157, 173, 133),
    eye_lower=(33, 7, 163, 144, 145, 153, 154, 155, 133),
    brow_upper=(70, 63, 105, 66, 107),
    brow_lower=(46, 53, 52, 65, 55),
    iris_centre=468,
    iris_ring=(469, 470, 471, 472),
    cheek_centre=(50, 205, 187, 118),
    cheek_across=(203, 123),
    cheek_down=(118, 207),
    outline=_RIGHT_OUTLINE,
)
