"""Logging as configured under `logging:`: level, plain or JSON lines, and where they go.

By default logs go to stderr, which systemd hands to the journal (bounded by journald's
`SystemMaxUse`). A `file` is rotated at `max_bytes` with `backup_count` old files kept, so the
logs of a box that runs for years take a known amount of disk either way.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: LogLevel = "INFO"
    # plain: one readable line per record; json: one JSON object per line, for a log collector.
    format: Literal["plain", "json"] = "plain"
    # Absent: stderr (the journal under systemd). Relative paths are next to the config file.
    file: Path | None = None
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    backup_count: int = Field(default=5, ge=1)

    @field_validator("level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_installed: logging.Handler | None = None  # the handler setup_logging added last


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, RFC 3339), level, logger, message, and exc if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(config: LoggingConfig, verbose: bool = False) -> None:
    """Replace the root logger's handlers with the configured one; `verbose` forces DEBUG."""
    handler: logging.Handler
    if config.file is None:
        handler = logging.StreamHandler()
    else:
        config.file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            config.file, maxBytes=config.max_bytes, backupCount=config.backup_count, encoding="utf-8"
        )
    handler.setFormatter(JsonFormatter() if config.format == "json" else logging.Formatter(_PLAIN))
    root = logging.getLogger()
    global _installed
    if _installed is not None:  # only ours: handlers others added (pytest's) stay
        root.removeHandler(_installed)
        _installed.close()
    _installed = handler
    root.addHandler(handler)
    root.setLevel("DEBUG" if verbose else config.level)
