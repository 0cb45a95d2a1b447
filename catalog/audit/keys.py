"""The access log's keys: HMAC keys for entry MACs and Ed25519 keys for checkpoint signatures,
kept in the keyring beside the data keys and loaded once per process.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog.audit.documents import (
    canonical,
)
from catalog.audit.errors import AuditKeyError
from catalog.settings import current
from masking.keys import MASTER_KEY_ENV, Keyring


class AuditKeys:
    """The audit MAC keys and checkpoint signing keys, every version, unwrapped in memory.

    Never printed: ``repr`` names versions only.
    """

    def __init__(
        self,
        mac_keys: Mapping[int, bytes],
        mac_version: int,
        signing_keys: Mapping[int, bytes],
        signing_version: int,
    ) -> None:
        if mac_version not in mac_keys or signing_version not in signing_keys:
            raise AuditKeyError("the current audit key versions are not among the keys given")
        self._mac = dict(mac_keys)
        self.mac_version = mac_version
        self._signing = {v: Ed25519PrivateKey.from_private_bytes(seed) for v, seed in signing_keys.items()}
        self.signing_version = signing_version

    @classmethod
    def from_keyring(cls, keyring: Any) -> AuditKeys:
        """From a :class:`masking.keys.Keyring` holding the ``audit`` and ``audit-sign`` kinds."""
        mac = {i.version: keyring.key("audit", i.version).secret.reveal() for i in keyring.versions("audit")}
        signing = {
            i.version: keyring.key("audit-sign", i.version).secret.reveal()
            for i in keyring.versions("audit-sign")
        }
        return cls(
            mac,
            keyring.current_key("audit").version,
            signing,
            keyring.current_key("audit-sign").version,
        )

    def mac_key(self, version: int | None = None) -> bytes:
        version = self.mac_version if version is None else version
        try:
            return self._mac[version]
        except KeyError:
            raise AuditKeyError(
                f"the keyring holds no audit MAC key version {version} "
                f"(versions held: {', '.join(map(str, sorted(self._mac)))})"
            ) from None

    def has_mac_version(self, version: int) -> bool:
        return version in self._mac

    def sign(self, document: Mapping[str, Any]) -> str:
        return self._signing[self.signing_version].sign(canonical(document)).hex()

    def public_keys(self) -> dict[int, Ed25519PublicKey]:
        """Every signing key's public half, by version."""
        return {v: k.public_key() for v, k in sorted(self._signing.items())}

    def __repr__(self) -> str:
        return (
            f"AuditKeys(mac versions {sorted(self._mac)} current {self.mac_version}, "
            f"signing versions {sorted(self._signing)} current {self.signing_version})"
        )

    __str__ = __repr__


_KEY_CACHE: dict[tuple[Any, ...], AuditKeys] = {}


def load_keys(keyring_path: Path | str | None = None) -> AuditKeys:
    """The audit keys from the configured keyring, adding them on first use.

    A keyring made before the access log lacks the audit kinds; they are added (version 1,
    under the keyring lock) the first time a process needs them, as ``hub keys upgrade``
    would. Cached per process until the keyring file or the master key changes.
    """

    master_key_file = current().master_key_file
    if keyring_path is None:
        keyring_path = current().keyring_path
    path = Path(keyring_path).expanduser().absolute()
    try:
        info = path.stat()
        signature: tuple[Any, ...] = (str(path), info.st_ino, info.st_mtime_ns, info.st_size)
    except FileNotFoundError:
        signature = (str(path),)
    master = os.environ.get(MASTER_KEY_ENV, "")
    cache_key = (*signature, hashlib.sha256(master.encode()).hexdigest())
    cached = _KEY_CACHE.get(cache_key)
    if cached is not None:
        return cached
    keyring = Keyring.load(path, master_key_file=master_key_file)
    if not (keyring.has("audit") and keyring.has("audit-sign")):
        keyring, _ = keyring.add_missing(("audit", "audit-sign"))
        return load_keys(path)  # cached under the rewritten file's signature
    keys = AuditKeys.from_keyring(keyring)
    _KEY_CACHE.clear()
    _KEY_CACHE[cache_key] = keys
    return keys


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def read_public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM text (``hub audit public-key --all`` output)."""
    keys: list[Ed25519PublicKey] = []
    for block in re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", text, flags=re.S):
        try:
            key = serialization.load_pem_public_key(block.encode("ascii"))
        except ValueError:
            raise AuditKeyError("a PUBLIC KEY block of the given file is not a valid public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError("a public key of the given file is not an Ed25519 key")
        keys.append(key)
    if not keys:
        raise AuditKeyError("no PEM public key found (expected `hub audit public-key` output)")
    return keys
