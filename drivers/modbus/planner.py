"""Read coalescing: turn a register map into as few read requests as the protocol allows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from drivers.modbus.registers import DeviceModel, Function


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers or bits of `function` starting at `address`."""

    function: Function
    address: int
    count: int

    @property
    def end(self) -> int:
        """One past the last address read."""
        return self.address + self.count


def used_addresses(model: DeviceModel) -> dict[Function, set[int]]:
    """Every address of every table that the model's points need."""
    used: dict[Function, set[int]] = defaultdict(set)
    for value in model.values:
        used[value.function].update(value.addresses)
    for flag in model.flags:
        used[flag.function].add(flag.address)
    return used


def plan_reads(model: DeviceModel) -> list[ReadBlock]:
    """Cover the model's addresses with contiguous blocks of at most the protocol maximum.

    Gaps are never bridged: many devices answer a read of an unmapped address with exception 2
    (illegal data address). A value that would straddle the size limit starts a new block, so one
    32-bit value is never split over two requests (which could read a torn value).
    """
    blocks: list[ReadBlock] = []
    wide_starts: dict[Function, set[int]] = defaultdict(set)
    for value in model.values:
        if value.type.width == 2:
            wide_starts[value.function].add(value.address)
    for function, addresses in sorted(used_addresses(model).items()):
        begin: int | None = None
        previous = -2
        for address in sorted(addresses):
            too_long = begin is not None and address - begin >= function.max_read_count
            straddles = (
                begin is not None
                and address in wide_starts[function]
                and address + 1 - begin >= function.max_read_count
            )
            if begin is None or address != previous + 1 or too_long or straddles:
                if begin is not None:
                    blocks.append(ReadBlock(function, begin, previous - begin + 1))
                begin = address
            previous = address
        if begin is not None:
            blocks.append(ReadBlock(function, begin, previous - begin + 1))
    return blocks
