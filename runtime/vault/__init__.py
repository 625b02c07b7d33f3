"""The vault: what legacy clients entrust to the server, encrypted with
`CONFAB_SECRET_KEY` (secrets their tools use, their own model provider keys).

Without the key there is no vault (`Runtime.vault` is None): the endpoints that
need it answer 503, handles in tool arguments stay unresolved, and turns use the
app's own provider key.
"""

from __future__ import annotations

from runtime.errors import ServiceUnavailable
from runtime.vault.cipher import Cipher
from runtime.vault.handles import Resolved
from runtime.vault.provider_keys import ProviderKeys
from runtime.vault.secrets import ClientSecrets
from settings import Settings

NO_KEY = (
    "secrets and provider keys are turned off on this server: set CONFAB_SECRET_KEY "
    "(at least 32 characters) to store them encrypted"
)


class Vault:
    def __init__(self, secret_key: str, settings: Settings) -> None:
        cipher = Cipher(secret_key)
        self.secrets = ClientSecrets(cipher, settings)
        self.provider_keys = ProviderKeys(cipher)

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"


def create_vault(settings: Settings) -> Vault | None:
    return Vault(settings.secret_key, settings) if settings.secret_key else None


def require(vault: Vault | None) -> Vault:
    if vault is None:
        raise ServiceUnavailable(NO_KEY)
    return vault


__all__ = ["NO_KEY", "Resolved", "Vault", "create_vault", "require"]
