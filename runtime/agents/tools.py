"""Tools the assistant may call: named async functions with a JSON schema for their
arguments, registered per app. A tool's failure is a result, never an exception
that escapes into the turn."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from runtime.agents.protocol import INVALID_ARGUMENTS, ToolSpec
from runtime.records import SessionRecord

logger = logging.getLogger(__name__)


async def _no_state(state: dict[str, Any]) -> None:
    raise ToolError("this tool runs without a session state")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know and do: the session (and its wallet), report progress, and
    read and replace the session's agent state (a JSON object that persists across
    turns and restarts, `Session.state`; saving announces `session_updated`, and one
    over the size limit raises `ToolError`)."""

    session: SessionRecord
    report: Callable[[dict[str, Any]], Awaitable[None]]
    state: dict[str, Any] = field(default_factory=dict)
    save_state: Callable[[dict[str, Any]], Awaitable[None]] = _no_state


ToolFunction = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: ToolFunction
    timeout: float | None = None

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


def tool(
    name: str, description: str, parameters: dict[str, Any], timeout: float | None = None
) -> Callable[[ToolFunction], Tool]:
    """Decorator: `@tool("lookup", "Looks things up", {...schema...})` on an async
    `(arguments, context) -> result` function makes it a `Tool`."""

    def wrap(function: ToolFunction) -> Tool:
        Draft202012Validator.check_schema(parameters)
        return Tool(name, description, parameters, function, timeout)

    return wrap


class ToolError(Exception):
    """Raised by a tool to report a failure in its own words."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    result: Any = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"error": self.error} if self.error is not None else {"result": self.result}


async def run_tool(
    found: Tool | None,
    name: str,
    arguments: dict[str, Any],
    context: ToolContext,
    default_timeout: float,
    redact: Callable[[str], str] | None = None,
) -> ToolOutcome:
    """Validate, run with a timeout, and turn every failure into an outcome.

    `redact`: the call used secrets; a failure is then logged as its redacted
    message alone (a traceback could show a value)."""
    if found is None:
        return ToolOutcome(error=f"unknown tool {name!r}")
    if INVALID_ARGUMENTS in arguments:
        return ToolOutcome(
            error=f"arguments are not a JSON object: {arguments[INVALID_ARGUMENTS]!r:.80}"
        )
    problems = sorted(
        Draft202012Validator(found.parameters).iter_errors(arguments), key=lambda e: e.path
    )
    if problems:
        where = ".".join(str(p) for p in problems[0].absolute_path) or "arguments"
        return ToolOutcome(error=f"invalid arguments: {where}: {problems[0].message}")
    timeout = found.timeout if found.timeout is not None else default_timeout
    try:
        result = await asyncio.wait_for(found.run(arguments, context), timeout)
    except TimeoutError:
        return ToolOutcome(error=f"timed out after {timeout:g}s")
    except ToolError as exc:
        return ToolOutcome(error=str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if redact is None:
            logger.exception("tool %s failed", name)
        else:
            error = redact(error)
            logger.error("tool %s failed (with secrets; no traceback): %s", name, error)
        return ToolOutcome(error=error)
    return ToolOutcome(result=result)


def load_tools(enabled: tuple[str, ...], custom: Mapping[str, str]) -> dict[str, Tool]:
    """An app's tools: the enabled built-ins plus custom ones by `module:attribute`."""
    from runtime.agents.builtin_tools import BUILTIN_TOOLS

    tools: dict[str, Tool] = {}
    for name in enabled:
        if name not in BUILTIN_TOOLS:
            raise ValueError(f"unknown built-in tool {name!r}")
        tools[name] = BUILTIN_TOOLS[name]
    for name, path in custom.items():
        tools[name] = load_custom_tool(name, path)
    return tools


def load_custom_tool(name: str, path: str) -> Tool:
    """The `Tool` at `module:attribute`, under the name the app gives it. Raises
    `ValueError` saying why it cannot be used (not importable, not a Tool)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not 'module:attribute'")
    try:
        found = getattr(importlib.import_module(module_name), attribute, None)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    if not isinstance(found, Tool):
        raise ValueError(f"{path} is not a Tool (make it with the @tool decorator)")
    if found.name == name:
        return found
    return Tool(name, found.description, found.parameters, found.run, found.timeout)
