"""Unknown-device alerts stay bounded however many made-up ids arrive."""

from __future__ import annotations

from analytics.quarantine import BEYOND_LIMIT, UnknownDeviceAlerts


def test_ids_beyond_the_limit_are_counted_on_one_alert_and_counting_stops_at_the_cap() -> None:
    alerts = UnknownDeviceAlerts(open_subjects=["old-1", BEYOND_LIMIT], limit=2, tracked=3)
    first = alerts.signal("new-1", "t", 1.0)
    assert first is not None and first.subject == "new-1"  # old-1 restored: one slot left
    beyond = [alerts.signal(f"ghost-{n}", "t", 2.0) for n in range(5)]
    assert [s.subject for s in beyond if s] == [BEYOND_LIMIT] * 4
    assert [s.details["quarantined_ids"] for s in beyond if s] == [1, 2, 3, 3]
    assert [s.details["counting_stopped"] for s in beyond if s] == [False, False, False, True]
    assert alerts.signal("ghost-0", "t", 3.0) is None  # already counted
    again = alerts.signal("old-1", "t", 3.0)
    assert again is not None and again.subject == "old-1"  # its own alert repeats
