"""Errors drivers report for input they cannot accept (the one type every driver shares)."""

from __future__ import annotations

from analytics.errors import PayloadError

__all__ = ["PayloadError"]
