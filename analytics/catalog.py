"""What each device kind may report (SPEC section 2): the metrics and event names it speaks."""

from __future__ import annotations

from analytics.records import DeviceKind

_BATTERY = frozenset({"battery_pct"})

# A camera's health as the video worker reports it (telemetry, every `health_interval_s`):
# frames per second from the stream and analysed, age of the last good frame, and the worker's
# running counts of failed reads/decodes and of reconnects (reset when the worker restarts);
# and how the stream is decoded: its codec (a number, CAMERA_CODECS), whether only its key
# frames are decoded (1) or every frame (0), and the interval between its key frames.
CAMERA_HEALTH_METRICS = frozenset(
    {
        "stream_fps",
        "sampled_fps",
        "last_frame_age_s",
        "decode_errors",
        "reconnects",
        "codec",
        "key_frames_only",
        "key_frame_interval_s",
    }
)
# A camera's `codec` health value: 264 for H.264, 265 for H.265, 0 for another codec.
CAMERA_CODECS = {"h264": 264, "hevc": 265}
CAMERA_CODEC_NAMES = {number: name for name, number in CAMERA_CODECS.items()}

METRICS: dict[DeviceKind, frozenset[str]] = {
    DeviceKind.SMOKE: frozenset({"obscuration_pct_m", "temperature_c"}) | _BATTERY,
    DeviceKind.TEMPERATURE: frozenset({"temperature_c", "humidity_pct"}) | _BATTERY,
    DeviceKind.ELECTRICAL_FIRE: frozenset(
        {"residual_current_ma"}
        | {f"residual_current_ma_{n}" for n in range(1, 5)}  # per channel, as 4-channel monitors report
        | {f"temp_c_{n}" for n in range(1, 5)}
        | {f"current_a_{n}" for n in range(1, 4)}
    ),
    DeviceKind.PANIC: _BATTERY,
    DeviceKind.GATE: frozenset({"open"}),
    DeviceKind.CHEM_CABINET: frozenset(
        {
            "voc_ppm",
            "lel_pct",
            "temperature_c",
            "humidity_pct",
            "fan_on",
            "door_open",
            "lock_a",
            "lock_b",
        }
    ),
    DeviceKind.CAMERA: frozenset({"occupancy"}) | CAMERA_HEALTH_METRICS,
    DeviceKind.FIRE_PANEL: frozenset(),
}


def _with_clears(*names: str) -> frozenset[str]:
    return frozenset(names) | {f"{name}_clear" for name in names}


EVENTS: dict[DeviceKind, frozenset[str]] = {
    DeviceKind.SMOKE: _with_clears("alarm", "fault", "tamper") | {"test"},
    DeviceKind.TEMPERATURE: _with_clears("fault", "tamper"),
    DeviceKind.ELECTRICAL_FIRE: _with_clears("leakage_alarm", "overtemp_alarm", "fault"),
    DeviceKind.PANIC: _with_clears("tamper", "fault") | {"pressed", "cancelled"},
    DeviceKind.GATE: frozenset(
        {
            "opened",
            "closed",
            "forced_open",
            "held_open",
            "access_granted",
            "access_denied",
            "bollard_raised",
            "bollard_lowered",
        }
    )
    | _with_clears("fault", "tamper"),
    DeviceKind.CHEM_CABINET: _with_clears("leak_alarm", "fault", "tamper")
    | {"badge", "door_opened", "door_closed"},
    DeviceKind.CAMERA: frozenset({"lane_blocked", "lane_cleared", "camera_fault", "camera_ok"}),
    DeviceKind.FIRE_PANEL: _with_clears("alarm", "fault") | {"operation"},
}
