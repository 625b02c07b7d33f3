"""A PgBouncer owned by one test: Debian's package, its own ini and user list in a
temporary directory, a free loopback port, transaction pooling in front of the
shared PostgreSQL for one database. Stopped by its own pid, never by name."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import unavailable
from tests.processes import free_port

PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def _binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (path for path in PGBOUNCER_PATHS if os.access(path, os.X_OK)), None
    )
    if found is None:
        unavailable("PgBouncer", "pgbouncer is not installed (apt-get install pgbouncer)")
    assert found is not None
    return found


class OwnedPgBouncer:
    def __init__(
        self,
        database: str,
        *,
        server_host: str = "127.0.0.1",
        server_port: int = 5432,
        pool_size: int = 4,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="confab-pgbouncer-"))
        self.port = free_port()
        self.database = database
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{database}"
        self.log_path = self.root / "pgbouncer.log"
        (self.root / "users.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{database} = host={server_host} port={server_port} dbname={database}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'users.txt'}\n"
            "pool_mode = transaction\n"
            # Fewer server connections than Confab's pool: transactions really are
            # spread over shared server connections.
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
            f"logfile = {self.log_path}\n"
            "admin_users = postgres\n"
        )
        self._user: list[str] = []
        if os.geteuid() == 0:  # PgBouncer refuses to run as root; it switches itself
            shutil.chown(self.root, "postgres")
            self._user = ["-u", "postgres"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> None:
        self.process = subprocess.Popen(
            [_binary(), *self._user, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"pgbouncer did not listen on {self.port}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(
                signal.SIGTERM
            )  # immediate shutdown (SIGINT waits for clients)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
