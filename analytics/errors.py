"""Errors for input the gateway cannot accept, whichever driver it came through."""

from __future__ import annotations


class PayloadError(ValueError):
    """A message that fails validation; it is dead-lettered with `reason`."""

    def __init__(self, reason: str, detail: str, device_id: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device_id = device_id
