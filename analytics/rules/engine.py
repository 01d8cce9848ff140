"""Dispatches each record to the rules of its device kind, and time to every rule."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceKind, Reading, Record
from analytics.rules.base import Rule

log = logging.getLogger(__name__)
STATUS = "status"  # what a rule names in `listens_to` for status changes


class RuleEngine:
    """Evaluation costs O(rules registered for the record's kind), not O(all rules).

    Signals of a rule that another rule follows (`Rule.followed_rules`) are passed on to the
    follower; what followers return is not passed on again.

    Each rule is isolated: one that raises (on a record, a tick or a followed signal) is logged
    and counted in `rule_errors`, and every other rule still gives its verdict, so one device's
    odd record or one broken rule never costs another alarm.

    Args:
        on_error: called with the rule's name after each failure (the gateway's counters).
    """

    def __init__(self, rules: Iterable[Rule], on_error: Callable[[str], None] | None = None) -> None:
        self.rules = [rule for rule in rules if rule.enabled]
        self.rule_errors: Counter[str] = Counter()
        self._on_error = on_error
        self._by_kind: dict[DeviceKind, list[Rule]] = {kind: [] for kind in DeviceKind}
        self._followers: dict[str, list[Rule]] = {}
        # (kind, metric or event name) -> the rules that listen to it; filled on first sight.
        self._dispatch: dict[tuple[DeviceKind, str], list[Rule]] = {}
        for rule in self.rules:
            for kind in rule.kinds:
                self._by_kind[kind].append(rule)
            for followed in rule.followed_rules():
                self._followers.setdefault(followed, []).append(rule)

    def evaluate(self, record: Record, device: DeviceSpec) -> list[AlertSignal]:
        signals: list[AlertSignal] = []
        key = (record.kind, _topic_of(record))
        rules = self._dispatch.get(key)
        if rules is None:
            rules = self._dispatch[key] = [
                rule for rule in self._by_kind[record.kind] if _listens(rule.listens_to(), key[1])
            ]
        for rule in rules:
            try:
                signals.extend(rule.evaluate(record, device))
            except Exception:
                self._failed(rule, f"{type(record).__name__} of {record.device_id}")
        if signals and self._followers:
            self._follow(signals, device)
        return signals

    def tick(self, now: float) -> list[AlertSignal]:
        signals: list[AlertSignal] = []
        for rule in self.rules:
            try:
                signals.extend(rule.tick(now))
            except Exception:
                self._failed(rule, "tick")
        if signals and self._followers:
            self._follow(signals, None)
        return signals

    def restore(self, open_alerts: Iterable[Alert]) -> None:
        """After a restart: give each rule back its alerts whose condition was still active."""
        by_name = {rule.name: rule for rule in self.rules}
        for alert in open_alerts:
            rule = by_name.get(alert.rule)
            if rule is not None and alert.condition_active:
                rule.restore(alert)

    def state(self) -> dict[str, dict[str, Any]]:
        """Each rule's working state (hold timers, sample windows, correlation windows), by rule."""
        return {
            rule.name: {
                f.name: getattr(rule, f.name) for f in dataclasses.fields(rule) if f.name.startswith("_")
            }
            for rule in self.rules
        }

    def load_state(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        """Give rules back the working state `state()` saved at shutdown; unknown rules are skipped."""
        for rule in self.rules:
            for name, value in saved.get(rule.name, {}).items():
                if any(f.name == name for f in dataclasses.fields(rule)):
                    setattr(rule, name, value)

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def _follow(self, signals: list[AlertSignal], device: DeviceSpec | None) -> None:
        derived: list[AlertSignal] = []
        for signal in signals:
            for follower in self._followers.get(signal.rule, ()):
                try:
                    derived.extend(follower.on_signal(signal, device))
                except Exception:
                    self._failed(follower, f"{signal.rule} signal of {signal.subject}")
        signals.extend(derived)

    def _failed(self, rule: Rule, what: str) -> None:
        self.rule_errors[rule.name] += 1
        count = self.rule_errors[rule.name]
        # A rule broken for every record would log at the message rate: 1st, 10th, 100th, ...
        if count == 10 ** (len(str(count)) - 1):
            log.exception(
                "rule %s failed on %s (failure %d); the other rules went on", rule.name, what, count
            )
        if self._on_error is not None:
            self._on_error(rule.name)


def _topic_of(record: Record) -> str:
    if isinstance(record, Reading):
        return record.metric
    if isinstance(record, DeviceEvent):
        return record.name
    return STATUS


def _listens(names: frozenset[str] | None, topic: str) -> bool:
    return names is None or topic in names
