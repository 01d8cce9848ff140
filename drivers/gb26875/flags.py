"""The status and operation bit tables of GB/T 26875.3-2011 8.2.1, one IntFlag per table.

The tables differ, and public codecs mix them up (SPEC 12): in a component status bit 0 is the
run/test mode, not "normal", and bit 8 is power fault with 9-15 reserved; main and backup power
bits belong to the system status; the transmission device's status byte has its own table, where
bit 3 is main power fault (not shield).
"""

from __future__ import annotations

from enum import IntFlag


class ComponentFlag(IntFlag):
    """Component status (type 2), 2 bytes."""

    RUNNING = 1 << 0  # 1 running, 0 test mode; real devices send alarms with it clear
    FIRE_ALARM = 1 << 1
    FAULT = 1 << 2
    SHIELDED = 1 << 3
    SUPERVISORY = 1 << 4
    STARTED = 1 << 5
    FEEDBACK = 1 << 6
    DELAYED = 1 << 7
    POWER_FAULT = 1 << 8


class SystemFlag(IntFlag):
    """System (panel) status (type 1), 2 bytes."""

    RUNNING = 1 << 0
    FIRE_ALARM = 1 << 1
    FAULT = 1 << 2
    SHIELDED = 1 << 3
    SUPERVISORY = 1 << 4
    STARTED = 1 << 5
    FEEDBACK = 1 << 6
    DELAYED = 1 << 7
    MAIN_POWER_FAULT = 1 << 8
    BACKUP_POWER_FAULT = 1 << 9
    BUS_FAULT = 1 << 10
    MANUAL_MODE = 1 << 11
    CONFIG_CHANGED = 1 << 12
    RESET = 1 << 13


class TransmitterFlag(IntFlag):
    """The transmission device's own status (type 21), 1 byte."""

    MONITORING = 1 << 0  # 1 normal monitoring, 0 test
    FIRE_ALARM = 1 << 1
    FAULT = 1 << 2
    MAIN_POWER_FAULT = 1 << 3
    BACKUP_POWER_FAULT = 1 << 4
    CHANNEL_FAULT = 1 << 5  # the link to the monitoring centre
    LINE_FAULT = 1 << 6  # the monitoring line to the panel


class SystemOperationFlag(IntFlag):
    """Operations on the panel (type 4)."""

    RESET = 1 << 0
    MUTE = 1 << 1
    MANUAL_ALARM = 1 << 2
    ALARM_CLEARED = 1 << 3
    SELF_TEST = 1 << 4
    CONFIRMED = 1 << 5
    TEST = 1 << 6


class TransmitterOperationFlag(IntFlag):
    """Operations on the transmission device (type 24)."""

    RESET = 1 << 0
    MUTE = 1 << 1
    MANUAL_ALARM = 1 << 2
    ALARM_CLEARED = 1 << 3
    SELF_TEST = 1 << 4
    ROLL_CALL_ANSWERED = 1 << 5
    TEST = 1 << 6


def flag_names(flags: IntFlag) -> list[str]:
    """The set flags' names in lower case, in bit order (for event attributes)."""
    return [member.name.lower() for member in type(flags) if member in flags and member.name]
