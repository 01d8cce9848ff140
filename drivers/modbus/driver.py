"""The Modbus polling engine: one task per device, one shared connection per endpoint."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from analytics.devices import Inventory
from analytics.records import RecordSink
from drivers.errors import PayloadError
from drivers.modbus.config import ModbusDeviceSettings, ModbusSettings
from drivers.modbus.endpoint import Endpoint
from drivers.modbus.errors import FailureKind, PollFailure, SettingsError
from drivers.modbus.planner import ReadBlock, plan_reads
from drivers.modbus.poller import DevicePoller
from drivers.modbus.registers import DeviceModel, Function, Sample, decode_sample, load_models

log = logging.getLogger(__name__)

# Exception 5 (acknowledge) and 6 (device busy) say "ask again later"; the others will not change.
_TRANSIENT_EXCEPTION_CODES = frozenset({5, 6})


class ModbusSink(RecordSink, Protocol):
    """Where the driver delivers records, and the values it refuses (dead letters)."""

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None: ...


@dataclass(frozen=True, slots=True)
class _PolledDevice:
    settings: ModbusDeviceSettings
    endpoint: Endpoint
    blocks: list[ReadBlock]
    poller: DevicePoller


def bind_devices(
    settings: ModbusSettings, inventory: Inventory, models: dict[str, DeviceModel]
) -> list[tuple[ModbusDeviceSettings, DeviceModel]]:
    """Check every configured device against the inventory and the known models."""
    bound = []
    for index, device in enumerate(settings.devices):
        here = f"modbus.devices[{index}] ({device.id})"
        spec = inventory.get(device.id)
        if spec is None:
            raise SettingsError(f"{here}.id: no device with this id in the inventory")
        model = models.get(device.model)
        if model is None:
            known = ", ".join(sorted(models))
            raise SettingsError(f"{here}.model: unknown model {device.model!r} (known: {known})")
        if model.kind is not spec.kind:
            raise SettingsError(
                f"{here}.model: model {model.model!r} is for kind {model.kind.value!r} "
                f"but the inventory says {spec.kind.value!r}"
            )
        bound.append((device, model))
    return bound


class ModbusDriver:
    """Polls every configured Modbus device and submits normalized records to `sink`.

    Args:
        settings: the validated `modbus` config section.
        inventory: device ids and kinds; every configured device must be in it.
        sink: receives readings, alarm-bit events and status changes on the event loop, and
            `reject`s values that decoded to NaN or infinity (reason `non_finite`); the sink
            counts, logs and dead-letters those.
        clock: wall-clock seconds for record timestamps (injected by tests).

    Raises:
        ModelError: a model file is invalid.
        SettingsError: a device is not in the inventory, or its model is unknown or of another kind.
    """

    def __init__(
        self,
        settings: ModbusSettings,
        inventory: Inventory,
        sink: ModbusSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._endpoints: dict[str, Endpoint] = {}
        self._devices: list[_PolledDevice] = []
        for device, model in bind_devices(settings, inventory, load_models(settings.models_dir)):
            name = device.transport.endpoint
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                endpoint = self._endpoints[name] = Endpoint(device.transport, device.timeout_s)
            poller = DevicePoller(device.id, model.kind, model, device.offline_after_failures)
            self._devices.append(_PolledDevice(device, endpoint, plan_reads(model), poller))

    async def run(self) -> None:
        """Poll until cancelled, then close every connection."""
        try:
            if not self._devices:
                await asyncio.Event().wait()  # nothing to poll, but still run until cancelled
            async with asyncio.TaskGroup() as group:
                count = len(self._devices)
                for index, device in enumerate(self._devices):
                    # Spread first polls over the interval so requests do not arrive in bursts.
                    delay_s = device.settings.poll_interval_s * index / count
                    group.create_task(self._poll_forever(device, delay_s), name=device.poller.device_id)
        finally:
            for endpoint in self._endpoints.values():
                endpoint.close()

    def stats(self) -> dict[str, dict[str, int | float | bool]]:
        """Per-device counters: polls, good reads, failures by kind and code, online, cycle time."""
        return {device.poller.device_id: device.poller.stats.as_dict() for device in self._devices}

    async def _poll_forever(self, device: _PolledDevice, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        interval_s = device.settings.poll_interval_s
        next_due = loop.time() + delay_s
        # On Python 3.11 asyncio.wait_for (used inside pymodbus) can swallow a cancellation that
        # races with the answer arriving; checking cancelling() keeps run() from never ending.
        while task is None or not task.cancelling():
            await asyncio.sleep(max(0.0, next_due - loop.time()))
            try:
                await self._poll_once(device)
            except Exception:
                log.exception("modbus device %s: unexpected error while polling", device.poller.device_id)
            # A poll that overran its interval is not made up for with a burst of polls.
            next_due = max(next_due + interval_s, loop.time())
        raise asyncio.CancelledError

    async def _poll_once(self, device: _PolledDevice) -> None:
        loop = asyncio.get_running_loop()
        async with device.endpoint.lock:
            ts = self._clock()
            started = loop.time()
            try:
                image = await self._read_map(device)
            except PollFailure as failure:
                records = device.poller.on_failure(failure, ts, loop.time() - started)
                if device.poller.should_log(failure, loop.time()):
                    log.warning(
                        "modbus device %s (%s unit %d): %s",
                        device.poller.device_id,
                        device.endpoint.name,
                        device.settings.unit_id,
                        failure.describe(),
                    )
            else:
                sample = decode_sample(device.poller.model, image)
                records = device.poller.on_sample(sample, ts, loop.time() - started)
                self._reject(device, sample, ts)
        if records:
            self._sink.submit(records)

    def _reject(self, device: _PolledDevice, sample: Sample, ts: float) -> None:
        source = f"modbus {device.endpoint.name} unit {device.settings.unit_id}"
        for rejected in sample.rejected:
            payload = b"".join(word.to_bytes(2, "big") for word in rejected.words)
            error = PayloadError("non_finite", rejected.detail, device.poller.device_id)
            self._sink.reject(error, source, payload, ts)

    async def _read_map(self, device: _PolledDevice) -> dict[tuple[Function, int], int]:
        image: dict[tuple[Function, int], int] = {}
        for block in device.blocks:
            values = await self._read_block(device, block)
            for offset, value in enumerate(values):
                image[(block.function, block.address + offset)] = value
        return image

    async def _read_block(self, device: _PolledDevice, block: ReadBlock) -> list[int]:
        stats = device.poller.stats
        failure: PollFailure | None = None
        for _attempt in range(device.settings.retries + 1):
            stats.requests += 1
            try:
                return await device.endpoint.read(device.settings.unit_id, block)
            except PollFailure as exc:
                failure = exc
                stats.count_failure(exc)
                if exc.kind is FailureKind.EXCEPTION and exc.exception_code not in _TRANSIENT_EXCEPTION_CODES:
                    break
        assert failure is not None
        raise failure
