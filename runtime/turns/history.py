"""Stored messages turned into the model's conversation (OpenAI message format)."""

from __future__ import annotations

import json
from typing import Any

from runtime.records import MessageRecord, Role

HISTORY_WINDOW = 50


def to_model_messages(system_prompt: str, history: list[MessageRecord]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
    for record in _drop_orphan_tool_results(history):
        messages += model_messages(record)
    return messages


def model_messages(record: MessageRecord) -> list[dict[str, Any]]:
    """One stored message as the model reads it: the only place that knows the
    shape of a tool call and of its result (a tool message is one per result)."""
    if record.role is Role.TOOL:
        return [
            {
                "role": "tool",
                "tool_call_id": result.get("call_id", ""),
                "name": result.get("tool_name", ""),
                "content": record.content,
            }
            for result in record.tool_results or []
        ]
    if record.role is Role.ASSISTANT and record.tool_calls:
        return [
            {
                "role": "assistant",
                "content": record.content or None,
                "tool_calls": [
                    {
                        "id": call["call_id"],
                        "type": "function",
                        "function": {
                            "name": call["tool_name"],
                            "arguments": json.dumps(call.get("arguments", {})),
                        },
                    }
                    for call in record.tool_calls
                ],
            }
        ]
    return [{"role": record.role.value, "content": record.content}]


def _drop_orphan_tool_results(history: list[MessageRecord]) -> list[MessageRecord]:
    """A history window may start inside a tool exchange; models reject tool results
    whose call is not in view, so leading tool messages are dropped."""
    start = 0
    while start < len(history) and history[start].role is Role.TOOL:
        start += 1
    return history[start:]
