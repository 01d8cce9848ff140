"""Runs a child process for the gateway's lifetime, restarting it with backoff when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


async def supervise(name: str, command: Sequence[str], backoff_max_s: float = 60.0) -> None:
    """Keep `command` running until cancelled; a crash is logged and the process restarted."""
    delay_s = 1.0
    while True:
        process = await asyncio.create_subprocess_exec(*command)
        log.info("%s started (pid %d)", name, process.pid)
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        log.error("%s exited with status %d; restarting in %.0f s", name, code, delay_s)
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, backoff_max_s)
