"""Shared fixtures: the app on SQLite and PostgreSQL, called as a client would.

PostgreSQL tests use a database of their own (`confab_test_<pid>`), created and
dropped here. Where no server answers they skip with the reason, except under
`CI=true`, where a missing server fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from runtime import keys
from server import create_app
from settings import Settings, load_apps
from tests.processes import ServerProcess, running

PG_ADMIN_URL = os.environ.get("CONFAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ON_CI = os.environ.get("CI", "").lower() == "true"

APPS_TOML = """
[apps.alpha]
display_name = "Alpha"
session_ttl = 3600
[apps.alpha.model]
models = ["builtin", "builtin-large"]

[apps.beta]
display_name = "Beta"
# No stemming (tests/test_search.py): "running" is not "run" here.
search_language = "simple"

[apps.ephemeral]
display_name = "Ephemeral"
session_ttl = 1

[apps.gamma]
display_name = "Gamma"
queue_limit = 2
[apps.gamma.model]
models = ["builtin"]
turn_timeout = 1
chunk_delay = 0.01
[apps.gamma.tools]
enabled = ["calculator", "current_time", "wallet_address"]
[apps.gamma.tools.custom]
progress = "tests.sample_tools:progress"
explode = "tests.sample_tools:explode"
sleepy = "tests.sample_tools:sleepy"
ledger = "tests.sample_tools:ledger"

# A keyed app whose browser widget calls some endpoints without its key.
[apps.widget]
display_name = "Widget"
origins = ["https://widget.example"]
keyless_wallet_listing = true
[apps.widget.tools]
enabled = ["calculator", "current_time"]
[apps.widget.tools.custom]
progress = "tests.sample_tools:progress"

# A short queue and no turn timeout: a turn runs as long as the test wants.
[apps.queued]
display_name = "Queued"
queue_limit = 2

# Listed origins alone, without the keyless wallet listing.
[apps.portal]
display_name = "Portal"
origins = ["https://portal.example"]

# Rate limits (tests/test_rate_limits.py): per client, and for a whole app.
[apps.limited]
display_name = "Limited"
[apps.limited.limits]
requests_per_minute = 8

[apps.thrifty]
display_name = "Thrifty"
[apps.thrifty.limits]
message_bytes_per_minute = 300
concurrent_turns = 1

[apps.crowded]
display_name = "Crowded"
[apps.crowded.limits]
app_requests_per_minute = 5
"""


# Areas to run on their own (`pytest -m redis`, `-m "not slow"`; pyproject.toml
# declares them). A test is in an area by the fixtures it uses; modules that start
# processes themselves say so with `pytestmark`.
_AREA_FIXTURES = {
    "postgres": {"postgres_url"},
    "redis": {"redis_url"},
    "processes": {"live_env", "server", "replicas"},
}
# Parametrized fixtures whose parameter picks a service (`database_url`, `bus`).
_AREA_PARAMS = {"postgres": "postgres", "redis": "redis"}
# Modules that take longer than a few seconds per test (clusters, PgBouncer,
# browsers, crashes, generated requests): `-m "not slow"` leaves them out.
SLOW_MODULES = frozenset(
    {
        "test_redis_cluster",
        "test_pgbouncer",
        "test_concurrent_startup",
        "test_container_files",
        "test_crash_recovery",
        "test_graphql_fuzz",
        "test_rest_openapi",
        "test_postgres_faults",
        "test_bench_smoke",
        "test_backup_restore",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        values = callspec.params.values() if callspec is not None else ()
        params = {value for value in values if isinstance(value, str)}
        for area, names in _AREA_FIXTURES.items():
            if fixtures & names or _AREA_PARAMS.get(area) in params:
                item.add_marker(area)
        module = getattr(item, "module", None)
        if module is not None and module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker("slow")
        if "live_env" in fixtures:  # the servers' PostgreSQL and Redis
            item.add_marker("postgres")
            item.add_marker("redis")


def unavailable(what: str, reason: str) -> None:
    """Skip with the reason, or fail under CI where every service must be there."""
    message = f"{what} is not reachable: {reason}"
    if ON_CI:
        pytest.fail(message + " (CI=true: required services must be running)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def apps_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "apps.toml"
    path.write_text(APPS_TOML)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"confab_test_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", str(exc))
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'confab.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str, apps_file: Path) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=True,
        config_file=str(apps_file),
        apps=load_apps(apps_file),
    )


# Start-up migrates and connects; on a busy machine it has taken more than
# asgi-lifespan's 5 s, and a start-up cut short leaves the ORM's global context set
# for every later test of the worker.
LIFESPAN_TIMEOUT = 60.0


def started(application: Starlette) -> LifespanManager:
    """The app's lifespan, with generous start-up and shut-down waits."""
    return LifespanManager(
        application, startup_timeout=LIFESPAN_TIMEOUT, shutdown_timeout=LIFESPAN_TIMEOUT
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with started(application):
        yield application


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app of its own (started, stopped afterwards) and a client of it, for tests
    that need settings the shared fixtures do not have."""
    application = create_app(settings)
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield application, http


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
        yield http


class GraphQLClient:
    """Posts operations to /graphql the way a frontend does."""

    def __init__(self, http: httpx.AsyncClient, key: str | None = None) -> None:
        self.http = http
        self.key = key

    def with_key(self, key: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, key)

    async def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"AOMI-APP-KEY": self.key} if self.key else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.raw(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        """The single error of a failing operation (message and extensions)."""
        body = await self.raw(query, **variables)
        assert body.get("errors"), f"expected an error, got {body}"
        assert len(body["errors"]) == 1, body["errors"]
        error: dict[str, Any] = body["errors"][0]
        return error


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest.fixture
async def alpha_key(app: Starlette) -> str:
    clear, _ = await keys.create_key(["alpha"], "tests")
    return clear


@pytest.fixture
async def beta_key(app: Starlette) -> str:
    clear, _ = await keys.create_key(["beta"], "tests")
    return clear


def new_id() -> str:
    return str(uuid.uuid4())


def new_wallet() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def _worker_redis(base: str) -> str:
    """The suite's own Redis database (13 by default): it never touches data it did
    not create. Parallel workers (pytest-xdist's gw0, gw1, ...) each take the next
    number up, so one worker's keys never meet another's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    prefix, _, database = base.rpartition("/")
    number = int(database) if database.isdigit() else 0
    return f"{prefix}/{number + int(worker[2:])}"


REDIS_URL = _worker_redis(os.environ.get("CONFAB_TEST_REDIS", "redis://127.0.0.1:6379/13"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis (never restarted by tests: fault tests own their own)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="module")
def live_env(postgres_url: str, redis_url: str, apps_file: Path) -> dict[str, str]:
    """Environment for real server processes: PostgreSQL, Redis, the test apps."""
    from tests.live import cli

    env = {
        "DATABASE_URL": postgres_url,
        "CONFAB_EVENT_BUS": redis_url,
        "CONFAB_CONFIG": str(apps_file),
        "CONFAB_ALLOWED_ORIGINS": "https://app.example",
        "CONFAB_WS_MAX_SUBSCRIPTIONS": "3",
        "CONFAB_WS_INIT_TIMEOUT": "1",
        # The vault on: secrets and provider keys work (tests of its absence set none).
        "CONFAB_SECRET_KEY": "tests-only-secret-key-0123456789abcdef",
    }
    cli(env, "migrate")
    return env


@pytest.fixture(scope="module")
def alpha_cli_key(live_env: dict[str, str]) -> str:
    from tests.live import cli

    return cli(live_env, "keys", "create", "--app", "alpha")


@pytest.fixture(scope="module")
def gamma_cli_key(live_env: dict[str, str]) -> str:
    from tests.live import cli

    return cli(live_env, "keys", "create", "--app", "gamma")


@pytest.fixture(scope="module")
def queued_cli_key(live_env: dict[str, str]) -> str:
    from tests.live import cli

    return cli(live_env, "keys", "create", "--app", "queued")


@pytest.fixture(scope="module")
def server(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One real server process per test module (PostgreSQL, Redis, the test apps)."""
    with running(live_env, tmp_path_factory.mktemp("server") / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def replicas(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes sharing PostgreSQL and Redis."""
    with replica_pair(live_env, tmp_path_factory.mktemp("replicas")) as pair:
        yield pair


@contextmanager
def replica_pair(env: dict[str, str], logs: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes with `env`, ready, stopped afterwards."""
    pair = (ServerProcess(env, logs / "a.log"), ServerProcess(env, logs / "b.log"))
    try:
        for process in pair:
            process.wait_ready()
        yield pair
    finally:
        for process in pair:
            process.stop()


@pytest.fixture(scope="module")
def widget_cli_key(live_env: dict[str, str]) -> str:
    from tests.live import cli

    return cli(live_env, "keys", "create", "--app", "widget")


@pytest.fixture(scope="module")
def beta_cli_key(live_env: dict[str, str]) -> str:
    from tests.live import cli

    return cli(live_env, "keys", "create", "--app", "beta")


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A legacy client's HTTP connection to the module's server process."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client
