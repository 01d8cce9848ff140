"""The bounds every number and string the API accepts is held to, in one table.

Unbounded input reached SQLite ("Python int too large") or was stored and then broke every
later read (a deadline in the year 3 million cannot be formatted): each limit here is checked
by the schema, so a request outside it is a 422 naming the field, never a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

# SQLite's INTEGER is a signed 64-bit value: the largest row id (and ticket version) it holds.
MAX_ROW_ID = 2**63 - 1
# Timestamps the gateway can store, format and compare: 1970 up to 2100-01-01 (Unix seconds).
MAX_TS = 4_102_444_800.0
# A deadline is set for work still to do: no earlier than 2000-01-01.
MIN_DEADLINE_TS = 946_684_800.0
NAME_CHARS = 128  # ids of devices, people, buildings, metrics
TITLE_CHARS = 200  # titles and locations
TEXT_CHARS = 4000  # notes, measures, contingency plans, comments, reasons
MAX_FUNDS_CNY = 1e12
# Request bodies: JSON is small (TEXT_CHARS fields, even fully \u-escaped, fit many times over);
# photo uploads get their configured size on top of this.
MAX_JSON_BODY_BYTES = 256 * 1024

RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Version = Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="the version you read; 409 if changed since")]
DeadlineTs = Annotated[float, Field(ge=MIN_DEADLINE_TS, le=MAX_TS, description="Unix seconds")]
NameText = Annotated[str, Field(max_length=NAME_CHARS)]
TitleText = Annotated[str, Field(min_length=1, max_length=TITLE_CHARS)]
LocationText = Annotated[str, Field(max_length=TITLE_CHARS)]
LongText = Annotated[str, Field(max_length=TEXT_CHARS)]
Funds = Annotated[float, Field(ge=0, le=MAX_FUNDS_CNY)]
