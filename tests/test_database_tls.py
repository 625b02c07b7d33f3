"""TLS to PostgreSQL as a managed service does it, on a cluster owned by this module
(TLS on, a throwaway CA, one role that logs in only with a client certificate):
each `sslmode` does what libpq documents, and Confab runs over verify-full."""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from runtime.database_url import parse_postgres_url
from server import create_app
from settings import Settings
from tests.conftest import started
from tests.owned_postgres import OwnedPostgres
from tests.tls_certs import Certificates, make_certificates

CERT_USER = "confab_cert"


class TlsPostgres:
    def __init__(self, cluster: OwnedPostgres, certs: Certificates) -> None:
        self.cluster = cluster
        self.certs = certs

    def url(self, query: str, *, host: str = "127.0.0.1", user: str = "postgres") -> str:
        return f"postgres://{user}@{host}:{self.cluster.port}/postgres?{query}"


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TlsPostgres]:
    cluster = OwnedPostgres()
    try:
        certs = make_certificates(cluster.root / "certs")
        for source, name in ((certs.server_cert, "server.crt"), (certs.server_key, "server.key")):
            target = cluster.data / name
            shutil.copy(source, target)
            target.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(target, "postgres")
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
            conf.write(f"ssl_ca_file = '{certs.ca}'\n")
        (cluster.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all {CERT_USER} 127.0.0.1/32 cert\n"
            f"host all {CERT_USER} 127.0.0.1/32 reject\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        cluster.start()
        yield TlsPostgres(cluster, certs)
    finally:
        cluster.destroy()


async def _session(url: str) -> tuple[str, bool]:
    """Who we are and whether the connection is encrypted, as the server sees it."""
    conn = await asyncpg.connect(**parse_postgres_url(url).connect_kwargs())
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS who, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        assert row is not None
        return str(row["who"]), bool(row["ssl"])
    finally:
        await conn.close()


async def test_disable_and_require(tls_postgres: TlsPostgres) -> None:
    assert await _session(tls_postgres.url("sslmode=disable")) == ("postgres", False)
    assert await _session(tls_postgres.url("sslmode=require")) == ("postgres", True)
    assert await _session(tls_postgres.url("sslmode=prefer")) == ("postgres", True)


async def test_verify_full_checks_the_host_name_and_verify_ca_the_chain(
    tls_postgres: TlsPostgres,
) -> None:
    ca = tls_postgres.certs.ca
    assert await _session(tls_postgres.url(f"sslmode=verify-full&sslrootcert={ca}")) == (
        "postgres",
        True,
    )
    # The certificate names 127.0.0.1 only: verify-full refuses `localhost`...
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await _session(tls_postgres.url(f"sslmode=verify-full&sslrootcert={ca}", host="localhost"))
    # ...which verify-ca, checking only the chain, accepts.
    verified_ca = tls_postgres.url(f"sslmode=verify-ca&sslrootcert={ca}", host="localhost")
    assert await _session(verified_ca) == ("postgres", True)
    # A root that did not sign the server's certificate: refused.
    other = tls_postgres.certs.other_ca
    with pytest.raises(ssl.SSLCertVerificationError):
        await _session(tls_postgres.url(f"sslmode=verify-ca&sslrootcert={other}"))


async def test_a_client_certificate_logs_in(tls_postgres: TlsPostgres) -> None:
    admin = await asyncpg.connect(**parse_postgres_url(tls_postgres.url("")).connect_kwargs())
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {CERT_USER}; CREATE ROLE {CERT_USER} LOGIN")
    finally:
        await admin.close()
    certs = tls_postgres.certs
    with_cert = tls_postgres.url(
        f"sslmode=verify-full&sslrootcert={certs.ca}&sslcert={certs.client_cert}"
        f"&sslkey={certs.client_key}",
        user=CERT_USER,
    )
    assert await _session(with_cert) == (CERT_USER, True)
    without = tls_postgres.url(f"sslmode=verify-full&sslrootcert={certs.ca}", user=CERT_USER)
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await _session(without)


async def test_confab_runs_over_verify_full(tls_postgres: TlsPostgres) -> None:
    url = (
        f"postgres://postgres@127.0.0.1:{tls_postgres.cluster.port}/confab"
        f"?sslmode=verify-full&sslrootcert={tls_postgres.certs.ca}"
    )
    application = create_app(Settings(database_url=url, auto_migrate=True))
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            created = await http.post(
                "/graphql", json={"query": "mutation { createSession { id } }"}
            )
            ready = await http.get("/readyz")
        from tortoise import connections

        rows = await connections.get("default").execute_query_dict(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
    assert "errors" not in created.json(), created.json()
    assert ready.json()["database"] == "ok"
    assert rows == [{"ssl": True}]
