"""The listening socket, bound before anything else starts.

Binding first means a port that is taken is found before migrations run or the
runtime starts: one line saying so and exit code 2, instead of uvicorn's start-up
followed by its bind error. Uvicorn is then given the bound socket, and Confab's
"listening" line is logged once the server accepts on it (server.py).
"""

from __future__ import annotations

import errno
import socket


class ListenError(Exception):
    """The address cannot be listened on; the message says why, in one line."""


def bind_listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port in TIME_WAIT from a previous run may be reused,
        # one another process listens on may not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"cannot listen on {shown}:{port}: the port is already in use "
                "(another server runs there; choose another with --port or CONFAB_PORT)"
            ) from None
        raise ListenError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
