"""Message bodies per channel format: our generic JSON, DingTalk and WeCom group robots.

DingTalk: `{"msgtype": "text", "text": {"content": ...}}` or
`{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}`.
WeCom: `{"msgtype": "text", "text": {"content": ...}}` or
`{"msgtype": "markdown", "markdown": {"content": ...}}`.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

from analytics.alerts import Alert, Severity
from analytics.evidence import unavailable_text
from analytics.texts import alert_message, alert_title
from analytics.tickets.model import Ticket
from api.evidence_links import EvidenceLinks
from gateway.notify.config import ChannelConfig
from gateway.notify.policy import POLICE_TIER, Dispatch

_SEVERITY_TEXT = {
    "zh-CN": {
        Severity.INFO: "提示",
        Severity.WARNING: "预警",
        Severity.MAJOR: "重要",
        Severity.CRITICAL: "紧急",
    },
    "en": {
        Severity.INFO: "info",
        Severity.WARNING: "warning",
        Severity.MAJOR: "major",
        Severity.CRITICAL: "critical",
    },
}
_WECOM_COLOUR = {
    Severity.INFO: "comment",
    Severity.WARNING: "warning",
    Severity.MAJOR: "warning",
    Severity.CRITICAL: "warning",
}


def render(
    dispatch: Dispatch,
    channel: ChannelConfig,
    campus: str,
    location: str,
    now: float,
    zone: tzinfo | None = None,
    links: EvidenceLinks | None = None,
) -> bytes:
    """The request body for one dispatch on one channel (UTF-8 JSON); times shown in `zone`.

    With `links`, an alert's video evidence (issue 18) is linked, or said to be unavailable.
    """
    alert, language = dispatch.alert, channel.language
    videos = evidence_items(alert, links, language, now)
    video_lines = [line for item in videos for line in item["text"].split("\n")]
    if channel.format == "json":
        payload: dict[str, Any] = {
            "type": "alert",
            "campus": campus,
            "reason": dispatch.reason.value,
            "tier": dispatch.tier,
            "title": alert_title(alert, language),
            "text": "\n".join([alert_message(alert, location, language), *video_lines]),
            "location": location,
            "drill": bool(alert.details.get("drill")),
            "alert": _alert_json(alert),
        }
        if videos:
            payload["evidence"] = videos
    else:
        title, lines = _summary(dispatch, campus, location, language, now, zone)
        payload = _robot(channel, title, lines + video_lines, _WECOM_COLOUR[alert.severity])
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def render_hazard(
    ticket: Ticket, reason: str, channel: ChannelConfig, campus: str, now: float, zone: tzinfo | None = None
) -> bytes:
    """An overdue major hazard (挂牌督办) for one channel."""
    deadline = (
        ""
        if ticket.deadline_ts is None
        else datetime.fromtimestamp(ticket.deadline_ts, zone).strftime("%Y-%m-%d %H:%M")
    )
    if channel.format == "json":
        payload: dict[str, Any] = {
            "type": "hazard_overdue",
            "campus": campus,
            "text": reason,
            "ticket": {
                "id": ticket.id,
                "title": ticket.title,
                "category": ticket.category.value,
                "level": ticket.level.value,
                "state": ticket.state.value,
                "location": ticket.location,
                "deadline_ts": ticket.deadline_ts,
                "responsible_id": ticket.responsible_id,
            },
            "sent_at": now,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if channel.language == "zh-CN":
        title = f"【挂牌督办】{ticket.title}"
        lines = [
            f"学校：{campus}",
            f"位置：{ticket.location}",
            f"时限：{deadline}",
            f"隐患编号：{ticket.id}",
            reason,
        ]
    else:
        title = f"[Overdue major hazard] {ticket.title}"
        lines = [
            f"School: {campus}",
            f"Location: {ticket.location}",
            f"Deadline: {deadline}",
            f"Ticket: #{ticket.id}",
            reason,
        ]
    return json.dumps(
        _robot(channel, title, lines, "warning"), ensure_ascii=False, separators=(",", ":")
    ).encode()


def _robot(channel: ChannelConfig, title: str, lines: list[str], colour: str) -> dict[str, Any]:
    if channel.message == "text":
        return {"msgtype": "text", "text": {"content": "\n".join([title, *lines])}}
    if channel.format == "dingtalk":
        text = "\n\n".join([f"### {title}", *(f"- {line}" for line in lines)])
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    head = f'### <font color="{colour}">{title}</font>'
    return {
        "msgtype": "markdown",
        "markdown": {"content": "\n".join([head, *(f"> {line}" for line in lines)])},
    }


def _summary(
    dispatch: Dispatch, campus: str, location: str, language: str, now: float, zone: tzinfo | None
) -> tuple[str, list[str]]:
    alert = dispatch.alert
    severity = _SEVERITY_TEXT[language][alert.severity]
    seen = datetime.fromtimestamp(alert.first_seen, zone).strftime("%Y-%m-%d %H:%M:%S")
    waited_s = int(now - alert.first_seen)
    drill = bool(alert.details.get("drill"))
    if language == "zh-CN":
        title = f"【{severity}】{alert_title(alert, language)}"
        if drill:
            title = f"【演练】{title}"
        lines = [f"学校：{campus}", f"位置：{location}", f"时间：{seen}", f"告警编号：{alert.id}"]
        if dispatch.reason.value == "escalated":
            lines.append(f"已 {waited_s} 秒未确认，升级至第 {dispatch.tier + 1} 级")
        elif dispatch.tier == POLICE_TIER:
            lines.append("一键报警，请立即出警")
    else:
        title = f"[{severity}] {alert_title(alert, language)}"
        if drill:
            title = f"[DRILL] {title}"
        lines = [f"School: {campus}", f"Location: {location}", f"Time: {seen}", f"Alert: #{alert.id}"]
        if dispatch.reason.value == "escalated":
            lines.append(f"Unacknowledged for {waited_s} s; escalated to tier {dispatch.tier + 1}")
        elif dispatch.tier == POLICE_TIER:
            lines.append("Panic button: respond at once")
    return title, lines


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "device_id": alert.device_id,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "count": alert.count,
        "details": {key: value for key, value in alert.details.items() if _is_json(value)},
    }


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


_VIDEO_TEXT = {
    "zh-CN": ("现场画面（{camera}）：{snapshot}", "报警前后录像（{camera}，报警后约 10 秒可看）：{clip}"),
    "en": (
        "Snapshot ({camera}): {snapshot}",
        "Video before and after ({camera}, ready about 10 s after): {clip}",
    ),
}


def evidence_items(
    alert: Alert, links: EvidenceLinks | None, language: str, now: float
) -> list[dict[str, Any]]:
    """The alert's video evidence as sent: links per camera, or why there is no video.

    Each item's `text` is the line shown in the message. Links are absolute (and signed when a
    link secret is set), since a police receiver cannot resolve the gateway's own paths.
    """
    entries = alert.details.get("evidence")
    if links is None or not isinstance(entries, list):
        return []
    items = []
    snapshot_text, clip_text = _VIDEO_TEXT.get(language, _VIDEO_TEXT["en"])
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        camera, evidence_id = str(entry.get("camera", "")), str(entry.get("id", ""))
        if entry.get("available"):
            snapshot, clip = links.snapshot(evidence_id, now), links.clip(evidence_id, now)
            text = "\n".join(
                [
                    snapshot_text.format(camera=camera, snapshot=snapshot),
                    clip_text.format(camera=camera, clip=clip),
                ]
            )
            items.append(
                {
                    "camera": camera,
                    "available": True,
                    "snapshot_url": snapshot,
                    "clip_url": clip,
                    "status_url": links.url(evidence_id, None, now),
                    "text": text,
                }
            )
        else:
            reason = str(entry.get("reason", ""))
            text = (
                f"{unavailable_text(reason, language)}（{camera}）"
                if language == "zh-CN"
                else (f"{unavailable_text(reason, language)} ({camera})")
            )
            items.append({"camera": camera, "available": False, "reason": reason, "text": text})
    return items
