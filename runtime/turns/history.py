"""Stored messages turned into the model's conversation (OpenAI message format)."""

from __future__ import annotations

import json
from typing import Any

from runtime.records import MessageRecord, Role


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


def context_for(question: MessageRecord, history: list[MessageRecord]) -> list[MessageRecord]:
    """What the model sees for this turn: earlier history (answers included), then
    the question itself, never the questions queued after it. With queued turns,
    stored order is Q1 Q2 Q3 A1 ...; the second turn must see Q1 A1 Q2. An interrupted
    answer stored after the question is this turn's own attempt that a crash cut
    short (an interrupt by the user clears the queue): it is left out of the retry."""
    earlier = [
        m
        for m in history
        if not (m.seq >= question.seq and (m.role is Role.USER or m.is_interrupted))
    ]
    return [*earlier, question]
