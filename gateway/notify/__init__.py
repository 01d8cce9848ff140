"""Alert notifications (SPEC section 6): webhooks with HMAC signatures, DingTalk / WeCom robots,
escalation by tier, police for panic, no drills outside, and a durable outbox with retries.

- `NotifyConfig`, `ChannelConfig`: the `notify:` section of the gateway config.
- `EscalationPolicy`: pure; alert changes and time -> `Dispatch`es.
- `Outbox`: the SQLite outbox; `Notifier`: the policy, the outbox and the HTTP sender together.
"""

from gateway.notify.config import ChannelConfig, NotifyConfig
from gateway.notify.notifier import Notifier
from gateway.notify.outbox import Outbox, OutboxEntry, OutboxState
from gateway.notify.policy import Dispatch, EscalationPolicy, Reason

__all__ = [
    "ChannelConfig",
    "Dispatch",
    "EscalationPolicy",
    "Notifier",
    "NotifyConfig",
    "Outbox",
    "OutboxEntry",
    "OutboxState",
    "Reason",
]
