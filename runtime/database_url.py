"""A PostgreSQL `DATABASE_URL`, read the way operators write it (libpq and asyncpg
spellings), into the parameters asyncpg and Tortoise take.

Every query option is either honoured or refused by name: a silently dropped
`sslmode=verify-full` would be a downgrade nobody notices. The password never
appears in an error (and `redacted` hides it in logs).

    postgresql://app:secret@db.example:5432/confab?sslmode=verify-full&sslrootcert=/ca.pem
    postgres://app@pgbouncer:6432/confab?pgbouncer=true&application_name=confab-api

Only the standard library is imported here: `Settings.check` validates the URL with it.
"""

from __future__ import annotations

import shlex
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from apps_config import SettingsError

if TYPE_CHECKING:
    from settings import Settings

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg", "asyncpg")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SECRET_OPTIONS = {"password", "sslpassword"}
_TLS_VERSIONS = {"TLSv1": "TLSv1", "TLSv1.1": "TLSv1_1", "TLSv1.2": "TLSv1_2", "TLSv1.3": "TLSv1_3"}
DEFAULT_APPLICATION_NAME = "confab"


async def _keep_session(connection: object) -> None:
    """The pool's reset: none beyond the rollback of an open transaction that
    asyncpg always does.

    asyncpg's default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`) is a second round trip for every query the pool serves. It undoes
    session state, and the pool's connections never take any: no session-level
    advisory lock (the migration lock is transaction-scoped, on a connection of its
    own: runtime/migration_lock.py), no `LISTEN`, no `SET` (startup parameters are
    the connection's own and stay), no cursor outside a transaction. Behind
    PgBouncer it would also run on whichever server connection is lent, undoing
    another client's state.
    """


@dataclass(frozen=True)
class PostgresTarget:
    """Where and how to connect; built by `parse_postgres_url`."""

    hosts: tuple[str, ...]
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    pool_min: int
    pool_max: int
    pgbouncer: bool
    # asyncpg.connect() keywords beyond the address (ssl, timeouts, caches, ...).
    connect: Mapping[str, Any]
    # Startup parameters (application_name, search_path, `options`' -c settings).
    server_settings: Mapping[str, str]
    # asyncpg.create_pool() keywords (max_queries, reset, ...).
    pool: Mapping[str, Any]

    def connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        """For one `asyncpg.connect(**...)` (outside the pool)."""
        return {
            "host": list(self.hosts) if len(self.hosts) > 1 else self.hosts[0],
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": database or self.database,
            "server_settings": dict(self.server_settings),
            **self.connect,
        }

    def tortoise_credentials(self) -> dict[str, Any]:
        """The `credentials` of Tortoise's asyncpg backend: it passes what it does not
        know straight to `asyncpg.create_pool` (tortoise/backends/asyncpg/client.py)."""
        return {
            **self.connect_kwargs(),
            "minsize": self.pool_min,
            "maxsize": self.pool_max,
            **self.pool,
        }


def postgres_target(settings: Settings) -> PostgresTarget:
    """The target of these settings' PostgreSQL `database_url`."""
    return parse_postgres_url(
        settings.database_url,
        pgbouncer=settings.db_pgbouncer,
        pool_max=settings.db_pool_max,
        timeout=settings.db_timeout,
        command_timeout=settings.db_command_timeout,
    )


def is_postgres_url(url: str) -> bool:
    return url.split("://", 1)[0] in POSTGRES_SCHEMES


def parse_postgres_url(
    url: str,
    *,
    pgbouncer: bool = False,
    pool_max: int = 20,
    timeout: float = 3.0,
    command_timeout: float = 15.0,
) -> PostgresTarget:
    """Validate and translate; a bad or unknown option raises `SettingsError`."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise SettingsError(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")
    options = _query(parts.query)
    reader = _Options(options)
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts, port = _hosts(hostinfo, reader.text("host"), reader.text("port"))
    user = reader.text("user") or unquote(user) or "postgres"
    password = reader.text("password") or unquote(password)
    database = reader.text("dbname") or unquote(parts.path.lstrip("/")) or user

    bouncer = pgbouncer or reader.flag("pgbouncer", False)
    connect: dict[str, Any] = {
        "timeout": reader.number("connect_timeout", reader.number("timeout", timeout)),
        "command_timeout": reader.number("command_timeout", command_timeout),
    }
    cache = reader.whole("statement_cache_size", minimum=0)
    if bouncer:
        if cache:
            raise SettingsError(
                "DATABASE_URL: statement_cache_size must be 0 behind PgBouncer (pgbouncer=true "
                "or CONFAB_DB_PGBOUNCER): its transaction mode loses named prepared statements"
            )
        cache = 0
    if cache is not None:
        connect["statement_cache_size"] = cache
    for name in ("max_cached_statement_lifetime", "max_cacheable_statement_size"):
        size = reader.whole(name, minimum=0)
        if size is not None:
            connect[name] = size
    connect.update(_tls(reader))
    attrs = reader.choice("target_session_attrs", TARGET_SESSION_ATTRS)
    if attrs is not None:
        connect["target_session_attrs"] = attrs
    for name in ("passfile", "krbsrvname", "gsslib"):
        value = reader.text(name)
        if value:
            connect[name] = value
    _refuse_unsupported(reader)

    server_settings = _options_setting(reader.text("options"))
    search_path = reader.text("search_path")
    if search_path:
        server_settings["search_path"] = search_path
    server_settings["application_name"] = (
        reader.text("application_name") or server_settings.get("application_name")
    ) or DEFAULT_APPLICATION_NAME

    pool_min = _first(reader.whole("min_size", minimum=0), reader.whole("minsize", minimum=0), 1)
    pool_max = _first(
        reader.whole("max_size", minimum=1), reader.whole("maxsize", minimum=1), pool_max
    )
    if pool_min > pool_max:
        raise SettingsError(f"DATABASE_URL: min_size {pool_min} is above max_size {pool_max}")
    pool: dict[str, Any] = {}
    max_queries = reader.whole("max_queries", minimum=1)
    if max_queries is not None:
        pool["max_queries"] = max_queries
    idle = reader.number("max_inactive_connection_lifetime", None, zero=True)
    if idle is not None:
        pool["max_inactive_connection_lifetime"] = idle
    pool["reset"] = _keep_session
    reader.done()
    return PostgresTarget(
        hosts=hosts,
        port=port,
        user=user,
        password=password,
        database=database,
        pool_min=pool_min,
        pool_max=pool_max,
        pgbouncer=bouncer,
        connect=connect,
        server_settings=server_settings,
        pool=pool,
    )


def redacted(url: str) -> str:
    """The URL with its password (and any `password`/`sslpassword` option) hidden."""
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
        parts = parts._replace(netloc=netloc)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "&".join(
            f"{quote(k)}={'***' if k in _SECRET_OPTIONS else quote(v, safe='/:,')}"
            for k, v in pairs
        )
        parts = parts._replace(query=query)
    return urlunsplit(parts)


# -- pieces ---------------------------------------------------------------------


class _Options:
    """The query options, each taken once; whatever is left over is unknown."""

    def __init__(self, options: dict[str, str]) -> None:
        self._left = dict(options)

    def text(self, name: str) -> str | None:
        return self._left.pop(name, None)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"DATABASE_URL: {name} must be true or false, got {raw!r}")

    def whole(self, name: str, *, minimum: int) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise SettingsError(
                f"DATABASE_URL: {name} must be a whole number >= {minimum}, got {raw!r}"
            )
        return value

    def number(self, name: str, default: float | None, *, zero: bool = False) -> float | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0 or (value == 0 and not zero):
            kind = "a number >= 0" if zero else "a positive number"
            raise SettingsError(f"DATABASE_URL: {name} must be {kind}, got {raw!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        raw = self.text(name)
        if raw is not None and raw not in allowed:
            raise SettingsError(
                f"DATABASE_URL: {name} must be one of {', '.join(allowed)}, got {raw!r}"
            )
        return raw

    def done(self) -> None:
        if self._left:
            unknown = ", ".join(sorted(self._left))
            raise SettingsError(
                f"DATABASE_URL: unknown option(s) {unknown} (see docs/deployment.md for "
                "the options Confab understands)"
            )


def _query(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in options:
            raise SettingsError(f"DATABASE_URL: option {name} is given twice")
        options[name] = value
    return options


def _hosts(hostinfo: str, host: str | None, port: str | None) -> tuple[tuple[str, ...], int]:
    """`h1:5432,h2:5432` (one port for all: asyncpg's pool takes one), or `?host=`
    (a Unix socket directory, as with Cloud SQL)."""
    hosts: list[str] = []
    ports: set[str] = set()
    for item in hostinfo.split(",") if hostinfo else []:
        if item.startswith("["):  # [::1]:5432
            name, _, rest = item[1:].partition("]")
            item_port = rest.lstrip(":")
        else:
            name, _, item_port = item.partition(":")
        hosts.append(unquote(name))
        if item_port:
            ports.add(item_port)
    if host:
        hosts = host.split(",")
    if port:
        ports = {port}
    if len(ports) > 1:
        raise SettingsError("DATABASE_URL: several hosts must share one port")
    raw_port = ports.pop() if ports else "5432"
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise SettingsError(f"DATABASE_URL: the port must be a number, got {raw_port!r}")
    return tuple(hosts) or ("127.0.0.1",), int(raw_port)


def _first(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def _options_setting(raw: str | None) -> dict[str, str]:
    """libpq's `options`: `-c name=value` (or `--name=value`) startup settings."""
    settings: dict[str, str] = {}
    if not raw:
        return settings
    words = iter(shlex.split(raw))
    for word in words:
        if word == "-c":
            word = next(words, "")
        elif word.startswith("-c") or word.startswith("--"):
            word = word[2:]
        else:
            raise SettingsError(f"DATABASE_URL: options takes -c name=value settings, got {word!r}")
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise SettingsError(f"DATABASE_URL: options: {word!r} is not name=value")
        settings[name.replace("-", "_")] = value
    return settings


def _refuse_unsupported(reader: _Options) -> None:
    """libpq options asyncpg has no way to honour: refused when they ask for more
    than it does, accepted when they ask for what it does anyway."""
    accepted: dict[str, tuple[str, ...]] = {
        "channel_binding": ("disable", "prefer"),
        "gssencmode": ("disable", "prefer"),
        "sslsni": ("1",),
        "client_encoding": ("utf8", "UTF8", "utf-8", "UTF-8"),
    }
    why = {
        "channel_binding": "asyncpg does not do SCRAM channel binding (verify-full TLS "
        "guards against the same attack)",
        "gssencmode": "asyncpg does not do GSSAPI encryption",
        "sslsni": "asyncpg always sends SNI",
        "client_encoding": "asyncpg always talks UTF-8",
    }
    for name, allowed in accepted.items():
        value = reader.text(name)
        if value is not None and value not in allowed:
            raise SettingsError(
                f"DATABASE_URL: {name}={value} cannot be honoured: {why[name]}; "
                f"use {' or '.join(allowed)}, or leave it out"
            )


def _tls(reader: _Options) -> dict[str, Any]:
    """`sslmode` (libpq) or `ssl` (asyncpg/SQLAlchemy) and the certificate options."""
    mode = reader.choice("sslmode", SSL_MODES)
    raw_ssl = reader.text("ssl")
    if raw_ssl is not None:
        if mode is not None:
            raise SettingsError("DATABASE_URL: give sslmode or ssl, not both")
        lowered = raw_ssl.lower()
        # asyncpg's ssl=True: the system's trust store, host name checked.
        mode = (
            "verify-full"
            if lowered in _TRUE
            else "disable"
            if lowered in _FALSE
            else lowered
            if lowered in SSL_MODES
            else None
        )
        if mode is None:
            raise SettingsError(
                f"DATABASE_URL: ssl must be true, false or an sslmode, got {raw_ssl!r}"
            )
        system_roots = lowered in _TRUE
    else:
        system_roots = False
    files = {
        name: reader.text(name)
        for name in ("sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword")
    }
    versions = {
        name: reader.choice(name, tuple(_TLS_VERSIONS))
        for name in ("ssl_min_protocol_version", "ssl_max_protocol_version")
    }
    negotiation = reader.choice("sslnegotiation", ("postgres", "direct"))
    verified = mode in ("require", "verify-ca", "verify-full")
    given = [name for name, value in {**files, **versions}.items() if value]
    if given and not verified:
        raise SettingsError(
            f"DATABASE_URL: {', '.join(given)} take effect with sslmode=require, verify-ca "
            f"or verify-full (got sslmode={mode or 'prefer (the default)'})"
        )
    kwargs: dict[str, Any] = {}
    if negotiation == "direct":
        if not verified:
            raise SettingsError(
                "DATABASE_URL: sslnegotiation=direct needs sslmode=require or above"
            )
        kwargs["direct_tls"] = True
    if mode is None:
        return kwargs  # asyncpg's default: PGSSLMODE, else prefer
    if not verified:
        kwargs["ssl"] = mode  # asyncpg handles disable/allow/prefer (with fallback)
        return kwargs
    kwargs["ssl"] = ssl_context(
        mode,
        rootcert=files["sslrootcert"] or ("system" if system_roots else None),
        cert=files["sslcert"],
        key=files["sslkey"],
        crl=files["sslcrl"],
        password=files["sslpassword"],
        min_version=versions["ssl_min_protocol_version"],
        max_version=versions["ssl_max_protocol_version"],
    )
    return kwargs


def ssl_context(
    mode: str,
    *,
    rootcert: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    crl: str | None = None,
    password: str | None = None,
    min_version: str | None = None,
    max_version: str | None = None,
    home: Path | None = None,
) -> ssl.SSLContext:
    """The SSLContext libpq would use for `require`, `verify-ca` or `verify-full`.

    - `require`: encrypted; the certificate is checked only when a root is given
      (libpq then behaves as verify-ca).
    - `verify-ca`: the chain must lead to the root (`sslrootcert`, else
      `~/.postgresql/root.crt`; `sslrootcert=system`: the system's trust store).
    - `verify-full`: also the host name (or IP address) in the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = mode == "verify-full"
    root = rootcert
    if root is None and mode != "require":
        default = (home or Path.home()) / ".postgresql" / "root.crt"
        if not default.exists():
            raise SettingsError(
                f"DATABASE_URL: sslmode={mode} needs a root certificate: give sslrootcert=PATH "
                f"(or sslrootcert=system for the system's trust store), or create {default}"
            )
        root = str(default)
    if root is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_REQUIRED
        _load("sslrootcert", root, _roots(context, root))
    if crl:
        _load("sslcrl", crl, lambda: context.load_verify_locations(cafile=crl))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if key and not cert:
        raise SettingsError("DATABASE_URL: sslkey needs sslcert")
    if cert:
        _load(
            "sslcert",
            cert,
            lambda: context.load_cert_chain(cert, keyfile=key, password=lambda: password or ""),
        )
    context.minimum_version = ssl.TLSVersion[_TLS_VERSIONS[min_version or "TLSv1.2"]]
    if max_version:
        context.maximum_version = ssl.TLSVersion[_TLS_VERSIONS[max_version]]
    if ssl.HAS_ALPN:
        context.set_alpn_protocols(["postgresql"])  # PostgreSQL 17's direct TLS needs it
    return context


def _roots(context: ssl.SSLContext, root: str) -> Callable[[], None]:
    if root == "system":
        return context.load_default_certs
    return lambda: context.load_verify_locations(cafile=root)


def _load(option: str, path: str, load: Callable[[], None]) -> None:
    try:
        load()
    except FileNotFoundError:
        raise SettingsError(f"DATABASE_URL: {option}: no such file {path}") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise SettingsError(f"DATABASE_URL: {option}: cannot use {path}: {reason}") from None
