"""The built-in tools: current_time, calculator, wallet_address."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.agents.tools import Tool, ToolContext, ToolError, tool
from runtime.events.envelope import utc_now


@tool(
    "current_time",
    "The current date and time, in UTC or an IANA time zone.",
    {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
        "additionalProperties": False,
    },
)
async def current_time(arguments: dict[str, Any], context: ToolContext) -> dict[str, str]:
    name = arguments.get("timezone", "UTC")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {name!r}") from None
    return {"timezone": name, "iso": utc_now().astimezone(zone).isoformat()}


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
MAX_EXPONENT = 1000
MAX_EXPRESSION = 500


def calculate(expression: str) -> float | int:
    """Arithmetic by parsing the expression and walking its tree: numbers and
    + - * / // % ** and parentheses only; nothing is ever evaluated as code."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from None
    return _value(tree.body)


def _value(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent larger than {MAX_EXPONENT}")
        try:
            return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))  # type: ignore[no-any-return]
    raise ToolError(f"unsupported element in expression: {ast.dump(node)[:40]}")


@tool(
    "calculator",
    "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
async def calculator(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    return {"expression": arguments["expression"], "value": calculate(arguments["expression"])}


@tool(
    "wallet_address",
    "The EVM wallet address bound to this session.",
    {"type": "object", "properties": {}, "additionalProperties": False},
)
async def wallet_address(arguments: dict[str, Any], context: ToolContext) -> dict[str, str]:
    if context.session.public_key is None:
        raise ToolError("no wallet is bound to this session")
    return {"address": context.session.public_key}


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (current_time, calculator, wallet_address)}
