"""Read coalescing: contiguous blocks, protocol size limits, no torn 32-bit values."""

from __future__ import annotations

from typing import Any

from drivers.modbus.planner import ReadBlock, plan_reads
from drivers.modbus.registers import DeviceModel, Function, load_models


def model(
    values: list[dict[str, Any]] | None = None, flags: list[dict[str, Any]] | None = None
) -> DeviceModel:
    return DeviceModel.model_validate(
        {"model": "t", "kind": "temperature", "values": values or [], "flags": flags or []}
    )


def registers(function: str, addresses: range, type_: str = "u16") -> list[dict[str, Any]]:
    return [
        {"metric": f"{function}_{a}", "function": function, "address": a, "type": type_} for a in addresses
    ]


def test_builtin_efm4_is_one_request() -> None:
    assert plan_reads(load_models()["generic_efm4"]) == [ReadBlock(Function.INPUT, 0, 13)]


def test_builtin_chem_cabinet_is_one_request_per_table() -> None:
    assert sorted(plan_reads(load_models()["generic_chem_cabinet"]), key=str) == sorted(
        [
            ReadBlock(Function.HOLDING, 0, 6),
            ReadBlock(Function.COIL, 0, 1),
            ReadBlock(Function.DISCRETE_INPUT, 0, 4),
        ],
        key=str,
    )


def test_gaps_are_not_bridged() -> None:
    m = model(registers("holding", range(0, 3)) + registers("holding", range(10, 12)))
    assert plan_reads(m) == [ReadBlock(Function.HOLDING, 0, 3), ReadBlock(Function.HOLDING, 10, 2)]


def test_blocks_stop_at_125_registers() -> None:
    blocks = plan_reads(model(registers("input", range(300))))
    assert [(b.address, b.count) for b in blocks] == [(0, 125), (125, 125), (250, 50)]


def test_a_32_bit_value_is_never_split() -> None:
    energy = {"metric": "energy", "function": "holding", "address": 124, "type": "u32"}
    values = [*registers("holding", range(124)), energy]
    blocks = plan_reads(model(values))
    assert [(b.address, b.count) for b in blocks] == [(0, 124), (124, 2)]


def test_bit_blocks_stop_at_2000() -> None:
    flags = [{"name": f"c{a}", "function": "coil", "address": a} for a in range(2500)]
    blocks = plan_reads(model(flags=flags))
    assert [(b.function, b.address, b.count) for b in blocks] == [
        (Function.COIL, 0, 2000),
        (Function.COIL, 2000, 500),
    ]


def test_bits_of_one_register_cost_one_register() -> None:
    flags = [{"name": f"b{bit}", "function": "input", "address": 7, "bit": bit} for bit in range(16)]
    assert plan_reads(model(flags=flags)) == [ReadBlock(Function.INPUT, 7, 1)]
