"""What the apps file names that only building the apps can check: custom tools
and simulators that must import, `api_key_env` variables that must be set,
providers that must be known.

`server.py check-config` runs this after the settings' own checks, without
serving; `server.py serve` runs it before it listens. Each problem is one line
naming the file's key and the fix (a `SettingsError`: exit code 2, no traceback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from runtime.agents.tools import load_custom_tool
from runtime.simulation import load_simulator
from runtime.vault.provider_keys import PROVIDERS
from settings import AppConfig, SettingsError


def check_apps(
    apps: Mapping[str, AppConfig],
    source: str = "CONFAB_CONFIG",
    env: Mapping[str, str] | None = None,
) -> None:
    """`source` names the apps file in the messages."""
    env = os.environ if env is None else env
    for name, config in apps.items():
        where = f"{source}: apps.{name}"
        for tool, path in config.custom_tools.items():
            try:
                load_custom_tool(tool, path)
            except ValueError as exc:
                raise SettingsError(f"{where}.tools.custom.{tool}: {exc}") from None
        if config.simulator:
            try:
                load_simulator(name, config.simulator)
            except ValueError as exc:
                raise SettingsError(f"{where}.simulator: {exc}") from None
        if config.model.backend == "openai":
            _check_openai(where, config, env)


def _check_openai(where: str, config: AppConfig, env: Mapping[str, str]) -> None:
    options = config.model.options
    key_env = options.get("api_key_env")
    if key_env and not env.get(str(key_env)):
        raise SettingsError(
            f"{where}.model.api_key_env names {key_env}, which is not set: export "
            f"{key_env}=<the provider's key>, or remove api_key_env if the endpoint needs none"
        )
    provider = str(options.get("provider", "openai")).lower()
    if provider not in PROVIDERS:
        raise SettingsError(
            f"{where}.model.provider: unknown provider {provider[:40]!r} "
            f"(one of {', '.join(PROVIDERS)})"
        )
