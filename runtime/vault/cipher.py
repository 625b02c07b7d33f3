"""Encryption of what clients entrust to the server (secrets, provider keys).

AES-256-GCM with a key derived by HKDF-SHA256 from `CONFAB_SECRET_KEY`. Every
ciphertext is bound (as associated data) to what it belongs to, e.g. the app, the
client and the secret's name: a ciphertext copied to another row, client or app
does not decrypt. Layout: a version byte, the 96-bit random nonce, then the
ciphertext with its 128-bit tag.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settings import SECRET_KEY_MIN_CHARS, SettingsError

VERSION = b"\x01"
NONCE_BYTES = 12
_SALT = b"confab-vault"
_INFO = b"confab client credentials v1"


class VaultError(Exception):
    """A ciphertext that does not decrypt with this key and context."""


class Cipher:
    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < SECRET_KEY_MIN_CHARS:
            raise SettingsError(
                f"CONFAB_SECRET_KEY must be at least {SECRET_KEY_MIN_CHARS} characters "
                f"(got {len(secret_key)}); generate one with "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
            )
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return "Cipher(<key hidden>)"

    def seal(self, plaintext: str, context: tuple[str, ...]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _associated(context))
        return VERSION + nonce + sealed

    def open(self, blob: bytes, context: tuple[str, ...]) -> str:
        blob = bytes(blob)
        if blob[:1] != VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise VaultError("not a vault ciphertext")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, _associated(context)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise VaultError("does not decrypt with this key for this owner") from None


def _associated(context: tuple[str, ...]) -> bytes:
    # Length-prefixed parts: no two different contexts encode alike.
    return b"".join(len(part.encode()).to_bytes(4, "big") + part.encode() for part in context)
