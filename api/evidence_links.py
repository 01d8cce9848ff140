"""Links to alarm evidence: the API's paths, and signed links for people outside the school.

An operator opens evidence with their token. The police, school leaders and the bureau get it
from a webhook and hold no token, so their links carry `expires` and `sig`, an HMAC-SHA256 of
the evidence id and expiry keyed by `evidence.link_secret`: a link opens one request's files,
until it expires, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from analytics.evidence import CLIP_FILE, FRAMES, SNAPSHOT_FILE

EVIDENCE_PREFIX = "/api/v1/evidence/"


def evidence_path(evidence_id: str, name: str | None = None) -> str:
    """`/api/v1/evidence/{id}` (its state) or `/api/v1/evidence/{id}/{name}` (a file)."""
    return f"{EVIDENCE_PREFIX}{evidence_id}" + (f"/{name}" if name else "")


def frame_path(evidence_id: str, index: int) -> str:
    """One frame of the clip as a JPEG, for the console's player."""
    return f"{EVIDENCE_PREFIX}{evidence_id}/{FRAMES}/{index}.jpg"


def signature(secret: str, evidence_id: str, expires: int) -> str:
    message = f"{evidence_id}.{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def valid_signature(secret: str, evidence_id: str, expires: int, sig: str, now: float) -> bool:
    # As bytes: compare_digest refuses a str with non-ASCII characters (a 500 for a forged link).
    expected = signature(secret, evidence_id, expires).encode()
    return now <= expires and hmac.compare_digest(expected, sig.encode())


@dataclass(frozen=True, slots=True)
class EvidenceLinks:
    """Absolute links for messages that leave the gateway; signed when a secret is configured."""

    base_url: str  # "https://gateway.school.lan:8443", no trailing slash
    secret: str | None = None
    ttl_s: float = 7 * 86400.0

    def url(self, evidence_id: str, name: str | None, now: float) -> str:
        url = f"{self.base_url}{evidence_path(evidence_id, name)}"
        if self.secret is None:
            return url
        expires = int(now + self.ttl_s)
        return f"{url}?expires={expires}&sig={signature(self.secret, evidence_id, expires)}"

    def snapshot(self, evidence_id: str, now: float) -> str:
        return self.url(evidence_id, SNAPSHOT_FILE, now)

    def clip(self, evidence_id: str, now: float) -> str:
        return self.url(evidence_id, CLIP_FILE, now)
