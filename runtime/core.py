"""The runtime: every long-lived service of one Confab process, wired together.

`server.py` enters it into the application's lifespan after the ORM is up. The
transports reach the services through it and nothing else.
"""

from __future__ import annotations

import logging
from types import TracebackType

from runtime.agents.registry import Agents
from runtime.announcer import Announcer
from runtime.apps import AppRegistry
from runtime.branches import Branches
from runtime.conversations import Conversations
from runtime.export_service import SessionExports
from runtime.feedback import FeedbackService
from runtime.imports import SessionImports
from runtime.janitor import Janitor
from runtime.memory import WalletMemories
from runtime.rate_limits import RateLimiter
from runtime.recovery import Recovery
from runtime.replicas import Heartbeat, Load
from runtime.search import SearchService
from runtime.sessions import SessionHost
from runtime.shared_state import create_shared_state
from runtime.simulation import Simulators
from runtime.snapshots import Snapshots
from runtime.store import SessionStore, create_store
from runtime.telemetry.metrics import Metrics
from runtime.turns import Turns
from runtime.vault import Vault, create_vault
from settings import Settings

logger = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self, settings: Settings, store: SessionStore | None = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        # Served by server.py unless metrics are off; counted here either way.
        self.metrics = metrics or Metrics()
        self.store: SessionStore = store or create_store(settings.store)
        self.apps = AppRegistry(
            settings.apps,
            settings.key_cache_ttl,
            settings.auth_failures_per_minute,
            store=self.store,
        )
        shared = create_shared_state(
            settings.event_bus_url, settings.event_queue_limit, settings.event_replay_limit
        )
        self.sessions = SessionHost(
            self.store, settings.session_cache_size, shared.coherence, settings.message_cache_size
        )
        self.events = shared.events
        self.announcer = Announcer(self.events, self.apps)
        self.limits = RateLimiter(self.apps, shared.counters, self.announcer)
        self.conversations = Conversations(self.sessions, self.store, self.apps, self.announcer)
        # Client secrets and provider keys; None without CONFAB_SECRET_KEY.
        self.vault: Vault | None = create_vault(settings)
        self.agents = Agents(settings.apps, self.vault)
        self.simulators = Simulators(settings.apps, settings.simulator_timeout)
        self.leases = shared.leases
        lease_seconds = settings.recovery_seconds / 3
        self.memories = WalletMemories(self.store)
        self.exports = SessionExports(self.store, self.conversations)
        self.imports = SessionImports(self.store, self.sessions, self.conversations, self.apps)
        self.search = SearchService(self.store, self.conversations, self.apps)
        self.feedback = FeedbackService(
            self.store, self.conversations, self.announcer, self.metrics
        )
        self.branches = Branches(
            self.store,
            self.sessions,
            self.conversations,
            self.announcer,
            settings.branch_max_siblings,
            settings.branch_max_depth,
        )
        self.turns = Turns(
            self.sessions,
            self.store,
            self.apps,
            self.conversations,
            self.announcer,
            self.agents,
            self.leases,
            lease_seconds,
            self.limits,
            self.memories,
            self.branches,
            metrics=self.metrics,
        )
        self.recovery = Recovery(
            self.store,
            self.sessions,
            self.turns,
            self.leases,
            self.announcer,
            settings.recovery_seconds,
        )
        self.janitor = Janitor(
            self.store,
            self.sessions,
            self.events,
            self.leases,
            settings,
            sweeps=[self.vault.secrets.sweep] if self.vault else [],
        )
        self.heartbeat = Heartbeat(self._load, settings.heartbeat_seconds)
        self.snapshots = Snapshots(
            self.sessions, self.store, self.turns.streams, settings.rest_history_limit
        )

    async def __aenter__(self) -> Runtime:
        await self.apps.sync_to_database()
        await self.sessions.start()
        await self.events.start()
        self.janitor.start()
        self.recovery.start()
        self.heartbeat.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.apps.aclose()
        try:
            await self.heartbeat.stop()
        except Exception as exc:  # the database may be gone: the row goes stale instead
            logger.warning("could not remove this replica's heartbeat: %s", type(exc).__name__)
        await self.recovery.stop()
        await self.janitor.stop()
        await self.turns.shutdown()
        await self.memories.settled()
        await self.agents.aclose()
        await self.events.stop()
        await self.leases.aclose()
        await self.limits.aclose()
        await self.sessions.shutdown()

    def _load(self) -> Load:
        return Load(
            subscribers=self.events.subscriber_count(),
            cached_sessions=self.sessions.health()["cached_sessions"],
            running_turns=self.turns.busy_sessions,
        )

    async def ready(self) -> dict[str, str]:
        """What each backing service says; raises nothing, reports failures as text."""
        try:
            await self.store.ping()
        except Exception as exc:
            logger.warning("readiness: database unreachable: %s", exc)
            return {"database": f"unavailable: {type(exc).__name__}"}
        return {"database": "ok"}

    def event_status(self) -> dict[str, object]:
        """The bus's counters; a Redis outage degrades live events but not the API."""
        status: dict[str, object] = {"backend": self.settings.event_bus_url.split(":", 1)[0]}
        status.update(self.events.stats)
        status["subscribers"] = self.events.subscriber_count()
        status["pending_publishes"] = self.events.pending_publishes
        return status
