"""Error types of the Modbus driver: bad model files, bad settings, failed polls."""

from __future__ import annotations

from enum import StrEnum


class ModbusError(Exception):
    """Base of every error the Modbus driver raises."""


class ModelError(ModbusError):
    """A register-map YAML file is malformed; the message names the file, model and field."""


class SettingsError(ModbusError):
    """The Modbus settings are inconsistent (an unknown model, clashing bus settings)."""


class NonFiniteValue(ModbusError):
    """A register decoded to NaN or infinity: not a measurement, so it is rejected, not stored."""


class FailureKind(StrEnum):
    """Why one poll of a device failed; each kind is counted separately per device."""

    TIMEOUT = "timeout"
    EXCEPTION = "exception"
    CRC = "crc"
    DISCONNECT = "disconnect"


class PollFailure(ModbusError):
    """One request got no usable answer.

    Args:
        kind: the failure class counted in the device statistics.
        exception_code: the Modbus exception code, for `FailureKind.EXCEPTION` only.
        detail: free text for the log.
    """

    def __init__(self, kind: FailureKind, detail: str = "", exception_code: int = 0) -> None:
        self.kind = kind
        self.exception_code = exception_code
        self.detail = detail
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.kind is FailureKind.EXCEPTION:
            return f"exception code {self.exception_code}"
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value
