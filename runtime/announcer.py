"""Publishes a session's events once its change is stored (the one place that
knows an event's log lives as long as its session)."""

from __future__ import annotations

from runtime.apps import AppRegistry
from runtime.events import EventBus
from runtime.records import JSONObject, SessionRecord


class Announcer:
    def __init__(self, events: EventBus, apps: AppRegistry) -> None:
        self.events = events
        self._apps = apps

    async def publish(self, record: SessionRecord, event_type: str, data: JSONObject) -> None:
        """Queues the event (the bus keeps publish order) without waiting for it."""
        ttl = self._apps.get(record.app).session_ttl
        await self.events.publish(record.id, record.app, event_type, data, ttl=ttl, wait=False)
