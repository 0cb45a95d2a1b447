"""Reversible field encryption (AES-256-GCM) and the token mapping of a token-key rotation.

An encrypted value is the string ``e<version>:`` + unpadded url-safe base64 of
``nonce (12 bytes) | ciphertext | tag (16 bytes)``. The version names the keyring's
``encrypt`` key, so values encrypted before a rotation still decrypt after it.

Choices, so that encryption behaves like the other rules:

- A fresh random 96-bit nonce per value: the same plaintext never gives the same output,
  so ciphertexts cannot be joined or counted (use the token rule for joins). With random
  nonces one key must encrypt fewer than 2**32 values; rotate the encryption key long
  before (``hub keys rotate --kind encrypt``).
- ``aad`` (e.g. ``"population.id_number"``) is bound to each value as associated data:
  a value copied into another column or dataset no longer decrypts. The same ``aad`` must
  be given to decrypt.
- Nulls stay null, and an empty string becomes null: it holds nothing to protect, and its
  ciphertext would be recognisable by length anyway.
- Decryption names the row of a malformed or tampered value, never the value.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import TypeAlias

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from masking.errors import CiphertextError, MaskRuleError, UnknownKeyVersionError
from masking.keys import DataKey, Keyring

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray

NONCE_BYTES = 12
TAG_BYTES = 16
_PREFIX = re.compile(r"e([1-9][0-9]{0,8}):")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def encrypt_array(values: ArrayLike, key: DataKey, *, aad: str | None = None) -> pa.Array:
    """Encrypt a string column with ``key`` (kind ``encrypt``); nulls and ``""`` give null."""
    _require_string(values, "encrypt")
    if key.kind != "encrypt":
        raise MaskRuleError(f"rule 'encrypt' needs an encrypt key, got a {key.kind} key")
    cipher = AESGCM(key.secret.reveal())
    associated = aad.encode("utf-8") if aad is not None else None
    plain = _flat(values).cast(pa.binary()).to_pylist()
    nonces = os.urandom(NONCE_BYTES * len(plain))
    prefix = key.prefix
    out: list[str | None] = []
    append = out.append
    for position, value in enumerate(plain):
        if not value:
            append(None)
            continue
        nonce = nonces[position * NONCE_BYTES : (position + 1) * NONCE_BYTES]
        sealed = nonce + cipher.encrypt(nonce, value, associated)
        append(prefix + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii"))
    return pa.array(out, type=pa.string())


def decrypt_array(values: ArrayLike, keyring: Keyring, *, aad: str | None = None) -> pa.Array:
    """Decrypt values made by :func:`encrypt_array`, each with the key version it names.

    Raises :class:`CiphertextError` naming the first row (0-based) that is malformed, does
    not authenticate (tampered, truncated, other ``aad`` or keyring), or names a key version
    the keyring does not hold.
    """
    _require_string(values, "decrypt")
    associated = aad.encode("utf-8") if aad is not None else None
    ciphers: dict[int, AESGCM] = {}
    out: list[str | None] = []
    for row, value in enumerate(_flat(values).to_pylist()):
        if value is None:
            out.append(None)
            continue
        version, sealed = _split(value, row)
        cipher = ciphers.get(version)
        if cipher is None:
            try:
                key = keyring.key("encrypt", version)
            except UnknownKeyVersionError as exc:
                raise CiphertextError(f"row {row}: {exc}") from None
            cipher = ciphers[version] = AESGCM(key.secret.reveal())
        try:
            plain = cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except InvalidTag:
            raise CiphertextError(
                f"row {row}: value does not authenticate with encrypt key version {version} "
                "(tampered, truncated, or encrypted for another field or keyring)"
            ) from None
        try:
            out.append(plain.decode("utf-8"))
        except UnicodeDecodeError:
            raise CiphertextError(f"row {row}: decrypted bytes are not UTF-8 text") from None
    return pa.array(out, type=pa.string())


def key_versions(values: ArrayLike) -> list[int]:
    """The distinct key versions named by encrypted values (for the decryption record)."""
    found: set[int] = set()
    for row, value in enumerate(_flat(values).to_pylist()):
        if value is not None:
            found.add(_split(value, row)[0])
    return sorted(found)


def _flat(values: ArrayLike) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], type=values.type)
    return values


def _require_string(values: ArrayLike, rule: str) -> None:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        raise MaskRuleError(f"rule {rule!r} needs a string column, got {values.type}")


def _split(value: str, row: int) -> tuple[int, bytes]:
    match = _PREFIX.match(value)
    if match is None:
        raise CiphertextError(f"row {row}: value is not an encrypted value (no 'e<version>:' prefix)")
    body = value[match.end() :]
    if _BASE64URL.fullmatch(body) is None:
        raise CiphertextError(f"row {row}: value is not url-safe base64 after its prefix")
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise CiphertextError(f"row {row}: value is not url-safe base64 after its prefix") from None
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise CiphertextError(f"row {row}: value is malformed or truncated")
    return int(match.group(1)), sealed
