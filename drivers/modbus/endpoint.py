"""The I/O adapter: one pymodbus client per TCP endpoint or serial port, errors as types."""

from __future__ import annotations

import asyncio
import logging

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers.modbus.config import RtuTransport, TcpTransport
from drivers.modbus.errors import FailureKind, PollFailure
from drivers.modbus.planner import ReadBlock
from drivers.modbus.registers import Function

# pymodbus logs every unanswered request and failed connect itself; the driver counts those per
# device and logs them rate-limited, so the library's per-request copies are dropped.
_REPORTED_BY_DRIVER = (
    "No response received",
    "Failed to connect",
    "Not connected, trying to connect",
    "received pdu without a corresponding request",
)


class _DropReportedFailures(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._dropped_last = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == "Repeating....":  # pymodbus' stand-in for a repeat of its last message
            return not self._dropped_last
        self._dropped_last = any(text in message for text in _REPORTED_BY_DRIVER)
        return not self._dropped_last


_PYMODBUS_LOGGER = logging.getLogger("pymodbus.logging")
if not any(isinstance(f, _DropReportedFailures) for f in _PYMODBUS_LOGGER.filters):
    _PYMODBUS_LOGGER.addFilter(_DropReportedFailures())


class Endpoint:
    """A connection shared by every device behind one TCP host:port or one serial port.

    `lock` is held for a device's whole poll: an RS-485 bus carries one request at a time, and a
    TCP-to-RTU gateway fronts such a bus, so devices of one endpoint are polled one by one.
    Different endpoints are independent, so a slow device only delays its own bus.
    """

    def __init__(self, transport: TcpTransport | RtuTransport, timeout_s: float) -> None:
        self.name = transport.endpoint
        self.lock = asyncio.Lock()
        self._transport = transport
        self._timeout_s = timeout_s
        self._received_bytes = 0
        # Created at the first read: pymodbus clients need a running event loop.
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # retries=0 and reconnect_delay=0: the driver retries and reconnects itself, so that it
        # can count every failed attempt and keep a dead device from blocking its bus for long.
        transport = self._transport
        if isinstance(transport, TcpTransport):
            return AsyncModbusTcpClient(
                transport.host,
                port=transport.port,
                timeout=self._timeout_s,
                retries=0,
                reconnect_delay=0,
                trace_packet=self._trace_packet,
            )
        return AsyncModbusSerialClient(
            transport.port,
            framer=FramerType.RTU,
            baudrate=transport.baudrate,
            parity=transport.parity,
            stopbits=transport.stopbits,
            bytesize=transport.bytesize,
            timeout=self._timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=self._trace_packet,
        )

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # pymodbus silently drops frames with a bad CRC and then times out; bytes that arrived
        # without forming a valid answer tell a corrupted reply from silence.
        if sending:
            self._received_bytes = 0
        else:
            self._received_bytes += len(data)
        return data

    async def read(self, unit_id: int, block: ReadBlock) -> list[int]:
        """Read one block; registers as ints, bits as 0/1. Raises `PollFailure`."""
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        if not client.connected and not await client.connect():
            raise PollFailure(FailureKind.DISCONNECT, f"cannot connect to {self.name}")
        try:
            response = await self._request(client, unit_id, block)
        except ModbusIOException as exc:
            if not client.connected:
                raise PollFailure(FailureKind.DISCONNECT, f"{self.name} closed") from exc
            if self._received_bytes:
                raise PollFailure(FailureKind.CRC, f"{self._received_bytes} bytes, no frame") from exc
            raise PollFailure(FailureKind.TIMEOUT, f"no answer from {self.name}") from exc
        except ConnectionException as exc:
            raise PollFailure(FailureKind.DISCONNECT, str(exc)) from exc
        if response.isError():
            raise PollFailure(FailureKind.EXCEPTION, exception_code=response.exception_code)
        if block.function.is_bit:
            return [int(bit) for bit in response.bits[: block.count]]
        if len(response.registers) != block.count:
            raise PollFailure(FailureKind.CRC, f"{len(response.registers)} registers returned")
        return list(response.registers)

    @staticmethod
    async def _request(
        client: AsyncModbusTcpClient | AsyncModbusSerialClient, unit_id: int, block: ReadBlock
    ) -> ModbusPDU:
        address, count = block.address, block.count
        if block.function is Function.HOLDING:
            return await client.read_holding_registers(address, count=count, device_id=unit_id)
        if block.function is Function.INPUT:
            return await client.read_input_registers(address, count=count, device_id=unit_id)
        if block.function is Function.COIL:
            return await client.read_coils(address, count=count, device_id=unit_id)
        return await client.read_discrete_inputs(address, count=count, device_id=unit_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
