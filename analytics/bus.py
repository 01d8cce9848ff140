"""The message bus: handlers registered by message type, each isolated from the others.

What happens after a fact is known (an alert changed, a device went offline) is a handler on
the bus, registered once in the gateway's bootstrap, never a call edited into the code that
found the fact. A handler that raises is logged and counted; the others still run.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

M = TypeVar("M")


class MessageBus:
    """Dispatches each published message to the handlers of its type, in registration order."""

    def __init__(self) -> None:
        self._handlers: defaultdict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self.handler_errors: Counter[str] = Counter()

    def subscribe(self, message_type: type[M], handler: Callable[[M], None]) -> None:
        self._handlers[message_type].append(handler)

    def publish(self, message: object) -> None:
        for handler in self._handlers.get(type(message), ()):
            try:
                handler(message)
            except Exception:
                name = getattr(handler, "__qualname__", repr(handler))
                self.handler_errors[name] += 1
                log.exception(
                    "handler %s failed on %s; the other handlers still ran", name, type(message).__name__
                )
