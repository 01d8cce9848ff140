"""User-facing alert texts in zh-CN (the operators' language) and en; rule titles come from the
rule catalogue."""

from __future__ import annotations

from analytics.alerts import Alert
from analytics.rules.catalogue import RULES

LANGUAGES = ("zh-CN", "en")


def alert_title(alert: Alert, language: str) -> str:
    entry = RULES.get(alert.rule)
    return entry.title(language) if entry is not None else alert.rule


def alert_message(alert: Alert, location: str, language: str) -> str:
    title = alert_title(alert, language)
    return f"{title}：{location}" if language == "zh-CN" else f"{title}: {location}"
