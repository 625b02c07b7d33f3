"""Each app's assistant: its model backend and its tools, built once at start-up;
and the vault its turns take client secrets and provider keys from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.agents.builtin import BuiltinBackend
from runtime.agents.protocol import ModelBackend
from runtime.agents.tools import Tool, load_tools
from settings import AppConfig

if TYPE_CHECKING:
    from runtime.vault import Vault

DEFAULT_PROVIDER = "openai"


@dataclass(frozen=True, slots=True)
class AppAgent:
    config: AppConfig
    backend: ModelBackend
    tools: Mapping[str, Tool]

    @property
    def default_model(self) -> str:
        return self.config.model.models[0]

    @property
    def tool_timeout(self) -> float:
        return float(self.config.model.options.get("tool_timeout", 10))

    @property
    def model_timeout(self) -> float:
        """Seconds a whole model call may take before the turn gives up on it."""
        return float(self.config.model.options.get("turn_timeout", 120))

    @property
    def byok_provider(self) -> str | None:
        """The provider whose client keys this app's turns use (model option
        `provider`), or None: a backend that takes no key, or `provider_keys = false`."""
        if self.config.model.backend != "openai" or not self.config.provider_keys:
            return None
        return str(self.config.model.options.get("provider", DEFAULT_PROVIDER)).lower()


def make_backend(config: AppConfig) -> ModelBackend:
    options = config.model.options
    if config.model.backend == "builtin":
        return BuiltinBackend(chunk_delay=float(options.get("chunk_delay", 0.005)))
    if config.model.backend == "openai":
        from runtime.agents.openai_backend import OpenAIBackend

        return OpenAIBackend(options)
    raise ValueError(f"app {config.name}: unknown model backend {config.model.backend!r}")


class Agents:
    def __init__(self, apps: Mapping[str, AppConfig], vault: Vault | None = None) -> None:
        self.vault = vault
        self._agents = {
            name: AppAgent(
                config, make_backend(config), load_tools(config.tools, config.custom_tools)
            )
            for name, config in apps.items()
        }

    def for_app(self, app: str) -> AppAgent:
        return self._agents[app]

    async def client_key(self, app: str, client_id: str | None) -> str | None:
        """The client's own key for the app's provider, if it saved one and the app
        takes client keys (bring your own key); None: the app's key is used."""
        provider = self._agents[app].byok_provider
        if self.vault is None or provider is None or client_id is None:
            return None
        return await self.vault.provider_keys.active_key(app, client_id, provider)

    async def aclose(self) -> None:
        for agent in self._agents.values():
            await agent.backend.aclose()
