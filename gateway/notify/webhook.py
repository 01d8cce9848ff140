"""Webhook delivery: request signing and one HTTP attempt, judged as sent, retry or give up.

Generic JSON channels carry `X-Campus-Timestamp` (Unix seconds) and
`X-Campus-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}." + body, keyed by the secret>`;
a receiver recomputes it and rejects stale timestamps. `X-Campus-Delivery` (the outbox id) lets
it drop a message it already has when a retry follows a lost response.
DingTalk's 加签 mode signs the URL: `timestamp` (ms) and
`sign = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx

from gateway.notify.config import ChannelConfig

SIGNATURE_HEADER = "X-Campus-Signature"
TIMESTAMP_HEADER = "X-Campus-Timestamp"
DELIVERY_HEADER = "X-Campus-Delivery"
_RETRYABLE_4XX = frozenset({408, 425, 429})


def sign_body(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={quote_plus(sign)}"


@dataclass(frozen=True, slots=True)
class Attempt:
    sent: bool
    retry: bool  # False with sent False: the receiver refused it for good
    error: str = ""


async def deliver(
    client: httpx.AsyncClient, channel: ChannelConfig, delivery_id: int, body: bytes, now: float
) -> Attempt:
    """POST `body` to `channel` once."""
    url = channel.url
    headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: str(delivery_id)}
    if channel.secret:
        if channel.format == "json":
            timestamp = int(now)
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign_body(channel.secret, timestamp, body)
        elif channel.format == "dingtalk":
            url = dingtalk_signed_url(url, channel.secret, int(now * 1000))
    try:
        response = await client.post(url, content=body, headers=headers, timeout=channel.timeout_s)
    except httpx.HTTPError as exc:
        return Attempt(False, True, f"{type(exc).__name__}: {exc}"[:300])
    if response.is_success:
        if channel.format == "json":
            return Attempt(True, False)
        return _robot_verdict(response)
    retry = response.status_code >= 500 or response.status_code in _RETRYABLE_4XX
    return Attempt(False, retry, f"HTTP {response.status_code}: {response.text[:200]}")


def _robot_verdict(response: httpx.Response) -> Attempt:
    """DingTalk and WeCom answer 200 with `errcode`; non-zero (rate limit, bad sign) is retried."""
    try:
        errcode = json.loads(response.content).get("errcode", 0)
    except (ValueError, AttributeError):
        return Attempt(False, True, f"robot answered non-JSON: {response.text[:200]}")
    if errcode == 0:
        return Attempt(True, False)
    return Attempt(False, True, f"robot errcode {errcode}: {response.text[:200]}")
