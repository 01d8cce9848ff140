"""Dispatches each record to the rules of its device kind, and time to every rule."""

from __future__ import annotations

from collections.abc import Iterable

from analytics.alerts import AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceKind, Record
from analytics.rules.base import Rule


class RuleEngine:
    """Evaluation costs O(rules registered for the record's kind), not O(all rules)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = [rule for rule in rules if rule.enabled]
        self._by_kind: dict[DeviceKind, list[Rule]] = {kind: [] for kind in DeviceKind}
        for rule in self.rules:
            for kind in rule.kinds:
                self._by_kind[kind].append(rule)

    def evaluate(self, record: Record, device: DeviceSpec) -> list[AlertSignal]:
        signals: list[AlertSignal] = []
        for rule in self._by_kind[record.kind]:
            signals.extend(rule.evaluate(record, device))
        return signals

    def tick(self, now: float) -> list[AlertSignal]:
        signals: list[AlertSignal] = []
        for rule in self.rules:
            signals.extend(rule.tick(now))
        return signals

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
