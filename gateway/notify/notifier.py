"""The notifier: alert changes -> escalation policy -> outbox -> webhooks, with retries.

Subscribe `on_alert` to the alert service and run `run()` as a task on the gateway's loop. A
message is in the outbox before `on_alert` returns; the sender delivers due messages, backs
off exponentially on failure (`retry_base_s` doubling up to `retry_max_s`), gives up after
`max_attempts` or a refusal, and resumes whatever is pending after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import tzinfo
from typing import Any

import httpx

from analytics.alerts import Alert
from analytics.incidents import Incident
from analytics.tickets.model import Ticket
from api.evidence_links import EvidenceLinks
from gateway.notify.config import NotifyConfig
from gateway.notify.formats import render, render_hazard
from gateway.notify.outbox import Outbox, OutboxEntry
from gateway.notify.policy import Dispatch, EscalationPolicy
from gateway.notify.webhook import deliver
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


class Notifier:
    """Queues and delivers notifications. `on_alert`, `escalate` and `tick` run on the event loop;
    `sent`, `failed_attempts` and `dead` count deliveries for health and metrics."""

    def __init__(
        self,
        config: NotifyConfig,
        outbox: Outbox,
        policy: EscalationPolicy,
        campus: str,
        locate: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        zone: tzinfo | None = None,
        poll_s: float = 1.0,
        links: EvidenceLinks | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.policy = policy
        self.campus = campus
        self._locate = locate
        self._clock = clock
        self._zone = zone
        self._poll_s = poll_s
        self._links = links
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.failed_attempts = 0
        self.dead = 0

    @classmethod
    def from_config(
        cls,
        config: NotifyConfig,
        store: SqliteStore,
        campus: str,
        locate: Callable[[str], str],
        incident_of: Callable[[int], Incident | None] | None = None,
        zone: tzinfo | None = None,
        links: EvidenceLinks | None = None,
    ) -> Notifier:
        """The notifier with its outbox in the gateway's store."""
        return cls(
            config,
            Outbox(store),
            EscalationPolicy(config, incident_of),
            campus,
            locate,
            zone=zone,
            links=links,
        )

    def restore(self, open_alerts: Iterable[Alert]) -> None:
        """After a restart: resume escalation of open alerts (pending messages resume by themselves)."""
        self.policy.restore(open_alerts, self._clock())

    def on_alert(self, alert: Alert) -> None:
        """`AlertService` listener: queue what the policy says must be sent now.

        Never raises: a broken outbox must not stop the alert service (logged instead).
        """
        try:
            self._enqueue(self.policy.on_alert(alert, self._clock()))
        except Exception:
            log.exception("could not queue notifications for alert %d (%s)", alert.id, alert.rule)

    def evidence_unavailable(self, alert: Alert) -> None:
        """Tell the channels an alert went to that its video is unavailable after all (the
        alert as given carries the updated evidence entry). Never raises, like `on_alert`."""
        try:
            self._enqueue(self.policy.evidence_unavailable(alert))
        except Exception:
            log.exception("could not queue the video follow-up for alert %d", alert.id)

    def escalate(self, ticket: Ticket, reason: str) -> None:
        """An overdue major hazard to the bureau (the tickets' `Escalator`); durable like alerts."""
        now = self._clock()
        if not self.config.hazard_targets():
            log.warning(
                "ticket %d is an overdue major hazard, but no notify channel takes hazards", ticket.id
            )
            return
        for name in self.config.hazard_targets():
            channel = self.config.channel(name)
            if channel is not None:
                committed = self.outbox.add(
                    name, render_hazard(ticket, reason, channel, self.campus, now, self._zone), now
                )
                self._wake_when(committed)

    def tick(self) -> None:
        """Queue escalations that are due; `run` calls it at least every `poll_s`."""
        self._enqueue(self.policy.due(self._clock()))

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._loop = asyncio.get_running_loop()
        last_prune = 0.0
        async with httpx.AsyncClient() as client:
            while True:
                self._wake.clear()
                try:
                    self.tick()
                    await self.deliver_due(client)
                    now = self._clock()
                    if now - last_prune >= PRUNE_INTERVAL_S:
                        last_prune = now
                        await asyncio.to_thread(self.outbox.prune, now - self.config.keep_sent_days * 86400.0)
                    next_at = await asyncio.to_thread(self.outbox.next_attempt_at)
                except Exception:
                    log.exception("notification delivery failed; retrying")
                    next_at = None
                delay = (
                    self._poll_s if next_at is None else min(self._poll_s, max(0.0, next_at - self._clock()))
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One pass over the due messages, all channels at once; returns how many were sent."""
        entries = await asyncio.to_thread(self.outbox.due, self._clock())
        if not entries:
            return 0
        results = await asyncio.gather(*(self._deliver(client, entry) for entry in entries))
        return sum(results)

    async def _deliver(self, client: httpx.AsyncClient, entry: OutboxEntry) -> bool:
        channel = self.config.channel(entry.channel)
        if channel is None:
            await asyncio.to_thread(self.outbox.mark_failed, entry.id, "channel no longer configured", None)
            self.dead += 1
            return False
        attempt = await deliver(client, channel, entry.id, entry.body, self._clock())
        now = self._clock()
        if attempt.sent:
            await asyncio.to_thread(self.outbox.mark_sent, entry.id, now)
            self.sent += 1
            return True
        self.failed_attempts += 1
        attempts = entry.attempts + 1
        retry_at = None
        if attempt.retry and attempts < self.config.max_attempts:
            retry_at = now + min(self.config.retry_base_s * 2 ** (attempts - 1), self.config.retry_max_s)
        else:
            self.dead += 1
            log.warning("giving up on notification %d to %s: %s", entry.id, entry.channel, attempt.error)
        await asyncio.to_thread(self.outbox.mark_failed, entry.id, attempt.error, retry_at)
        return False

    def _enqueue(self, dispatches: list[Dispatch]) -> None:
        now = self._clock()
        for dispatch in dispatches:
            channel = self.config.channel(dispatch.channel)
            if channel is None:
                continue
            location = self._locate(dispatch.alert.device_id)
            body = render(dispatch, channel, self.campus, location, now, self._zone, self._links)
            self._wake_when(self.outbox.add(channel.name, body, now, dispatch.alert.id))

    def _wake_when(self, committed: Future[Any]) -> None:
        """Deliver as soon as the queued message is committed (not at the next poll)."""
        loop = self._loop
        if loop is None:
            return
        committed.add_done_callback(lambda _: loop.call_soon_threadsafe(self._wake.set))
