"""Errors for input the gateway cannot accept, whichever driver it came through."""

from __future__ import annotations

MAX_DETAIL_CHARS = 200


class PayloadError(ValueError):
    """A message that fails validation; it is dead-lettered with `reason`."""

    def __init__(self, reason: str, detail: str, device_id: str = "") -> None:
        if len(detail) > MAX_DETAIL_CHARS:  # it quotes the payload: a log line, not a copy of it
            detail = detail[:MAX_DETAIL_CHARS] + "…"
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device_id = device_id
