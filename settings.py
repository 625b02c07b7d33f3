"""Confab's settings: environment variables, plus an optional TOML file for apps
(read by apps_config.py).

Every field has an env var and a default; the README lists them all. The TOML
file (``CONFAB_CONFIG``) describes the apps (tenants) beyond ``default``:

    [apps.mycoindex]
    display_name = "My Coin Index"
    session_ttl = 86400          # seconds; 0 keeps sessions forever
    queue_limit = 16             # queued turns per session

    [apps.mycoindex.model]
    backend = "builtin"          # or "openai"
    models = ["builtin"]         # what a session may select; the first is the default
    system_prompt = "You are helpful."

    # Legacy clients (the REST layer; see docs/rest.md):
    origins = ["https://mycoindex.example"]  # keyless requests from these act here
    keyless_wallet_listing = false   # true: a wallet's session list is not secret
    provider_keys = true             # clients may bring their own model provider key
    simulator = "mypackage.sim:simulate"  # serves POST /api/simulate (default: 501)

    [apps.mycoindex.tools]
    enabled = ["current_time", "calculator"]   # built-ins (default: all of them)
    custom = {lookup = "mypackage.tools:lookup"}  # a Tool made with @tool
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from apps_config import (
    BUILTIN_TOOL_NAMES,
    DEFAULT_APP,
    AppConfig,
    ModelConfig,
    RateLimits,
    SettingsError,
    default_app,
    load_apps,
)
from runtime.database_url import is_postgres_url, postgres_target
from runtime.environment import RecordedEnvironment
from runtime.redis_clients import redis_kind

DEFAULT_DATABASE_URL = "sqlite://confab.sqlite3"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")
# The smallest value each numeric setting takes (its env var is CONFAB_<NAME>).
_MINIMUMS: dict[str, float] = {
    "db_pool_max": 1,
    "db_timeout": 0.1,
    "db_command_timeout": 0.1,
    "session_cache_size": 1,
    "message_cache_size": 0,
    "branch_max_siblings": 2,
    "branch_max_depth": 1,
    "graphql_max_depth": 1,
    "graphql_max_tokens": 1,
    "graphql_max_aliases": 0,
    "graphql_cache_size": 1,
    "graphql_max_cost": 1,
    "graphql_max_response_bytes": 1,
    "graphql_max_body_bytes": 1,
    "graphql_batch_limit": 0,
    "rest_max_body_bytes": 1,
    "ws_max_message_bytes": 1,
    "json_max_depth": 1,
    "header_timeout": 0.1,
    "body_timeout": 0.1,
    "max_connections": 1,
    "auth_failures_per_minute": 0,
    "event_queue_limit": 1,
    "event_replay_limit": 0,
    "ws_max_subscriptions": 1,
    "ws_init_timeout": 0.1,
    "key_cache_ttl": 0,
    "rest_history_limit": 1,
    "sse_keepalive": 0.1,
    "janitor_interval": 0.1,
    "janitor_batch": 1,
    "cache_idle_seconds": 0.1,
    "recovery_seconds": 0.3,
    "heartbeat_seconds": 0.05,
    "secret_idle_seconds": 1,
    "secrets_per_client": 1,
    "secret_max_bytes": 1,
    "simulator_timeout": 0.1,
}


def _env_name(field_name: str) -> str:
    return f"CONFAB_{field_name.upper()}"


__all__ = [
    "BUILTIN_TOOL_NAMES",
    "DEFAULT_APP",
    "AppConfig",
    "ModelConfig",
    "RateLimits",
    "Settings",
    "SettingsError",
    "default_app",
    "load_apps",
]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_max: int = 20
    db_timeout: float = 3.0
    db_command_timeout: float = 15.0
    # Behind PgBouncer in transaction mode: no prepared statements kept, no session
    # state relied on (or `pgbouncer=true` in DATABASE_URL; docs/deployment.md).
    db_pgbouncer: bool = False
    auto_migrate: bool | None = None
    config_file: str | None = None
    store: str | None = None
    log_level: str = "info"
    # Log lines as text (the default) or one JSON object per line (docs/observability.md).
    log_format: str = "text"
    # Prometheus metrics: "on" (/metrics on the main port), "off", or "port:NNNN".
    metrics: str = "on"
    session_cache_size: int = 10_000
    # Recent messages kept beside cached sessions, in all (runtime/sessions.py).
    message_cache_size: int = 50_000
    # Versions of one message (edits, regenerated answers), and how deep in a thread
    # a branch may start (runtime/branches.py).
    branch_max_siblings: int = 32
    branch_max_depth: int = 10_000
    graphql_max_depth: int = 12
    graphql_max_tokens: int = 2_000
    graphql_max_aliases: int = 30
    graphql_cache_size: int = 1_000
    # Estimated work of one operation (see schema/cost.py), checked before it runs.
    graphql_max_cost: int = 20_000
    # Largest encoded GraphQL response; a bigger answer becomes an error.
    graphql_max_response_bytes: int = 8 * 1024 * 1024
    # Request bodies, refused with 413 before they are read whole.
    graphql_max_body_bytes: int = 1024 * 1024
    # Operations one HTTP request may carry as a JSON array; 0 turns batching off.
    graphql_batch_limit: int = 10
    # Only documents loaded ahead of time (`server.py documents load`) may run.
    graphql_trusted_documents: bool = False
    rest_max_body_bytes: int = 256 * 1024
    ws_max_message_bytes: int = 1024 * 1024
    # Deepest nesting of arrays and objects a JSON body or variable may have.
    json_max_depth: int = 64
    # Seconds a client has to send its request headers, and then its body.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Open connections beyond this answer 503 (capped below the file-descriptor limit).
    max_connections: int = 10_000
    # Failed key checks one client address may make per minute before it gets 429.
    auth_failures_per_minute: int = 20
    event_bus_url: str = "memory://"
    event_queue_limit: int = 1_000
    event_replay_limit: int = 1_000
    allowed_origins: tuple[str, ...] = ()
    ws_max_subscriptions: int = 100
    ws_init_timeout: float = 10.0
    key_cache_ttl: float = 2.0
    strict_keys: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    rest_history_limit: int = 200
    sse_keepalive: float = 10.0
    janitor_interval: float = 60.0
    janitor_batch: int = 500
    cache_idle_seconds: float = 900.0
    recovery_seconds: float = 30.0
    # How often a replica records that it is alive and how busy (`server.py stats`).
    heartbeat_seconds: float = 10.0
    bench_baselines: bool = False
    # `CONFAB_*` variables that are set but no setting reads (a typo, most often),
    # each with the closest known name: warned about at start-up and by check-config.
    unknown_variables: tuple[str, ...] = ()
    # Encrypts the secrets and provider keys clients store; without it those
    # endpoints answer 503. Never printed (repr=False).
    secret_key: str | None = field(default=None, repr=False)
    # A client's secret expires after this many seconds without use.
    secret_idle_seconds: int = 86_400
    secrets_per_client: int = 32
    secret_max_bytes: int = 4_096
    # Seconds an app's simulator may take to answer POST /api/simulate (then 504).
    simulator_timeout: float = 10.0
    apps: Mapping[str, AppConfig] = field(default_factory=lambda: {DEFAULT_APP: default_app()})

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def metrics_port(self) -> int | None:
        """The port of its own that `CONFAB_METRICS=port:NNNN` serves metrics on."""
        kind, _, number = self.metrics.partition(":")
        if kind != "port" or not number.isdigit() or not 1 <= int(number) <= 65535:
            return None
        return int(number)

    @property
    def migrate_on_startup(self) -> bool:
        """Migrations run at start-up unless `CONFAB_AUTO_MIGRATE=false` (for those who
        migrate as a separate job); on PostgreSQL under an advisory lock, so replicas
        starting together migrate once (runtime/migration_lock.py)."""
        return True if self.auto_migrate is None else self.auto_migrate

    def check(self) -> None:
        """Ranges and allowed values (types were checked when the env was read);
        `SettingsError` names the variable and what it takes."""
        for name, low in _MINIMUMS.items():
            value = getattr(self, name)
            if value < low:
                raise SettingsError(f"{_env_name(name)} must be at least {low}, got {value}")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"CONFAB_PORT must be a port number (1-65535), got {self.port}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(
                f"CONFAB_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"CONFAB_LOG_FORMAT must be text or json, got {self.log_format!r}")
        if self.metrics not in ("on", "off") and self.metrics_port is None:
            raise SettingsError(
                f"CONFAB_METRICS must be on, off or port:NNNN (1-65535), got {self.metrics!r}"
            )
        if is_postgres_url(self.database_url):
            postgres_target(self)  # every DATABASE_URL option is honoured or refused by name
        try:
            redis_kind(self.event_bus_url)  # the one rule for what the URL names
        except ValueError:
            raise SettingsError(
                "CONFAB_EVENT_BUS must be memory:// or a redis:// URL (or rediss://, unix://, "
                "redis+cluster://host:port,..., rediss+cluster://), got "
                f"{self.event_bus_url.split('://', 1)[0]!r}://..."
            ) from None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = RecordedEnvironment(os.environ if env is None else env)
        config_file = env.get("CONFAB_CONFIG") or None
        settings = cls(
            host=env.get("CONFAB_HOST", cls.host),
            port=_int(env, "CONFAB_PORT", cls.port),
            database_url=normalize_database_url(
                env.get("DATABASE_URL") or env.get("CONFAB_DATABASE_URL") or DEFAULT_DATABASE_URL
            ),
            db_pool_max=_int(env, "CONFAB_DB_POOL_MAX", cls.db_pool_max),
            db_timeout=_float(env, "CONFAB_DB_TIMEOUT", cls.db_timeout),
            db_command_timeout=_float(env, "CONFAB_DB_COMMAND_TIMEOUT", cls.db_command_timeout),
            db_pgbouncer=bool(_optional_bool(env, "CONFAB_DB_PGBOUNCER")),
            auto_migrate=_optional_bool(env, "CONFAB_AUTO_MIGRATE"),
            config_file=config_file,
            store=env.get("CONFAB_STORE") or None,
            log_level=env.get("CONFAB_LOG_LEVEL", cls.log_level).lower(),
            log_format=env.get("CONFAB_LOG_FORMAT", cls.log_format).strip().lower(),
            metrics=env.get("CONFAB_METRICS", cls.metrics).strip().lower(),
            session_cache_size=_int(env, "CONFAB_SESSION_CACHE_SIZE", cls.session_cache_size),
            message_cache_size=_int(env, "CONFAB_MESSAGE_CACHE_SIZE", cls.message_cache_size),
            branch_max_siblings=_int(env, "CONFAB_BRANCH_MAX_SIBLINGS", cls.branch_max_siblings),
            branch_max_depth=_int(env, "CONFAB_BRANCH_MAX_DEPTH", cls.branch_max_depth),
            graphql_max_depth=_int(env, "CONFAB_GRAPHQL_MAX_DEPTH", cls.graphql_max_depth),
            graphql_max_tokens=_int(env, "CONFAB_GRAPHQL_MAX_TOKENS", cls.graphql_max_tokens),
            graphql_max_aliases=_int(env, "CONFAB_GRAPHQL_MAX_ALIASES", cls.graphql_max_aliases),
            graphql_cache_size=_int(env, "CONFAB_GRAPHQL_CACHE_SIZE", cls.graphql_cache_size),
            graphql_max_cost=_int(env, "CONFAB_GRAPHQL_MAX_COST", cls.graphql_max_cost),
            graphql_max_response_bytes=_int(
                env, "CONFAB_GRAPHQL_MAX_RESPONSE_BYTES", cls.graphql_max_response_bytes
            ),
            graphql_max_body_bytes=_int(
                env, "CONFAB_GRAPHQL_MAX_BODY_BYTES", cls.graphql_max_body_bytes
            ),
            graphql_batch_limit=_int(env, "CONFAB_GRAPHQL_BATCH_LIMIT", cls.graphql_batch_limit),
            graphql_trusted_documents=bool(_optional_bool(env, "CONFAB_GRAPHQL_TRUSTED_DOCUMENTS")),
            rest_max_body_bytes=_int(env, "CONFAB_REST_MAX_BODY_BYTES", cls.rest_max_body_bytes),
            ws_max_message_bytes=_int(env, "CONFAB_WS_MAX_MESSAGE_BYTES", cls.ws_max_message_bytes),
            json_max_depth=_int(env, "CONFAB_JSON_MAX_DEPTH", cls.json_max_depth),
            header_timeout=_float(env, "CONFAB_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=_float(env, "CONFAB_BODY_TIMEOUT", cls.body_timeout),
            max_connections=_int(env, "CONFAB_MAX_CONNECTIONS", cls.max_connections),
            auth_failures_per_minute=_int(
                env, "CONFAB_AUTH_FAILURES_PER_MINUTE", cls.auth_failures_per_minute
            ),
            event_bus_url=env.get("CONFAB_EVENT_BUS") or env.get("REDIS_URL") or cls.event_bus_url,
            event_queue_limit=_int(env, "CONFAB_EVENT_QUEUE_LIMIT", cls.event_queue_limit),
            event_replay_limit=_int(env, "CONFAB_EVENT_REPLAY_LIMIT", cls.event_replay_limit),
            allowed_origins=tuple(
                origin.strip()
                for origin in env.get("CONFAB_ALLOWED_ORIGINS", "").split(",")
                if origin.strip()
            ),
            ws_max_subscriptions=_int(env, "CONFAB_WS_MAX_SUBSCRIPTIONS", cls.ws_max_subscriptions),
            ws_init_timeout=_float(env, "CONFAB_WS_INIT_TIMEOUT", cls.ws_init_timeout),
            key_cache_ttl=_float(env, "CONFAB_KEY_CACHE_TTL", cls.key_cache_ttl),
            strict_keys=bool(_optional_bool(env, "CONFAB_STRICT_KEYS")),
            cors_origins=tuple(
                origin.strip()
                for origin in env.get("CONFAB_CORS_ORIGINS", "*").split(",")
                if origin.strip()
            ),
            rest_history_limit=_int(env, "CONFAB_REST_HISTORY_LIMIT", cls.rest_history_limit),
            sse_keepalive=_float(env, "CONFAB_SSE_KEEPALIVE", cls.sse_keepalive),
            janitor_interval=_float(env, "CONFAB_JANITOR_INTERVAL", cls.janitor_interval),
            janitor_batch=_int(env, "CONFAB_JANITOR_BATCH", cls.janitor_batch),
            cache_idle_seconds=_float(env, "CONFAB_CACHE_IDLE_SECONDS", cls.cache_idle_seconds),
            recovery_seconds=_float(env, "CONFAB_RECOVERY_SECONDS", cls.recovery_seconds),
            heartbeat_seconds=_float(env, "CONFAB_HEARTBEAT_SECONDS", cls.heartbeat_seconds),
            bench_baselines=bool(_optional_bool(env, "CONFAB_BENCH_BASELINES")),
            secret_key=_secret_key(env),
            secret_idle_seconds=_int(env, "CONFAB_SECRET_IDLE_SECONDS", cls.secret_idle_seconds),
            secrets_per_client=_int(env, "CONFAB_SECRETS_PER_CLIENT", cls.secrets_per_client),
            secret_max_bytes=_int(env, "CONFAB_SECRET_MAX_BYTES", cls.secret_max_bytes),
            simulator_timeout=_float(env, "CONFAB_SIMULATOR_TIMEOUT", cls.simulator_timeout),
            apps=load_apps(Path(config_file)) if config_file else {DEFAULT_APP: default_app()},
        )
        settings.check()
        return replace(settings, unknown_variables=env.unread(CONFAB_PREFIX, NOT_SETTINGS))


CONFAB_PREFIX = "CONFAB_"
# Variables of the test suite and benchmark tools, which share the prefix.
NOT_SETTINGS = ("CONFAB_TEST_", "CONFAB_NODE_CACHE", "CONFAB_BENCH_")


def normalize_database_url(url: str) -> str:
    """Tortoise spells PostgreSQL `postgres://`; accept the other common spellings."""
    for alias in ("postgresql+asyncpg://", "postgresql://"):
        if url.startswith(alias):
            return "postgres://" + url[len(alias) :]
    return url


SECRET_KEY_MIN_CHARS = 32


def _secret_key(env: Mapping[str, str]) -> str | None:
    """CONFAB_SECRET_KEY, long enough to derive an encryption key from (never echoed)."""
    raw = env.get("CONFAB_SECRET_KEY") or None
    if raw is not None and len(raw) < SECRET_KEY_MIN_CHARS:
        raise SettingsError(
            f"CONFAB_SECRET_KEY must be at least {SECRET_KEY_MIN_CHARS} characters "
            f"(got {len(raw)}); generate one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )
    return raw


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _optional_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
