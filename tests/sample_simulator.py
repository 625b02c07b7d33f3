"""A transaction simulator for tests (app `vault` in tests/vault_support.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.simulation import SimulationRejected, SimulationRequest

REJECTED_ADDRESS = "0x000000000000000000000000000000000000dEaD"


async def simulate(request: SimulationRequest) -> dict[str, Any]:
    """Each transaction "costs" 21,000 gas plus 16 per byte of data; a transfer to
    the dead address is refused; data `0xfail` breaks it, `0xslow` hangs it."""
    for transaction in request.transactions:
        data = str(transaction.get("data", ""))
        if data == "0xfail":
            raise RuntimeError("simulator internals: connection to node refused")
        if data == "0xslow":
            await asyncio.sleep(60)
        if str(transaction.get("to", "")).lower() == REJECTED_ADDRESS.lower():
            raise SimulationRejected("transfers to the dead address are not simulated")
    gas = [
        21_000 + 16 * max(0, (len(str(t.get("data", "0x"))) - 2) // 2) for t in request.transactions
    ]
    return {
        "success": True,
        "chain_id": request.chain_id,
        "from": request.sender,
        "gas_used": gas,
        "total_gas": sum(gas),
        "session_id": request.session_id,
        "client_id": request.client_id,
    }
