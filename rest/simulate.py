"""`POST /api/simulate`: transaction simulation, by the app's simulator if it names
one (runtime/simulation.py), else 501: Confab does not simulate transactions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import caller_and_session, header_session, json_body, runtime_of
from runtime.records import JSONObject
from runtime.simulation import SimulationRequest

MAX_TRANSACTIONS = 32
SENDER_MAX = 256


async def simulate(request: Request) -> Response:
    name = header_session(request)
    body = await json_body(request)
    if body is None:
        raise BadRequest(
            'the body must be JSON: {"transactions": [...], "from": "0x...", "chain_id": 1}'
        )
    transactions = _transactions(body.get("transactions"))
    sender = _sender(body.get("from"))
    chain_id = _chain_id(body.get("chain_id"))
    caller, stored = await caller_and_session(request, name.id)
    runtime = runtime_of(request)
    record = runtime.conversations.addressed(caller, stored)
    result = await runtime.simulators.simulate(
        SimulationRequest(
            app=caller.app,
            session_id=name.sent,
            client_id=record.client_id if record is not None else None,
            sender=sender,
            chain_id=chain_id,
            transactions=transactions,
        )
    )
    return JSONResponse({"result": result})


def _transactions(value: Any) -> tuple[JSONObject, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequest("transactions must be a non-empty list of transaction objects")
    if len(value) > MAX_TRANSACTIONS:
        raise BadRequest(f"transactions: at most {MAX_TRANSACTIONS} per request, got {len(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"transactions[{index}] must be a JSON object")
    return tuple(value)


def _sender(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > SENDER_MAX:
        raise BadRequest(f"from must be an address (a string of 1 to {SENDER_MAX} characters)")
    return value.strip()


def _chain_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("chain_id must be a positive whole number")
    return value


routes = [Route("/simulate", simulate, methods=["POST"])]
