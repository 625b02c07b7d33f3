"""The vault's parts without a server: ciphertexts bound to their owner, handles
found, filled and redacted."""

from __future__ import annotations

import pytest

from runtime.vault.cipher import Cipher, VaultError
from runtime.vault.handles import Resolved, names_in
from settings import SettingsError
from tests.vault_support import SECRET_KEY

OWNER = ("secret", "vault", "client-1", "api_key")


def test_a_ciphertext_opens_only_for_its_owner_and_key() -> None:
    cipher = Cipher(SECRET_KEY)
    sealed = cipher.seal("the value", OWNER)
    assert b"the value" not in sealed
    assert cipher.open(sealed, OWNER) == "the value"
    assert cipher.seal("the value", OWNER) != sealed  # a fresh nonce each time
    for other in (
        ("secret", "vault", "client-2", "api_key"),
        ("secret", "beta", "client-1", "api_key"),
        ("secret", "vault", "client-1", "other"),
        ("provider_key", "vault", "client-1", "api_key"),
    ):
        with pytest.raises(VaultError):
            cipher.open(sealed, other)
    with pytest.raises(VaultError):
        Cipher(SECRET_KEY + "x").open(sealed, OWNER)
    with pytest.raises(VaultError):
        cipher.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), OWNER)
    assert SECRET_KEY not in repr(cipher)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="at least 32"):
        Cipher("x" * 31)


def test_handles_are_found_filled_and_redacted() -> None:
    arguments = {
        "token": "$SECRET:api_key",
        "header": "Bearer $SECRET:api_key.",
        "list": ["$SECRET:rpc", {"deep": "$SECRET:missing"}],
        "count": 3,
    }
    assert names_in(arguments) == {"api_key", "api_key.", "rpc", "missing"}
    secrets = Resolved({"api_key": "sk-1234", "rpc": "https://node/123"})
    filled = secrets.fill(arguments)
    assert filled == {
        "token": "sk-1234",
        "header": "Bearer sk-1234.",
        "list": ["https://node/123", {"deep": "$SECRET:missing"}],
        "count": 3,
    }
    assert secrets.redact(filled) == arguments | {"header": "Bearer $SECRET:api_key."}
    assert secrets.redact({"sk-1234": 1234, "n": 99}) == {"$SECRET:api_key": 1234, "n": 99}
    assert Resolved({"pin": "1234"}).redact({"n": 123456}) == {"n": "$SECRET:pin56"}
    assert "sk-1234" not in repr(secrets)
    assert Resolved().fill(arguments) is arguments
