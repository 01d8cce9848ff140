"""A real VictoriaMetrics (Debian's `victoria-metrics`) per test: free port, its own data directory.

It accepts InfluxDB v2 line protocol at /api/v2/write, so influxdb-client writes to it unchanged.
`-dedup.minScrapeInterval=1ms` makes it keep one sample per series and millisecond, as InfluxDB
overwrites a point of the same series and time: a batch sent twice (at-least-once) is stored once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.broker import free_port
from storage.sqlite import SqliteStore


@dataclass
class Victoria:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        if not Path(binary).exists():
            pytest.fail("victoria-metrics is not installed; .ci/run installs it with apt-get")
        log = (self.data_dir.parent / "victoria.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",
                "-search.disableCache",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("victoria-metrics did not answer /health within 20 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, object]]:
        """Every series matching, with its samples (deduplicated), once two looks agree.

        A flush makes new samples searchable, but a series created a moment ago can still be
        missing from the index for a little while: the answer counts once it stops changing.
        """
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        previous: list[dict[str, object]] | None = None
        deadline = time.monotonic() + 15
        while True:
            urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
            with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=60) as response:
                found = [json.loads(line) for line in response.read().splitlines() if line.strip()]
            found.sort(key=lambda series: json.dumps(series["metric"], sort_keys=True))
            if found == previous or time.monotonic() > deadline:
                return found
            previous = found
            time.sleep(1.0)

    def count(self, match: str) -> int:
        """Samples the server itself counts (its query engine, deduplication applied)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
        query = urllib.parse.urlencode({"query": f"sum(count_over_time({match}[1y]))"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=60) as response:
            result = json.loads(response.read())["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def points(self, match: str = '{__name__=~".+"}') -> tuple[int, int]:
        """(series, samples) stored: distinct timestamps per series.

        While parts are being merged, the export can list one series on more than one line (seen
        under load: 42 lines for 40 series, 136 samples more than a restart of it then held); what is
        stored is the union.
        """
        stamps: dict[str, set[int]] = {}
        for series in self.export(match):
            key = json.dumps(series["metric"], sort_keys=True)
            stamps.setdefault(key, set()).update(series["timestamps"])  # type: ignore[arg-type]
        return len(stamps), sum(len(found) for found in stamps.values())


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    server = Victoria(tmp_path / "victoria" / "data")
    server.data_dir.mkdir(parents=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "gw.db")
    store.open()
    yield store
    store.close()
