"""Custom tools for tests, loaded by import path from the apps config (app `gamma`)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from runtime.agents.tools import ToolContext, tool


@tool(
    "progress",
    "Works in steps, reporting each one.",
    {
        "type": "object",
        "properties": {"steps": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["steps"],
        "additionalProperties": False,
    },
)
async def progress(arguments: dict[str, Any], context: ToolContext) -> dict[str, int]:
    steps = int(arguments["steps"])
    for step in range(1, steps + 1):
        await context.report({"step": step, "of": steps})
        await asyncio.sleep(0.01)
    return {"done": steps}


@tool("explode", "Always fails.", {"type": "object"})
async def explode(arguments: dict[str, Any], context: ToolContext) -> None:
    raise RuntimeError("kaboom")


@tool("sleepy", "Takes longer than its timeout.", {"type": "object"}, timeout=0.3)
async def sleepy(arguments: dict[str, Any], context: ToolContext) -> None:
    await asyncio.sleep(30)


@tool(
    "ledger",
    "Records that it ran (an effect a crash must not repeat), then works a while.",
    {
        "type": "object",
        "properties": {"path": {"type": "string"}, "seconds": {"type": "number"}},
        "required": ["path"],
    },
    timeout=120,
)
async def ledger(arguments: dict[str, Any], context: ToolContext) -> dict[str, bool]:
    await asyncio.to_thread(_append, arguments["path"], f"{context.session.id}\n")
    await asyncio.sleep(float(arguments.get("seconds", 0)))
    return {"written": True}


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as entries:
        entries.write(line)


@tool(
    "use_secret",
    "Uses a token (pass a secret's handle): reports and answers what it received.",
    {
        "type": "object",
        "properties": {"token": {"type": "string"}, "fail": {"type": "boolean"}},
        "required": ["token"],
    },
)
async def use_secret(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    token = str(arguments["token"])
    # Everything below echoes the value: Confab must redact it from all of it.
    await context.report({"received": token})
    if arguments.get("fail"):
        raise RuntimeError(f"the service refused the token {token}")
    return {
        "echo": token,
        "length": len(token),
        "sha256": hashlib.sha256(token.encode()).hexdigest(),
    }


@tool(
    "note",
    "Adds a note to the session's agent state (it persists across turns).",
    {
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 200}},
        "required": ["text"],
    },
)
async def note(arguments: dict[str, Any], context: ToolContext) -> dict[str, int]:
    notes = [*context.state.get("notes", []), arguments["text"]]
    await context.save_state({**context.state, "notes": notes})
    return {"notes": len(notes)}


@tool(
    "hoard",
    "Tries to keep more state than a session may hold.",
    {"type": "object", "properties": {"bytes": {"type": "integer"}}, "required": ["bytes"]},
)
async def hoard(arguments: dict[str, Any], context: ToolContext) -> None:
    await context.save_state({"blob": "x" * int(arguments["bytes"])})
