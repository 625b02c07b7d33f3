"""The event bus: envelope, subscriptions, and the memory and Redis backends."""

from __future__ import annotations

from runtime.events.bus import EventBus
from runtime.events.envelope import EVENT_TYPES, RESYNC_REQUIRED, Event
from runtime.events.subscription import SubscriberOverflow, Subscription

__all__ = [
    "EVENT_TYPES",
    "RESYNC_REQUIRED",
    "Event",
    "EventBus",
    "SubscriberOverflow",
    "Subscription",
]
