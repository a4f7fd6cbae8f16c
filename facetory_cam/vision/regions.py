"""Face regions as MediaPipe face-mesh landmark indices.

The contour index lists follow the ``FACEMESH_*`` connection sets of MediaPipe's
face mesh (Apache-2.0), written out here as ordered contours so they can be
filled as polygons. The cheek, eyeshadow and nose definitions are this
project's own choices, picked by eye on real faces.

"Left" and "right" are always the *subject's*: the left eye is on the image's
right in an unmirrored photo, as in MediaPipe's ``FACEMESH_LEFT_EYE``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FACE_OVAL",
    "LEFT",
    "LIPS_INNER_LOWER",
    "LIPS_INNER_UPPER",
    "LIPS_OUTER_LOWER",
    "LIPS_OUTER_UPPER",
    "MESH_POINTS",
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
)
