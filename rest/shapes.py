"""The legacy JSON shapes: messages, system events, user state, snapshots."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from runtime.memo import MESSAGE_MEMO_CAPACITY, Memo, memoizable
from runtime.records import JSONObject, MessageRecord, Role, SessionRecord, SystemEventRecord
from runtime.turns.streams import StreamingMessage

SENDERS = {Role.USER: "user", Role.ASSISTANT: "agent", Role.SYSTEM: "system", Role.TOOL: "agent"}
EVENT_TAGS = {"notice": "SystemNotice", "error": "SystemError", "inline_call": "InlineCall"}


def legacy_time(record_time: datetime) -> str:
    # Formatted by hand: strftime costs a snapshot of 200 messages a tenth of a millisecond.
    return f"{record_time.hour:02d}:{record_time.minute:02d}:{record_time.second:02d} UTC"


# A legacy client polls the same history every second or so: each stored message
# is shaped once.
_shaped: Memo[UUID, dict[str, Any] | None] = Memo(MESSAGE_MEMO_CAPACITY)


def message(record: MessageRecord) -> dict[str, Any] | None:
    """A stored message as legacy clients render it; None for what they never show
    (an assistant turn that only called tools). The dict is shared: do not mutate it."""
    if not memoizable(record):
        return _shape(record)
    return _shaped.get(record.id, lambda: _shape(record))


def _shape(record: MessageRecord) -> dict[str, Any] | None:
    tool_result = None
    content = record.content
    if record.role is Role.TOOL:
        result = (record.tool_results or [{}])[0]
        output = result.get("error") if "error" in result else result.get("result")
        tool_result = [
            result.get("tool_name", ""),
            output if isinstance(output, str) else json.dumps(output),
        ]
        content = ""
    elif record.role is Role.ASSISTANT and record.tool_calls and not content:
        return None
    return {
        "sender": SENDERS[record.role],
        "content": content,
        "tool_result": tool_result,
        "timestamp": legacy_time(record.created_at),
        "is_streaming": False,
        "id": str(record.id),
        "created_at": record.created_at.isoformat(),
    }


def streaming_message(streaming: StreamingMessage) -> dict[str, Any]:
    return {
        "sender": "agent",
        "content": streaming.text,
        "tool_result": None,
        "timestamp": legacy_time(streaming.started_at),
        "is_streaming": True,
        "id": str(streaming.id),
        "created_at": streaming.started_at.isoformat(),
    }


def system_event(record: SystemEventRecord) -> dict[str, Any]:
    tag = EVENT_TAGS.get(record.kind, "SystemNotice")
    if record.kind == "inline_call":
        return {tag: record.payload}
    return {tag: record.payload.get("message", "")}


def snapshot(
    session: SessionRecord | None,
    messages: list[MessageRecord],
    events: list[SystemEventRecord],
    streaming: StreamingMessage | None,
) -> dict[str, Any]:
    if session is None:
        return {
            "messages": [],
            "system_events": [],
            "title": None,
            "is_processing": False,
            "user_state": None,
        }
    rendered = [m for m in (message(r) for r in messages) if m is not None]
    if streaming is not None:
        rendered.append(streaming_message(streaming))
    return {
        "messages": rendered,
        "system_events": [system_event(e) for e in events],
        "title": session.display_title,
        "is_processing": session.is_processing,
        "user_state": session.user_state,
    }


def session_summary(session: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": session.public_id,
        "title": session.display_title,
        "is_archived": session.is_archived,
    }


def normalize_user_state(raw: JSONObject) -> JSONObject:
    """Accept the nested documented shape or the flat one (`address`, `chain_id` or
    `chainId`, `is_connected` or `isConnected`); keep every key the client sent and
    answer with both shapes filled in."""
    connection = _object(raw.get("connection"))
    evm = _object(raw.get("evm"))
    address = raw.get("address", evm.get("address"))
    chain_id = raw.get("chain_id", raw.get("chainId", evm.get("chain_id", evm.get("chainId"))))
    connected = raw.get("is_connected", raw.get("isConnected", connection.get("is_connected")))
    state = dict(raw)
    state["connection"] = {**connection, "is_connected": connected}
    state["evm"] = {**evm, "address": address, "chain_id": chain_id}
    state["address"] = address
    state["chain_id"] = chain_id
    state["is_connected"] = connected
    return state


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
