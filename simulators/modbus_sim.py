"""Simulated Modbus devices of any YAML model, served over TCP or RTU, with scripted scenarios.

Each `SimulatedDevice` holds engineering values and flag states and encodes them with the same
register map the driver decodes with. Scenarios (leakage rising, cable overheating, sensor fault,
unplugged, exception responses, slow answers) are plain functions in `SCENARIOS`.

Run `python -m simulators.modbus_sim --help` for the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus.registers import DeviceModel, Function, encode_value, load_models

_FUNCTION_OF_CODE = {
    1: Function.COIL,
    2: Function.DISCRETE_INPUT,
    3: Function.HOLDING,
    4: Function.INPUT,
}
_IDLE_VALUES = {
    "residual_current_ma": 35.0,
    "temp_c": 31.5,
    "current_a": 12.4,
    "voc_ppm": 1.2,
    "lel_pct": 0.0,
    "temperature_c": 22.0,
    "humidity_pct": 45.0,
}


def _idle_value(metric: str) -> float:
    for prefix, value in _IDLE_VALUES.items():
        if metric.startswith(prefix):
            return value
    return 0.0


@dataclass
class ActiveScenario:
    name: str
    started_at: float
    params: Mapping[str, float]


@dataclass
class SimulatedDevice:
    """One simulated device: its values, flags and misbehaviour, as the scenarios set them."""

    model: DeviceModel
    unit_id: int
    values: dict[str, float] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    delay_s: float = 0.0
    exception_code: int = 0
    unplugged: bool = False
    corrupt_crc: bool = False
    requests: int = 0
    scenarios: list[ActiveScenario] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        for point in self.model.values:
            self.values.setdefault(point.metric, _idle_value(point.metric))
        for flag in self.model.flags:
            self.flags.setdefault(flag.name, False)

    def play(self, name: str, **params: float) -> None:
        """Start scenario `name` (a key of `SCENARIOS`) now; it runs until `calm()`."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
        self.scenarios.append(ActiveScenario(name, self.clock(), params))
        self.advance()

    def calm(self) -> None:
        """Stop every scenario and answer normally again (values stay where they are)."""
        self.scenarios.clear()
        self.delay_s, self.exception_code = 0.0, 0
        self.unplugged = self.corrupt_crc = False

    def advance(self) -> None:
        now = self.clock()
        for scenario in self.scenarios:
            SCENARIOS[scenario.name](self, now - scenario.started_at, scenario.params)

    def table(self, function: Function) -> dict[int, int]:
        """The current content of one table: address -> register value (or 0/1 for bits)."""
        image: dict[int, int] = {}
        for point in self.model.values:
            if point.function is function:
                words = encode_value(point, self.values[point.metric], self.model.word_order_of(point))
                image.update(zip(point.addresses, words, strict=True))
        for flag in self.model.flags:
            if flag.function is function:
                state = int(self.flags[flag.name])
                if flag.bit is None:
                    image[flag.address] = state
                else:
                    image[flag.address] = image.get(flag.address, 0) | state << flag.bit
        return image

    def table_size(self, function: Function) -> int:
        addresses = [a for v in self.model.values if v.function is function for a in v.addresses]
        addresses += [f.address for f in self.model.flags if f.function is function]
        return max(addresses, default=0) + 1

    async def answer(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus SimDevice action: refresh the registers in place, or misbehave."""
        self.requests += 1
        self.advance()
        if self.unplugged:
            # With ignore_missing_devices the server then sends nothing: the client times out.
            raise NoSuchIdException(f"device {self.unit_id} is unplugged")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.exception_code:
            return ExcCodes(self.exception_code)
        function = _FUNCTION_OF_CODE.get(function_code)
        if function is None:
            return ExcCodes.ILLEGAL_FUNCTION
        for address, value in self.table(function).items():
            if function.is_bit:
                # Bit tables are packed 16 to a register, bit 0 first; start_address counts registers.
                index = address // 16 - start_address
                mask = 1 << address % 16
                registers[index] = registers[index] | mask if value else registers[index] & ~mask
            else:
                registers[address - start_address] = value
        return None

    def sim_device(self) -> SimDevice:
        """The pymodbus datastore of this device: four tables, filled by `answer` on each read."""
        coils, inputs = self.table_size(Function.COIL), self.table_size(Function.DISCRETE_INPUT)
        return SimDevice(
            id=self.unit_id,
            simdata=(
                [SimData(0, values=[False] * coils, datatype=DataType.BITS)],
                [SimData(0, values=[False] * inputs, datatype=DataType.BITS)],
                [SimData(0, values=[0] * self.table_size(Function.HOLDING), datatype=DataType.REGISTERS)],
                [SimData(0, values=[0] * self.table_size(Function.INPUT), datatype=DataType.REGISTERS)],
            ),
            action=self.answer,
        )


ScenarioStep = Callable[[SimulatedDevice, float, Mapping[str, float]], None]


def _leakage_rising(device: SimulatedDevice, elapsed_s: float, params: Mapping[str, float]) -> None:
    """Residual current of one channel ramps up; the device's own alarm bit sets at 300 mA."""
    channel = int(params.get("channel", 1))
    value = params.get("from_ma", 100.0) + params.get("rate_ma_per_s", 50.0) * elapsed_s
    device.values[f"residual_current_ma_{channel}"] = min(value, params.get("max_ma", 1000.0))
    device.flags[f"leakage_alarm_{channel}"] = value >= params.get("alarm_ma", 300.0)


def _cable_overheating(device: SimulatedDevice, elapsed_s: float, params: Mapping[str, float]) -> None:
    """Cable temperature of one channel climbs; the over-temperature bit sets at 70 °C."""
    channel = int(params.get("channel", 1))
    value = params.get("from_c", 40.0) + params.get("rate_c_per_s", 5.0) * elapsed_s
    device.values[f"temp_c_{channel}"] = min(value, params.get("max_c", 140.0))
    device.flags[f"overtemp_alarm_{channel}"] = value >= params.get("alarm_c", 70.0)


def _chem_leak(device: SimulatedDevice, elapsed_s: float, params: Mapping[str, float]) -> None:
    """VOC concentration rises in a chemical cabinet; the leak input sets at 50 ppm."""
    value = params.get("from_ppm", 5.0) + params.get("rate_ppm_per_s", 10.0) * elapsed_s
    device.values["voc_ppm"] = value
    device.flags["leak"] = value >= params.get("alarm_ppm", 50.0)


def _sensor_fault(device: SimulatedDevice, _elapsed_s: float, params: Mapping[str, float]) -> None:
    """The n-th fault flag of the model (first by default) sets."""
    faults = [flag.name for flag in device.model.flags if "fault" in flag.name]
    device.flags[faults[int(params.get("index", 0))]] = True


def _unplugged(device: SimulatedDevice, _elapsed_s: float, _params: Mapping[str, float]) -> None:
    device.unplugged = True


def _exception(device: SimulatedDevice, _elapsed_s: float, params: Mapping[str, float]) -> None:
    device.exception_code = int(params.get("code", ExcCodes.DEVICE_FAILURE))


def _corrupt_crc(device: SimulatedDevice, _elapsed_s: float, _params: Mapping[str, float]) -> None:
    """RTU answers arrive with a wrong CRC (line noise, a bad termination resistor)."""
    device.corrupt_crc = True


def _slow(device: SimulatedDevice, _elapsed_s: float, params: Mapping[str, float]) -> None:
    device.delay_s = params.get("delay_s", 2.0)


SCENARIOS: dict[str, ScenarioStep] = {
    "leakage_rising": _leakage_rising,
    "cable_overheating": _cable_overheating,
    "chem_leak": _chem_leak,
    "sensor_fault": _sensor_fault,
    "unplugged": _unplugged,
    "exception": _exception,
    "slow": _slow,
    "corrupt_crc": _corrupt_crc,
}


class ModbusSimulator:
    """One pymodbus server (a TCP port or a serial line) answering for several unit ids."""

    def __init__(self, devices: list[SimulatedDevice]) -> None:
        self.devices = {device.unit_id: device for device in devices}
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    def __getitem__(self, unit_id: int) -> SimulatedDevice:
        return self.devices[unit_id]

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start listening (port 0 picks a free one) and return the bound port."""
        server = ModbusTcpServer(self._context(), address=(host, port), ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def serve_rtu(self, port: str, baudrate: int = 9600, parity: str = "N", stopbits: int = 1) -> None:
        """Answer as RTU slaves on a serial port (e.g. one end of a socat pty pair)."""
        server = ModbusSerialServer(
            self._context(),
            framer=FramerType.RTU,
            port=port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            ignore_missing_devices=True,
            trace_packet=self._garble_rtu_answer,
        )
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus lacks hints
            self._server = None

    def _garble_rtu_answer(self, sending: bool, packet: bytes) -> bytes:
        device = self.devices.get(packet[0]) if sending and packet else None
        if device is None or not device.corrupt_crc:
            return packet
        return packet[:-1] + bytes([packet[-1] ^ 0xFF])

    def _context(self) -> list[SimDevice]:
        return [device.sim_device() for device in self.devices.values()]


def _parse_scenario(text: str) -> tuple[int, str, dict[str, float]]:
    """`UNIT:NAME[:key=value,...]`, e.g. `3:leakage_rising:channel=2,rate_ma_per_s=20`."""
    unit, name, *rest = text.split(":", 2)
    params = {}
    for pair in rest[0].split(",") if rest else []:
        key, _, value = pair.partition("=")
        params[key] = float(value)
    return int(unit), name, params


async def _main(args: argparse.Namespace) -> None:
    models = load_models(Path(args.models_dir) if args.models_dir else None)
    model = models[args.model]
    scenarios = [_parse_scenario(text) for text in args.scenario]
    simulators: list[ModbusSimulator] = []
    for server_index in range(args.servers):
        units = range(1, args.units + 1)
        simulator = ModbusSimulator([SimulatedDevice(model, unit) for unit in units])
        for unit, name, params in scenarios if server_index == 0 else []:
            simulator[unit].play(name, **params)
        simulators.append(simulator)
        if args.rtu:
            await simulator.serve_rtu(args.rtu, baudrate=args.baudrate)
            print(json.dumps({"rtu": args.rtu, "units": list(units)}), flush=True)
            break
        port = await simulator.serve_tcp(args.host, args.port + server_index if args.port else 0)
        print(json.dumps({"host": args.host, "port": port, "units": list(units)}), flush=True)
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="generic_efm4")
    parser.add_argument("--models-dir", help="extra model YAML directory")
    parser.add_argument("--servers", type=int, default=1, help="TCP servers, one port each")
    parser.add_argument("--units", type=int, default=1, help="unit ids 1..N on each server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="first TCP port (0: free ports)")
    parser.add_argument("--rtu", help="serve RTU on this serial port instead of TCP")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help=f"UNIT:NAME[:k=v,...] on the first server; names: {', '.join(sorted(SCENARIOS))}",
    )
    # The simulator's own clients come and go (tests, benchmarks); pymodbus' per-frame error
    # dumps about vanished connections are noise here.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
