"""Upstream forwarding, as declared in the gateway config (`sinks:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Precision = Literal["s", "ms", "us", "ns"]


class InfluxSinkConfig(BaseModel):
    """An InfluxDB v2 write API (InfluxDB, or VictoriaMetrics at /api/v2/write).

    The token is best set from the environment: `CAMPUS_GATEWAY__SINKS__INFLUX__TOKEN`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    org: str = ""
    bucket: str = Field(min_length=1)
    token: str = ""
    precision: Precision = "ms"
    batch_rows: int = Field(default=5000, ge=1, le=100_000)  # per stream and request
    # Replay after an outage is paced so it cannot starve live ingest of the CPU it shares.
    max_rows_per_s: float = Field(default=50_000.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)  # when caught up
    timeout_s: float = Field(default=10.0, gt=0)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    # While the TSDB is away, batches are rendered ahead into a spool beside the database (at most
    # this many bytes; 0: none), so that its return finds them ready to send. About 55 bytes a
    # reading: the default holds some two and a half hours of a 2,000 readings/s campus.
    spool_max_bytes: int = Field(default=1 << 30, ge=0)


class MqttPublishConfig(BaseModel):
    """The gateway's own topics on the campus broker, `campus/{campus_id}/gateway/...`, for a
    mosquitto bridge to carry to a district broker (config/mosquitto/bridge.conf)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    client_id: str = "campus-gateway-publisher"


class SinksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    influx: InfluxSinkConfig | None = None
    mqtt: MqttPublishConfig = MqttPublishConfig()
