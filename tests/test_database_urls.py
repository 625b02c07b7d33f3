"""DATABASE_URL as operators write it: every libpq/asyncpg option reaches the
connection (or is refused by name at start-up), and the password never reaches a
log line or an error."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from tortoise import connections

from runtime.database import tortoise_config
from runtime.database_url import parse_postgres_url, redacted, ssl_context
from server import create_app
from settings import Settings, SettingsError
from tests.conftest import PG_ADMIN_URL, started
from tests.live import run_cli
from tests.processes import ServerProcess, free_port
from tests.tls_certs import Certificates, make_certificates

pytestmark = pytest.mark.processes


SECRET = "s3cret-Pa55"
BASE = f"postgresql://confab:{SECRET}@db.example:6543/confab"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def credentials(query: str, **settings: Any) -> dict[str, Any]:
    url = f"{BASE}?{query}" if query else BASE
    config = tortoise_config(Settings(database_url=url, **settings))
    connection: dict[str, Any] = config["connections"]["default"]
    assert connection["engine"] == "tortoise.backends.asyncpg"
    result: dict[str, Any] = connection["credentials"]
    return result


def test_the_address_and_the_defaults() -> None:
    got = credentials("", db_pool_max=9, db_timeout=4.0, db_command_timeout=8.0)
    assert {k: got[k] for k in ("host", "port", "user", "password", "database")} == {
        "host": "db.example",
        "port": 6543,
        "user": "confab",
        "password": SECRET,
        "database": "confab",
    }
    assert (got["minsize"], got["maxsize"]) == (1, 9)
    assert (got["timeout"], got["command_timeout"]) == (4.0, 8.0)
    assert got["server_settings"] == {"application_name": "confab"}
    # Nothing asked for, nothing forced: asyncpg's own defaults (PGSSLMODE, else prefer).
    assert "ssl" not in got
    assert "statement_cache_size" not in got
    assert callable(got["reset"])  # no RESET ALL round trip per query (see _keep_session)


def test_every_option_reaches_the_connection() -> None:
    options = quote("-c statement_timeout=5000 --lock_timeout=2s", safe="")
    got = credentials(
        "statement_cache_size=50&max_cached_statement_lifetime=60"
        "&max_cacheable_statement_size=2048&connect_timeout=7&command_timeout=9.5"
        f"&application_name=api-eu&options={options}&search_path=tenant,public"
        "&min_size=2&max_size=7&max_queries=1000&max_inactive_connection_lifetime=30"
        "&target_session_attrs=read-write&passfile=/etc/confab/pgpass&sslmode=disable"
    )
    assert got["statement_cache_size"] == 50
    assert got["max_cached_statement_lifetime"] == 60
    assert got["max_cacheable_statement_size"] == 2048
    assert (got["timeout"], got["command_timeout"]) == (7.0, 9.5)
    assert got["server_settings"] == {
        "application_name": "api-eu",
        "statement_timeout": "5000",
        "lock_timeout": "2s",
        "search_path": "tenant,public",
    }
    assert (got["minsize"], got["maxsize"]) == (2, 7)
    assert got["max_queries"] == 1000
    assert got["max_inactive_connection_lifetime"] == 30.0
    assert got["target_session_attrs"] == "read-write"
    assert got["passfile"] == "/etc/confab/pgpass"
    assert got["ssl"] == "disable"


def test_other_spellings() -> None:
    got = credentials("minsize=3&maxsize=4&timeout=2")
    assert (got["minsize"], got["maxsize"], got["timeout"]) == (3, 4, 2.0)
    target = parse_postgres_url(
        "postgres://u:p%40ss@h1,h2:5433/my%20db?host=&user=other&password=given"
    )
    assert target.hosts == ("h1", "h2")
    assert target.port == 5433
    assert (target.user, target.password, target.database) == ("other", "given", "my db")
    unix = parse_postgres_url("postgresql://app@/confab?host=/cloudsql/project:region:db")
    assert unix.hosts == ("/cloudsql/project:region:db",)
    assert unix.connect_kwargs()["host"] == "/cloudsql/project:region:db"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_unverified_modes_are_handed_to_asyncpg(mode: str) -> None:
    """asyncpg implements their fallback (try TLS, then plain) itself."""
    assert credentials(f"sslmode={mode}")["ssl"] == mode


def test_require_encrypts_without_checking_unless_given_a_root(certs: Certificates) -> None:
    context = credentials("sslmode=require")["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    # libpq: require with a root certificate behaves as verify-ca.
    context = credentials(f"sslmode=require&sslrootcert={certs.ca}")["ssl"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)


@pytest.mark.parametrize(("mode", "hostname"), [("verify-ca", False), ("verify-full", True)])
def test_verify_modes_check_the_chain_and_maybe_the_host(
    mode: str, hostname: bool, certs: Certificates
) -> None:
    context = credentials(f"sslmode={mode}&sslrootcert={certs.ca}")["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, hostname)
    roots = [str(ca["subject"]) for ca in context.get_ca_certs()]
    assert roots == ["((('commonName', 'Confab test CA'),),)"]
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_client_certificates_crl_and_protocol_versions(certs: Certificates) -> None:
    context = credentials(
        f"sslmode=verify-full&sslrootcert={certs.ca}&sslcert={certs.client_cert}"
        f"&sslkey={certs.client_key}&sslcrl={certs.ca}"
        "&ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.3"
    )["ssl"]
    assert context.minimum_version == context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN
    with pytest.raises(SettingsError, match="sslcert: cannot use"):
        credentials(
            f"sslmode=require&sslcert={certs.client_cert}&sslkey={certs.server_key}"
        )  # a key that is not the certificate's


def test_asyncpg_style_ssl_option(certs: Certificates) -> None:
    system = credentials("ssl=true")["ssl"]  # asyncpg's ssl=True: the system's trust store
    assert (system.verify_mode, system.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert credentials("ssl=false")["ssl"] == "disable"
    assert credentials("ssl=prefer")["ssl"] == "prefer"
    required = credentials("ssl=require")["ssl"]
    assert isinstance(required, ssl.SSLContext)
    assert credentials("sslmode=verify-full&sslrootcert=system")["ssl"].check_hostname
    assert credentials("sslmode=require&sslnegotiation=direct")["direct_tls"] is True


def test_verify_without_a_root_certificate_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="give sslrootcert=PATH"):
        ssl_context("verify-full", home=tmp_path)
    (tmp_path / ".postgresql").mkdir()
    make_certificates(tmp_path / "c").ca.rename(tmp_path / ".postgresql" / "root.crt")
    assert ssl_context("verify-ca", home=tmp_path).verify_mode == ssl.CERT_REQUIRED


def test_pgbouncer_mode_keeps_no_prepared_statement_and_no_session_reset() -> None:
    from_setting = Settings.from_env({"DATABASE_URL": BASE, "CONFAB_DB_PGBOUNCER": "true"})
    for got in (
        tortoise_config(from_setting)["connections"]["default"]["credentials"],
        credentials("pgbouncer=true"),
    ):
        assert got["statement_cache_size"] == 0
        assert callable(got["reset"])  # instead of RESET ALL / pg_advisory_unlock_all()
    with pytest.raises(SettingsError, match="statement_cache_size must be 0 behind PgBouncer"):
        credentials("pgbouncer=true&statement_cache_size=100")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmod=require", "unknown option(s) sslmod"),
        ("keepalives=1&application_name=x", "unknown option(s) keepalives"),
        ("sslmode=sometimes", "sslmode must be one of disable, allow, prefer"),
        ("ssl=maybe", "ssl must be true, false or an sslmode"),
        ("sslmode=require&ssl=true", "give sslmode or ssl, not both"),
        ("connect_timeout=soon", "connect_timeout must be a positive number"),
        ("command_timeout=0", "command_timeout must be a positive number"),
        ("statement_cache_size=-1", "statement_cache_size must be a whole number >= 0"),
        ("max_size=0", "max_size must be a whole number >= 1"),
        ("min_size=5&max_size=2", "min_size 5 is above max_size 2"),
        ("pgbouncer=perhaps", "pgbouncer must be true or false"),
        ("sslrootcert=/ca.pem", "sslrootcert take effect with sslmode=require"),
        ("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "no such file /nonexistent"),
        ("sslmode=prefer&sslnegotiation=direct", "sslnegotiation=direct needs sslmode=require"),
        ("channel_binding=require", "channel_binding=require cannot be honoured"),
        ("options=statement_timeout%3D5", "options takes -c name=value"),
        ("target_session_attrs=primary-ish", "target_session_attrs must be one of"),
        ("application_name=a&application_name=b", "application_name is given twice"),
    ],
)
def test_a_bad_option_is_a_settings_error_naming_it(query: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DATABASE_URL": f"{BASE}?{query}"})
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_harmless_libpq_options_are_accepted() -> None:
    got = credentials("channel_binding=prefer&gssencmode=disable&sslsni=1&client_encoding=UTF8")
    assert "channel_binding" not in got


def test_redacted_hides_every_password() -> None:
    assert redacted(f"{BASE}?sslmode=require") == (
        "postgresql://confab:***@db.example:6543/confab?sslmode=require"
    )
    hidden = redacted(f"postgres://u:{quote('p@ss:word')}@h/db?password=x&sslpassword=y&a=b")
    assert hidden == "postgres://u:***@h/db?password=***&sslpassword=***&a=b"
    assert redacted("postgres://u:p@w@h,h2:5432/db") == "postgres://u:***@h,h2:5432/db"
    assert redacted("sqlite://confab.sqlite3") == "sqlite://confab.sqlite3"


def test_the_cli_refuses_a_bad_url_in_one_line_without_the_password() -> None:
    result = run_cli({"DATABASE_URL": f"{BASE}?sslmode=require&statement_cache=0"}, "check-config")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: DATABASE_URL: unknown option(s) statement_cache (see docs/deployment.md "
        "for the options Confab understands)"
    )
    assert SECRET not in result.stdout + result.stderr


def test_an_unreachable_database_fails_without_the_password() -> None:
    url = f"postgres://postgres:{SECRET}@127.0.0.1:{free_port()}/confab?connect_timeout=2"
    result = run_cli({"DATABASE_URL": url, "CONFAB_LOG_LEVEL": "debug"}, "migrate")
    assert result.returncode != 0
    assert SECRET not in result.stdout + result.stderr


# -- real connections ---------------------------------------------------------------


async def test_options_are_visible_on_a_real_connection(postgres_url: str) -> None:
    options = quote("-c statement_timeout=4321", safe="")
    url = (
        f"{postgres_url}?sslmode=disable&application_name=confab-url-test&options={options}"
        "&search_path=public,confab_extra&min_size=2&max_size=3&statement_cache_size=0"
    )
    application = create_app(Settings(database_url=url, auto_migrate=True))
    async with started(application):
        client = connections.get("default")
        row = (
            await client.execute_query_dict(
                "SELECT current_setting('application_name') AS app, "
                "current_setting('statement_timeout') AS timeout, "
                "current_setting('search_path') AS path, "
                "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl"
            )
        )[0]
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            pooled = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'confab-url-test' AND datname = $1",
                postgres_url.rsplit("/", 1)[1],
            )
        finally:
            await admin.close()
    assert row == {
        "app": "confab-url-test",
        "timeout": "4321ms",
        "path": "public,confab_extra",
        "ssl": False,
    }
    assert pooled >= 2  # min_size=2: the pool opened two connections


def test_the_password_never_reaches_the_log(postgres_url: str, tmp_path: Path) -> None:
    """Trust auth ignores the password; the server logs its URL, at debug level too."""
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@") + "?sslmode=disable"
    env = {"DATABASE_URL": url, "CONFAB_AUTO_MIGRATE": "true", "CONFAB_LOG_LEVEL": "debug"}
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        server.wait_ready()
        server.graphql("mutation { createSession { id } }")
    finally:
        server.stop()
    log = server.log()
    assert "postgres:***@127.0.0.1" in log
    assert SECRET not in log
