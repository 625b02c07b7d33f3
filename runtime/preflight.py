"""Before the server listens: can it use its database? Each way it cannot is one
line that says what to do (`server.py` prints it and exits with code 2), instead
of a traceback from the middle of start-up.

- unreachable (nothing listens, DNS, timeout): is the database running, is
  `DATABASE_URL` right;
- credentials refused: check the user and password;
- the database does not exist (and start-up may not create it): run migrate;
- behind (migrations not applied and `CONFAB_AUTO_MIGRATE=false`): run migrate.
"""

from __future__ import annotations

import logging

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor

from runtime.database import apply_migrations, ping, redacted, tortoise_config
from settings import Settings


class StartupRefused(Exception):
    """The server cannot start; the message says why and what to do."""


async def preflight(settings: Settings) -> None:
    """Migrate now if start-up should (creating a missing PostgreSQL database; under
    the advisory lock), else check the database is reachable and up to date;
    `StartupRefused` with the one line otherwise."""
    where = redacted(settings.database_url)
    if ":memory:" in settings.database_url:
        return  # made afresh by the lifespan
    config = tortoise_config(settings)
    orm_log = logging.getLogger("tortoise")
    level = orm_log.level
    orm_log.setLevel(max(level, logging.WARNING))  # its chatter is not the one line
    try:
        if settings.migrate_on_startup:
            await apply_migrations(settings)
            return
        await Tortoise.init(config=config)
        await ping()
        if not settings.migrate_on_startup:
            pending = await _pending_migrations(config)
            if pending:
                raise StartupRefused(
                    f"the database {where} is behind ({pending} migrations not applied): "
                    "run `python server.py migrate`, or let start-up migrate "
                    "(CONFAB_AUTO_MIGRATE=true)"
                )
    except StartupRefused:
        raise
    except Exception as exc:
        raise StartupRefused(explain(exc, where)) from None
    finally:
        await Tortoise.close_connections()
        orm_log.setLevel(level)


async def _pending_migrations(config: dict[str, object]) -> int:
    apps = config["apps"]
    assert isinstance(apps, dict)
    executor = MigrationExecutor(get_connection("default"), apps)
    return len(await executor.plan(None))


def explain(error: BaseException, where: str) -> str:
    """One line for a database that refused to be used."""
    names = {type(e).__name__ for e in _chain(error)}
    text = " ".join(str(e) for e in _chain(error)).lower()
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"} or (
        "password authentication failed" in text
    ):
        return (
            f"the database {where} refused the credentials: check the user and password "
            "in DATABASE_URL"
        )
    if "InvalidCatalogNameError" in names or ("database" in text and "does not exist" in text):
        return (
            f"the database {where} does not exist: run `python server.py migrate` "
            "(it creates it), or let start-up migrate (CONFAB_AUTO_MIGRATE=true)"
        )
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return (
            f"the database {where} has no Confab tables: run `python server.py migrate`, "
            "or let start-up migrate (CONFAB_AUTO_MIGRATE=true)"
        )
    return (
        f"cannot reach the database {where} ({type(error).__name__}): is it running, "
        "and is DATABASE_URL right?"
    )


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
