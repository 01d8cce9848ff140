"""systemd's service notification protocol (sd_notify(3)): READY, STOPPING and the watchdog.

Under `Type=notify` with `WatchdogSec=`, systemd sets NOTIFY_SOCKET and WATCHDOG_USEC; the
gateway pings at half that interval from a task on its event loop, so a wedged loop (a blocking
call, a deadlock) stops the pings and systemd kills and restarts the service. Without
NOTIFY_SOCKET (not under systemd) every call here does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends `KEY=value` datagrams to systemd's notification socket, if there is one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading "@" names a socket in the abstract namespace (a NUL byte on the wire).
        self.address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_s = int(watchdog_usec) / 1e6 if watchdog_usec.isdigit() and mine else None

    def send(self, message: str) -> None:
        if not self.address:
            return
        # Non-blocking: a datagram socket whose reader is behind (its queue holds only
        # net.unix.max_dgram_qlen, 10 by default) would otherwise block the event loop here.
        # A ping dropped then is harmless; the next one follows at half the watchdog interval.
        try:
            with socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            ) as sock:
                sock.sendto(message.encode(), self.address)
        except BlockingIOError:
            log.debug("sd_notify %s dropped: systemd is not reading", message.split("=")[0])
        except OSError as exc:  # systemd gone or restarting: the service itself carries on
            log.warning("sd_notify %s failed: %s", message.split("=")[0], exc)

    async def serve(self, ready: asyncio.Event) -> None:
        """READY=1 once `ready` is set, then WATCHDOG=1 every half watchdog interval until cancelled."""
        await ready.wait()
        self.send("READY=1")
        if self.watchdog_s is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_s / 2)
