"""Errors a user can act on; the CLI prints their message and exits with their code."""

from __future__ import annotations


class FacetoryError(Exception):
    """Base of errors that carry a user-facing message and an exit code."""

    exit_code = 1


class ImageError(FacetoryError):
    """The input is not a readable, reasonably sized image."""

    exit_code = 2


class NoFaceError(FacetoryError):
    """The image was read but no face was found in it."""

    exit_code = 3


class VirtualCameraError(FacetoryError):
    """The virtual camera device cannot be opened; the message says how to set it up on this OS."""

    exit_code = 4


class SourceError(FacetoryError):
    """A camera or file source cannot deliver frames (missing, busy, unreadable); the message says why."""

    exit_code = 5


class UnusableFaceError(NoFaceError):
    """A face was found but cannot be read reliably (too small, in profile, covered); the message says why."""


class FaceIndexError(NoFaceError):
    """A face was asked for by number and the photo has no face with that number."""
