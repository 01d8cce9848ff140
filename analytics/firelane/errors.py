"""Errors of the fire-lane analytics, with messages an installer can act on."""

from __future__ import annotations


class FirelaneError(ValueError):
    """Base class: bad lane geometry, bad reference, bad frame."""


class LaneGeometryError(FirelaneError):
    """A lane polygon is degenerate or does not fit inside the camera frame."""


class FrameSizeError(FirelaneError):
    """A frame's size differs from the calibrated reference's size."""
