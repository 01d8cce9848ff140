"""Register maps: decoding every type and word order, validation messages, built-in models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.errors import ModelError, NonFiniteValue
from drivers.modbus.registers import (
    DeviceModel,
    Function,
    ValuePoint,
    ValueType,
    WordOrder,
    decode_sample,
    decode_value,
    encode_value,
    load_model,
    load_models,
    parse_model,
)


def point(type_: str, scale: float = 1.0, offset: float = 0.0) -> ValuePoint:
    return ValuePoint.model_validate(
        {"metric": "m", "function": "holding", "address": 0, "type": type_, "scale": scale, "offset": offset}
    )


@pytest.mark.parametrize(
    ("type_", "order", "words", "expected"),
    [
        ("u16", WordOrder.BIG, [0xFFFE], 65534.0),
        ("i16", WordOrder.BIG, [0xFFFE], -2.0),
        ("u32", WordOrder.BIG, [0x0001, 0x0002], 65538.0),
        ("u32", WordOrder.LITTLE, [0x0002, 0x0001], 65538.0),
        ("i32", WordOrder.BIG, [0xFFFF, 0xFFFE], -2.0),
        ("i32", WordOrder.LITTLE, [0xFFFE, 0xFFFF], -2.0),
        ("f32", WordOrder.BIG, [0x3FC0, 0x0000], 1.5),
        ("f32", WordOrder.LITTLE, [0x0000, 0x3FC0], 1.5),
        ("f32", WordOrder.BIG, [0xC2F6, 0xE979], -123.456),
    ],
)
def test_decode_known_vectors(type_: str, order: WordOrder, words: list[int], expected: float) -> None:
    assert decode_value(point(type_), words, order) == pytest.approx(expected, rel=1e-6)
    assert decode_value(point(type_), encode_value(point(type_), expected, order), order) == (
        pytest.approx(expected, rel=1e-6)
    )


@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize(
    ("type_", "value", "scale", "offset"),
    [
        ("u16", 23.7, 0.1, 0.0),
        ("i16", -12.5, 0.1, 0.0),
        ("i16", -40.0, 1.0, -40.0),
        ("u32", 123456.789, 0.001, 0.0),
        ("i32", -7654321.0, 1.0, 0.0),
        ("f32", 0.125, 1.0, 0.0),
        ("f32", 412.5, 2.0, 10.0),
    ],
)
def test_scale_offset_round_trip(
    type_: str, value: float, scale: float, offset: float, order: WordOrder
) -> None:
    p = point(type_, scale, offset)
    assert len(encode_value(p, value, order)) == ValueType(type_).width
    assert decode_value(p, encode_value(p, value, order), order) == pytest.approx(value, abs=scale / 2)


def test_encode_clamps_to_the_type_range() -> None:
    assert encode_value(point("u16"), -5, WordOrder.BIG) == [0]
    assert encode_value(point("i16"), 99999, WordOrder.BIG) == [0x7FFF]


MINIMAL: dict[str, Any] = {
    "model": "acme_probe",
    "kind": "temperature",
    "values": [
        {"metric": "temperature_c", "function": "input", "address": 10, "type": "i16", "scale": 0.1},
        {"metric": "humidity_pct", "function": "input", "address": 11, "scale": 0.1},
    ],
    "flags": [
        {"name": "probe_fault", "function": "input", "address": 12, "bit": 3, "event_on": "fault"},
        {"name": "relay", "function": "coil", "address": 5, "metric": "relay_on"},
    ],
}


def broken(**changes: Any) -> dict[str, Any]:
    return MINIMAL | changes


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (
            broken(
                values=[
                    *MINIMAL["values"],
                    {"metric": "t2", "function": "input", "address": 9, "type": "u32"},
                ]
            ),
            "values[2] (t2).address",
            "overlaps values[0] (temperature_c)",
        ),
        (
            broken(flags=[{"name": "x", "function": "input", "address": 11, "bit": 0}]),
            "flags[0] (x).address",
            "overlaps values[1] (humidity_pct)",
        ),
        (
            broken(flags=[*MINIMAL["flags"], {"name": "y", "function": "input", "address": 12, "bit": 3}]),
            "flags[2] (y).bit",
            "same bit as flags[0] (probe_fault)",
        ),
        (
            broken(values=[{"metric": "big", "function": "holding", "address": 65535, "type": "f32"}]),
            "values.0",
            "passes 65535",
        ),
        (
            broken(values=[{"metric": "a", "function": "holding", "address": 70000}]),
            "values.0.address",
            "65535",
        ),
        (broken(values=[{"metric": "a", "function": "coil", "address": 1}]), "values.0", "use a flag"),
        (
            broken(flags=[{"name": "f", "function": "holding", "address": 1}]),
            "flags.0",
            "bit (0-15) is required",
        ),
        (
            broken(flags=[{"name": "f", "function": "coil", "address": 1, "bit": 2}]),
            "flags.0",
            "bit is not allowed",
        ),
        (broken(flags=[{"name": "f", "function": "input", "address": 1, "bit": 16}]), "flags.0.bit", "15"),
        (broken(kind="toaster"), "kind", "Input should be"),
        (
            broken(values=[{"metric": "a", "function": "holding", "address": 1, "type": "u64"}]),
            "values.0.type",
            "",
        ),
        (
            broken(derived=[{"metric": "worst", "max_of": ["nope"]}]),
            "derived[0].max_of",
            "'nope' is not in values",
        ),
        (
            broken(flags=[{"name": "f", "function": "coil", "address": 1, "metric": "temperature_c"}]),
            "metric name 'temperature_c'",
            "used twice",
        ),
    ],
)
def test_validation_names_model_and_field(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(data, "vendor/acme_probe.yaml")
    message = str(caught.value)
    assert message.startswith("vendor/acme_probe.yaml: model 'acme_probe': ")
    assert field in message
    assert reason in message


def test_file_name_must_match_model(tmp_path: Path) -> None:
    path = tmp_path / "other_name.yaml"
    path.write_text("model: acme_probe\nkind: temperature\n")
    with pytest.raises(ModelError, match=r"other_name\.yaml: model 'acme_probe': model: must match"):
        load_model(path)


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ModelError, match=r"bad\.yaml: cannot read model"):
        load_model(path)


def test_decode_sample_reads_values_bits_and_derived() -> None:
    model = load_models()["generic_efm4"]
    image = {(Function.INPUT, address): 0 for address in range(13)}
    image |= {
        (Function.INPUT, 0): 20,
        (Function.INPUT, 2): 350,
        (Function.INPUT, 5): 0xFF9C,  # -10.0 °C on channel 2
        (Function.INPUT, 11): 0b0001_0100,  # leakage channel 3, overtemp channel 1
    }
    sample = decode_sample(model, image)
    assert sample.values["residual_current_ma_3"] == 350
    assert sample.values["residual_current_ma"] == 350
    assert sample.values["temp_c_2"] == pytest.approx(-10.0)
    assert {name for name, on in sample.flags.items() if on} == {"leakage_alarm_3", "overtemp_alarm_1"}


@pytest.mark.parametrize(
    ("words", "shown"), [([0x7FC0, 0x0000], "nan"), ([0x7F80, 0x0000], "inf"), ([0xFF80, 0x0000], "-inf")]
)
def test_a_non_finite_f32_is_refused_with_its_registers(words: list[int], shown: str) -> None:
    with pytest.raises(
        NonFiniteValue, match=rf"m = {shown} from holding 0 \(f32, registers {words[0]:04x} 0000\)"
    ):
        decode_value(point("f32"), words, WordOrder.BIG)


def test_decode_sample_keeps_the_rest_of_a_poll_with_a_nan() -> None:
    model = load_models()["generic_chem_cabinet"]
    image = {(function, address): 0 for function in Function for address in range(6)}
    image |= {(Function.HOLDING, 0): 0x7FC0, (Function.HOLDING, 2): 120}
    sample = decode_sample(model, image)
    assert "voc_ppm" not in sample.values and sample.values["lel_pct"] == pytest.approx(12.0)
    assert [(r.metric, r.words) for r in sample.rejected] == [("voc_ppm", (0x7FC0, 0))]


SPEC_METRICS = {
    "generic_efm4": {"residual_current_ma", "temp_c_1", "temp_c_2", "temp_c_3", "temp_c_4"}
    | {"current_a_1", "current_a_2", "current_a_3"},
    "generic_chem_cabinet": {"voc_ppm", "lel_pct", "temperature_c", "humidity_pct"}
    | {"fan_on", "door_open", "lock_a", "lock_b"},
}
SPEC_EVENTS = {
    "generic_efm4": {"leakage_alarm", "overtemp_alarm", "fault"},
    "generic_chem_cabinet": {"door_opened", "door_closed", "leak_alarm"},
}


@pytest.mark.parametrize("name", sorted(SPEC_METRICS))
def test_builtin_models_speak_the_spec_names(name: str) -> None:
    model: DeviceModel = load_models()[name]
    metrics = {v.metric for v in model.values} | {d.metric for d in model.derived}
    metrics |= {f.metric for f in model.flags if f.metric}
    events = {f.event_on for f in model.flags} | {f.event_off for f in model.flags}
    assert SPEC_METRICS[name] <= metrics
    assert SPEC_EVENTS[name] <= events


def test_models_dir_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "acme_probe.yaml").write_text("model: acme_probe\nkind: temperature\n")
    models = load_models(tmp_path)
    assert {"generic_efm4", "generic_chem_cabinet", "acme_probe"} <= set(models)
    with pytest.raises(ModelError, match="not a directory"):
        load_models(tmp_path / "missing")
