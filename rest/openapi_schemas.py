"""Component schemas of the REST layer's OpenAPI document: the legacy shapes."""

from __future__ import annotations

from typing import Any

NULLABLE_STRING = {"type": ["string", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    "Message": {
        "type": "object",
        "properties": {
            "sender": {"enum": ["user", "agent", "system"]},
            "content": {"type": "string"},
            "tool_result": {
                "oneOf": [
                    {"type": "null"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                ]
            },
            "timestamp": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}:[0-9]{2} UTC$"},
            "is_streaming": {"type": "boolean"},
            "id": {"type": "string"},
            "created_at": {"type": "string"},
        },
        "required": ["sender", "content", "tool_result", "timestamp", "is_streaming"],
    },
    "SystemEvent": {"type": "object", "minProperties": 1, "maxProperties": 1},
    "StateResponse": {
        "type": "object",
        "properties": {
            "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "system_events": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/SystemEvent"},
            },
            "title": NULLABLE_STRING,
            "is_processing": {"type": "boolean"},
            "user_state": {"type": ["object", "null"]},
        },
        "required": ["messages", "system_events", "title", "is_processing", "user_state"],
    },
    "CreatedSession": {
        "type": "object",
        "properties": {"session_id": {"type": "string"}, "title": {"type": "string"}},
        "required": ["session_id", "title"],
    },
    "RenamedSession": {
        "type": "object",
        "properties": {"session_id": {"type": "string"}, "title": {"type": "string"}},
        "required": ["session_id", "title"],
    },
    "SessionSummary": {
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "title": {"type": "string"},
            "is_archived": {"type": "boolean"},
        },
        "required": ["session_id", "title", "is_archived"],
    },
    "ArchiveState": {
        "type": "object",
        "properties": {"session_id": {"type": "string"}, "is_archived": {"type": "boolean"}},
        "required": ["session_id", "is_archived"],
    },
    "ModelSelected": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "rig": {"type": "string"},
            "baml": {"type": "string"},
            "created": {"type": "boolean"},
        },
        "required": ["success", "rig", "baml", "created"],
    },
    "SearchResults": {
        "type": "object",
        "properties": {
            "hits": {"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}},
            "has_more": {"type": "boolean"},
            "next_cursor": NULLABLE_STRING,
        },
        "required": ["hits", "has_more", "next_cursor"],
    },
    "SearchHit": {
        "type": "object",
        "properties": {
            "kind": {"enum": ["message", "session", "thread"]},
            "session_id": {"type": "string"},
            "session_title": {"type": "string"},
            "thread_id": NULLABLE_STRING,
            "message": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "role": {"enum": ["user", "assistant", "system", "tool"]},
                            "content": {"type": "string"},
                            "seq": {"type": "integer"},
                            "created_at": {"type": "string"},
                        },
                        "required": ["id", "role", "content", "seq", "created_at"],
                    },
                ]
            },
            "snippet": {"type": "string"},
            "parts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "highlighted": {"type": "boolean"},
                    },
                    "required": ["text", "highlighted"],
                },
            },
            "rank": {"type": "number"},
            "cursor": {"type": "string"},
        },
        "required": [
            "kind",
            "session_id",
            "session_title",
            "thread_id",
            "message",
            "snippet",
            "parts",
            "rank",
            "cursor",
        ],
    },
}
