"""Scenario scripts over a fleet: what happens on a school day, in a fire, in a break-in...

Each scenario is a plain function of (fleet, campus) that publishes a story and returns; the
demo loops them, tests call them one at a time, benchmarks use `run_load`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.fleet import Fleet

Scenario = Callable[[Fleet, list[DeviceSpec]], None]


def _of_kind(devices: list[DeviceSpec], kind: DeviceKind) -> list[DeviceSpec]:
    return [device for device in devices if device.kind is kind]


def normal_telemetry(fleet: Fleet, devices: list[DeviceSpec], rng: random.Random | None = None) -> None:
    """One round of plausible readings and an online status from every MQTT device."""
    rng = rng or random.Random()
    for device in devices:
        if device.protocol != "mqtt":
            continue
        sim = fleet.device(device.kind.value, device.id)
        if device.kind is DeviceKind.SMOKE:
            sim.telemetry(obscuration_pct_m=round(rng.uniform(0, 0.3), 2), temperature_c=round(rng.uniform(20, 26), 1),
                          battery_pct=rng.randint(60, 100))  # fmt: skip
        elif device.kind is DeviceKind.TEMPERATURE:
            sim.telemetry(
                temperature_c=round(rng.uniform(20, 30), 1), humidity_pct=round(rng.uniform(35, 60), 1)
            )
        elif device.kind is DeviceKind.ELECTRICAL_FIRE:
            sim.telemetry(
                residual_current_ma=round(rng.uniform(5, 60), 1), temp_c_1=round(rng.uniform(25, 40), 1)
            )
        elif device.kind is DeviceKind.GATE:
            sim.telemetry(open=False)
        elif device.kind is DeviceKind.CHEM_CABINET:
            sim.telemetry(voc_ppm=round(rng.uniform(0, 3), 2), lel_pct=0.0, temperature_c=22.0, humidity_pct=45.0,
                          fan_on=True, door_open=False, lock_a=True, lock_b=True)  # fmt: skip
        elif device.kind is DeviceKind.PANIC:
            sim.telemetry(battery_pct=rng.randint(60, 100))


def announce_online(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    for device in devices:
        if device.protocol == "mqtt":
            fleet.device(device.kind.value, device.id).status("online")


def kitchen_fire(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    """Heat climbs in the kitchen, then the smoke detectors there alarm."""
    heat = [d for d in _of_kind(devices, DeviceKind.TEMPERATURE) if "kitchen" in d.zone or "kitchen" in d.id]
    smoke = [d for d in _of_kind(devices, DeviceKind.SMOKE) if "kitchen" in d.zone or "kitchen" in d.id]
    for temperature in (35.0, 48.0, 58.5, 63.0):
        for device in heat:
            fleet.temperature(device.id).telemetry(temperature_c=temperature)
    for device in smoke:
        fleet.smoke(device.id).alarm()


def panic_press(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    for device in _of_kind(devices, DeviceKind.PANIC)[:1]:
        fleet.panic(device.id).press()


def forced_gate(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    for device in _of_kind(devices, DeviceKind.GATE)[:1]:
        fleet.gate(device.id).force_open()


def devices_drop_off(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    """Two devices lose power: their last will says offline."""
    for device in [d for d in devices if d.protocol == "mqtt"][-2:]:
        fleet.device(device.kind.value, device.id).status("offline")


def bad_payloads(fleet: Fleet, devices: list[DeviceSpec]) -> None:
    """Everything the spec says must be dead-lettered, never crash the gateway."""
    smoke = _of_kind(devices, DeviceKind.SMOKE)[0]
    sim = fleet.smoke(smoke.id)
    sim.publish("telemetry", b"{not json")
    sim.publish("telemetry", b"[1, 2, 3]")
    sim.publish("telemetry", b'{"values": {"temperature_c": "hot"}}')
    sim.publish("telemetry", b'{"values": {"temperature_c": NaN}}')
    sim.publish("telemetry", b'{"values": {"colour": 3}}')
    sim.publish("telemetry", json.dumps({"values": {"temperature_c": 1}, "pad": "x" * 70000}).encode())
    fleet.publish(
        f"campus/{fleet.campus_id}/smoke/not-in-inventory/telemetry", b'{"values": {"temperature_c": 20}}'
    )


SCENARIOS: dict[str, Scenario] = {
    "kitchen_fire": kitchen_fire,
    "panic_press": panic_press,
    "forced_gate": forced_gate,
    "devices_drop_off": devices_drop_off,
    "bad_payloads": bad_payloads,
}


def run_load(fleet: Fleet, device_ids: list[str], messages: int, rate_per_s: float | None = None) -> float:
    """Fleet mode: `messages` telemetry messages (~120 bytes) round-robin over temperature devices.

    Returns the seconds it took. `rate_per_s=None` publishes as fast as the client can.
    """
    started = time.perf_counter()
    campus = fleet.campus_id
    topics = [f"campus/{campus}/temperature/{device_id}/telemetry" for device_id in device_ids]
    seqs = dict.fromkeys(device_ids, 0)
    count = len(topics)
    interval = 1.0 / rate_per_s if rate_per_s else 0.0
    for n in range(messages):
        device_id = device_ids[n % count]
        seqs[device_id] += 1
        payload = (
            f'{{"ts":{time.time():.3f},"seq":{seqs[device_id]},'
            f'"values":{{"temperature_c":{20 + (n % 70) / 10:.1f},"humidity_pct":{40 + n % 20}.5}}}}'
        ).encode()
        fleet.publish(topics[n % count], payload)
        if interval:
            target = started + (n + 1) * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return time.perf_counter() - started
