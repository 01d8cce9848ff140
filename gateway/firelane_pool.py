"""The fire-lane worker pool: a worker config's cameras spread over processes, each supervised.

`campus-gateway firelane worker --config FILE` is the parent: it starts `processes` children
(`... --shard K/N`), each running its share of the cameras in threads, and restarts a child that
dies with exponential backoff. Decoding is CPU-bound and the GIL serialises Python between
frames, so processes, not threads, are what spread cameras over cores. Children stop by
themselves when the parent is gone (they watch their parent's pid).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from drivers.camera import Backoff
from gateway.firelane import EXIT_OK, FirelaneWorkerConfig, shard_cameras

log = logging.getLogger(__name__)

# A child that ran this long before dying was healthy: its next restart starts the backoff over.
STABLE_S = 60.0
STOP_WAIT_S = 15.0


@dataclass
class WorkerChild:
    """One child process of the pool: which cameras it runs, and its restart state."""

    index: int
    count: int
    command: list[str]
    cameras: list[str]
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, max_s=60.0))
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0  # monotonic; when a dead child may start again
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"fire-lane worker {self.index + 1}/{self.count}"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started_at = time.monotonic()
        log.info("%s started (pid %d): cameras %s", self.name, self.process.pid, ", ".join(self.cameras))

    def check(self, now: float) -> None:
        """Notice a death and schedule the restart; start again once the delay has passed."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.process = None
            if now - self.started_at >= STABLE_S:
                self.backoff.reset()
            delay_s = self.backoff.next_delay_s()
            self.restart_at = now + delay_s
            self.restarts += 1
            log.error("%s exited with status %d; restarting in %.0f s", self.name, code, delay_s)
            return
        if now >= self.restart_at:
            self.start()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in %.0f s; killing it", self.name, STOP_WAIT_S)
            self.process.kill()
            self.process.wait()


def pool_children(config_path: Path, config: FirelaneWorkerConfig) -> list[WorkerChild]:
    groups = shard_cameras(config.cameras, config.worker_processes)
    base = [sys.executable, "-m", "gateway.firelane", "firelane", "worker", "--config", str(config_path)]
    return [
        WorkerChild(index, len(groups), [*base, "--shard", f"{index}/{len(groups)}"], [c.id for c in group])
        for index, group in enumerate(groups)
    ]


def run_pool(config_path: Path, config: FirelaneWorkerConfig, stop: threading.Event) -> int:
    """Run the children until `stop` is set, then stop them (SIGTERM, then SIGKILL)."""
    children = pool_children(config_path, config)
    log.info("fire-lane pool: %d cameras over %d processes", len(config.cameras), len(children))
    try:
        while True:
            now = time.monotonic()
            for child in children:
                child.check(now)
            if stop.wait(0.5):
                break
    finally:
        for child in children:
            child.terminate()
        deadline = time.monotonic() + STOP_WAIT_S
        for child in children:
            child.wait(deadline)
    return EXIT_OK
