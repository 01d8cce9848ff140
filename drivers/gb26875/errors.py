"""Why the GB/T 26875.3 receiver refused some input: typed reasons, dead-lettered like MQTT's."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import PayloadError


class RejectReason(StrEnum):
    """Every reason the receiver dead-letters input; each is counted separately."""

    GARBAGE = "garbage"  # bytes before a start marker `@@`
    TRUNCATED = "truncated_frame"  # a frame that stopped arriving before its claimed length
    BAD_END_MARKER = "bad_end_marker"
    BAD_CHECKSUM = "bad_checksum"
    LENGTH_OVER_LIMIT = "length_over_limit"
    UNKNOWN_COMMAND = "unknown_command"
    BAD_APP_DATA = "bad_app_data"  # an intact frame whose application data does not parse
    VENDOR_TYPE = "vendor_type"  # a vendor data unit type (128-255), kept as bytes
    UNSUPPORTED_TYPE = "unsupported_type"  # a reserved or downstream type sent upstream
    UNKNOWN_DEVICE = "unknown_device"
    KIND_MISMATCH = "kind_mismatch"
    UNMAPPED_STATUS = "unmapped_status"  # a flag the device's mapping has no event for
    UNMAPPED_ANALOG = "unmapped_analog"  # an analog type the device's mapping has no metric for
    DECODER_ERROR = "decoder_error"  # a bug met on this input; logged, and the receiver goes on


# GB/T 26875.3-2011 6.5 (and SPEC 12): these checking errors are answered with deny (command 6).
DENIED_REASONS = frozenset(
    {
        RejectReason.BAD_END_MARKER,
        RejectReason.BAD_CHECKSUM,
        RejectReason.LENGTH_OVER_LIMIT,
        RejectReason.UNKNOWN_COMMAND,
    }
)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The fields of a control unit needed to answer a frame, even a broken one."""

    serial: int
    source: int
    destination: int
    version_major: int = 1
    version_minor: int = 1


class FrameRejected(PayloadError):
    """Input the receiver could not accept: a reason code, what was wrong, and the raw bytes.

    Args:
        reason: the counted reason code.
        detail: what a person reading the dead-letter table needs to know.
        raw: the bytes as received (a frame, a run of garbage, or one data unit).
        header: the control unit when it could be read, so a deny can be addressed.
        device_id: the inventory device it concerns, or a synthetic id for an unknown one.
    """

    def __init__(
        self,
        reason: RejectReason,
        detail: str,
        raw: bytes = b"",
        header: FrameHeader | None = None,
        device_id: str = "",
    ) -> None:
        super().__init__(reason.value, detail, device_id)
        self.reason_code = reason
        self.raw = raw
        self.header = header

    @property
    def deniable(self) -> bool:
        """True when the standard says to answer with deny and the header says to whom."""
        return self.header is not None and self.reason_code in DENIED_REASONS

    def __repr__(self) -> str:
        return f"FrameRejected({self.reason_code.value}, {self.detail!r}, {len(self.raw)} bytes)"
