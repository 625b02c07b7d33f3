"""`CONFAB_EVENT_BUS` picks what replicas share in one place (runtime/shared_state.py),
and the embedded default never imports a Redis client."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from runtime.coherence import LocalCoherence
from runtime.coherence_redis import RedisCoherence
from runtime.counters_redis import RedisCounters
from runtime.events.memory_bus import MemoryEventBus
from runtime.events.redis_bus import RedisEventBus
from runtime.events.redis_cluster_bus import RedisClusterEventBus
from runtime.leases import MemoryLeases
from runtime.leases_redis import RedisLeases
from runtime.rate_limits import MemoryCounters
from runtime.shared_state import create_shared_state, redis_url

ROOT = Path(__file__).resolve().parent.parent


async def test_memory_keeps_everything_in_the_process() -> None:
    shared = create_shared_state("memory://", 10, 10)
    assert isinstance(shared.events, MemoryEventBus)
    assert isinstance(shared.coherence, LocalCoherence)
    assert isinstance(shared.leases, MemoryLeases)
    assert isinstance(shared.counters, MemoryCounters)
    assert redis_url("memory://") is None


async def test_one_redis_url_puts_all_four_in_redis() -> None:
    # Nothing connects until used: the clients are built and closed unused.
    for url, bus in (
        ("redis://127.0.0.1:1/0", RedisEventBus),
        ("redis+cluster://127.0.0.1:1/", RedisClusterEventBus),
    ):
        shared = create_shared_state(url, 10, 10)
        try:
            assert isinstance(shared.events, bus)
            assert isinstance(shared.coherence, RedisCoherence)
            assert isinstance(shared.leases, RedisLeases)
            assert isinstance(shared.counters, RedisCounters)
            assert redis_url(url) == url
        finally:
            await shared.coherence.aclose()
            await shared.leases.aclose()
            await shared.counters.aclose()


def test_the_embedded_default_imports_no_redis_client(tmp_path: Path) -> None:
    """A server on SQLite and memory:// starts, answers GraphQL and REST (a chat
    turn included) and stops, in a fresh interpreter that never imports `redis`."""
    program = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        import httpx
        from asgi_lifespan import LifespanManager
        from asgi import create_app
        from settings import Settings

        async def main():
            settings = Settings(
                database_url="sqlite://{tmp_path / "confab.sqlite3"}", auto_migrate=True
            )
            app = create_app(settings)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    answer = await client.post("/graphql", json={{"query": "{{ models }}"}})
                    assert answer.status_code == 200, answer.text
                    chat = await client.post(
                        "/api/chat",
                        json={{"message": "hello"}},
                        headers={{"X-Session-Id": "00000000-0000-4000-8000-000000000001"}},
                    )
                    assert chat.status_code == 200, chat.text

        asyncio.run(main())
        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "redis")
        print("REDIS:", loaded)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "REDIS: []" in done.stdout, done.stdout
