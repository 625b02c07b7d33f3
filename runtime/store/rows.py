"""Stored rows into records: one mapping per table, for every way a row is read.

A row is a mapping from column names to values: a dict from hand-written SQL
(runtime/store/postgres_sql.py), or a Tortoise model's attributes (`from_model`).
A record's fields are its table's columns, by the same name unless `columns`
says otherwise; JSON columns may arrive decoded (the ORM) or as text (asyncpg).
So a new column is a field of its record (and an entry here only when its name
or its decoding differs), and each table's column list (`Rows.sql`) follows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from runtime.records import (
    MessageRecord,
    Role,
    SessionRecord,
    SystemEventRecord,
    ThreadRecord,
    TitleSource,
    TurnRecord,
    TurnStatus,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")
Convert = Callable[[Any], Any]


def as_uuid(value: object) -> UUID:
    # asyncpg's UUID class subclasses the standard one (equal, same hash): keep it.
    return value if isinstance(value, UUID) else UUID(str(value))


def as_json_text(value: Any) -> str | None:
    """A value for a JSON column, as hand-written SQL sends it."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _then(first: Convert, second: Convert | None) -> Convert:
    return first if second is None else lambda value: second(first(value))


def _or_empty(value: Any) -> Any:
    return value or {}


class Rows(Generic[R]):
    def __init__(
        self,
        record: type[R],
        *,
        columns: Mapping[str, str] | None = None,
        json_fields: Collection[str] = (),
        convert: Mapping[str, Convert] | None = None,
    ) -> None:
        self._record = record
        renamed = columns or {}
        converters = convert or {}
        self._fields: list[tuple[str, str, Convert | None]] = []
        for field in dataclasses.fields(record):
            given = converters.get(field.name)
            self._fields.append(
                (
                    field.name,
                    renamed.get(field.name, field.name),
                    _then(from_json, given) if field.name in json_fields else given,
                )
            )
        self.columns = tuple(column for _, column, _ in self._fields)
        self.json_columns = frozenset(renamed.get(name, name) for name in json_fields)
        self.sql = ", ".join(self.columns)

    def record(self, row: Mapping[str, Any]) -> R:
        values: dict[str, Any] = {}
        for name, column, convert in self._fields:
            value = row[column]
            values[name] = value if convert is None else convert(value)
        return self._record(**values)

    def from_model(self, model: object) -> R:
        return self.record({column: getattr(model, column) for column in self.columns})


SESSIONS = Rows(
    SessionRecord,
    columns={"app": "app_id"},
    json_fields=("user_state", "state", "metadata"),
    convert={"id": as_uuid, "title_source": TitleSource, "state": _or_empty, "metadata": _or_empty},
)
THREADS = Rows(ThreadRecord, convert={"id": as_uuid, "session_id": as_uuid})
MESSAGES = Rows(
    MessageRecord,
    json_fields=("tool_calls", "tool_results"),
    convert={
        "id": as_uuid,
        "session_id": as_uuid,
        "thread_id": as_uuid,
        "role": Role,
        "parent_id": _optional(as_uuid),
    },
)
TURNS = Rows(
    TurnRecord,
    convert={
        "session_id": as_uuid,
        "thread_id": as_uuid,
        "message_id": as_uuid,
        "status": TurnStatus,
        "reply_id": _optional(as_uuid),
    },
)
SYSTEM_EVENTS = Rows(SystemEventRecord, json_fields=("payload",), convert={"session_id": as_uuid})
