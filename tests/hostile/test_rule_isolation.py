"""One rule failing, on a record, a tick or a followed signal, never costs another rule's verdict."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics.alerts import AlertSignal, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceKind, Record
from analytics.rules.base import Rule
from analytics.rules.defaults import default_rules
from analytics.rules.engine import RuleEngine

SMOKE = frozenset({DeviceKind.SMOKE})


@dataclass
class ExplodingRule(Rule):
    """Fails on everything from the device `poisoned`, on every tick and on every fire alarm."""

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if device.id == "poisoned":
            raise RecursionError("maximum recursion depth exceeded")
        return ()

    def tick(self, now: float) -> Iterable[AlertSignal]:
        raise ValueError("broken tick")

    def followed_rules(self) -> frozenset[str]:
        return frozenset({"fire_alarm"})

    def on_signal(self, signal: AlertSignal, device: DeviceSpec | None) -> Iterable[AlertSignal]:
        raise KeyError(signal.subject)


@dataclass
class TickingRule(Rule):
    def tick(self, now: float) -> Iterable[AlertSignal]:
        return (AlertSignal(self.name, "zone", True, now),)


def test_a_rule_that_raises_never_blocks_the_other_rules() -> None:
    errors: list[str] = []
    exploding = ExplodingRule("exploding", SMOKE, Severity.WARNING)
    engine = RuleEngine(
        [exploding, *default_rules(), TickingRule("ticking", SMOKE, Severity.INFO)], on_error=errors.append
    )
    poisoned = DeviceSpec(id="poisoned", kind=DeviceKind.SMOKE)
    alarm = DeviceEvent("poisoned", DeviceKind.SMOKE, "alarm", 1.0, {})
    assert [s.rule for s in engine.evaluate(alarm, poisoned) if s.raised] == ["fire_alarm"]
    assert "ticking" in [s.rule for s in engine.tick(2.0)]
    assert errors == ["exploding"] * 3  # the record, the followed fire_alarm signal, the tick
    assert engine.rule_errors["exploding"] == 3
