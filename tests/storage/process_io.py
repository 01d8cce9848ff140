"""What this process has written to files, from Linux's per-process I/O counters."""

from __future__ import annotations

from pathlib import Path

import pytest

_IO = Path("/proc/self/io")

requires_io_counters = pytest.mark.skipif(not _IO.exists(), reason="Linux's per-process I/O counters")


def bytes_written() -> int:
    """Bytes this process has passed to write calls so far (page cache or not)."""
    for line in _IO.read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no wchar in {_IO}")
