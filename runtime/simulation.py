"""Transaction simulation (`POST /api/simulate`), which Confab delegates.

Confab does not simulate transactions itself. An app may name a simulator in its
config, `simulator = "package.module:function"`: an async function taking a
`SimulationRequest` and returning a JSON object, which the client receives as
`{"result": <object>}`. It raises `SimulationRejected("reason")` to refuse a
request (the client gets 400 with the reason); any other failure is a 502 with a
generic reason (the details are logged here), and taking longer than
`CONFAB_SIMULATOR_TIMEOUT` seconds a 504.

    from runtime.simulation import SimulationRejected, SimulationRequest

    async def simulate(request: SimulationRequest) -> dict[str, object]:
        if request.chain_id != 1:
            raise SimulationRejected("only mainnet is simulated")
        return {"success": True, "gas_used": [21_000 for _ in request.transactions]}
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import ConfabError
from runtime.records import JSONObject
from settings import AppConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimulationRequest:
    app: str
    session_id: str  # as the client sent it
    client_id: str | None  # the session's legacy client, if known
    sender: str | None  # the request's `from`
    chain_id: int | None
    transactions: tuple[JSONObject, ...]


Simulator = Callable[[SimulationRequest], Awaitable[Mapping[str, Any]]]


class SimulationRejected(Exception):
    """Raised by a simulator: the request cannot be simulated, for this reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSimulator(ConfabError):
    code = "NOT_IMPLEMENTED"


class SimulationRefused(ConfabError):
    code = "INVALID_INPUT"


class SimulatorFailed(ConfabError):
    code = "BAD_GATEWAY"


class SimulatorTimedOut(ConfabError):
    code = "GATEWAY_TIMEOUT"


def load_simulator(app: str, path: str) -> Simulator:
    module_name, _, attribute = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"app {app}: simulator {path!r} cannot be imported: {exc}") from exc
    if not inspect.iscoroutinefunction(found):
        raise ValueError(f"app {app}: simulator {path!r} is not an async function")
    simulator: Simulator = found
    return simulator


class Simulators:
    """Each app's simulator, imported once at start-up."""

    def __init__(self, apps: Mapping[str, AppConfig], timeout: float) -> None:
        self.timeout = timeout
        self._simulators = {
            name: load_simulator(name, config.simulator)
            for name, config in apps.items()
            if config.simulator
        }

    async def simulate(self, request: SimulationRequest) -> JSONObject:
        simulator = self._simulators.get(request.app)
        if simulator is None:
            raise NoSimulator(
                "Confab does not simulate transactions itself; this app names no simulator "
                f"(set simulator = 'module:function' in [apps.{request.app}] to serve "
                "POST /api/simulate)"
            )
        try:
            async with asyncio.timeout(self.timeout):
                result = await simulator(request)
        except SimulationRejected as exc:
            raise SimulationRefused(exc.message or "the simulator refused this request") from None
        except TimeoutError:
            logger.warning("simulator of app %s took longer than %gs", request.app, self.timeout)
            raise SimulatorTimedOut(
                f"the simulator did not answer within {self.timeout:g}s"
            ) from None
        except Exception:
            logger.exception("simulator of app %s failed", request.app)
            raise SimulatorFailed("the simulator failed; try again later") from None
        if not isinstance(result, Mapping):
            logger.error(
                "simulator of app %s returned %s, not a JSON object",
                request.app,
                type(result).__name__,
            )
            raise SimulatorFailed("the simulator returned no JSON object")
        try:
            answer: JSONObject = json.loads(json.dumps(dict(result)))
        except (TypeError, ValueError):
            logger.error("simulator of app %s returned an object that is not JSON", request.app)
            raise SimulatorFailed("the simulator returned no JSON object") from None
        return answer
