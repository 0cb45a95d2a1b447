"""The local keyring: versioned keys for keyed tokens, in one JSON file only its owner can read.

File layout (``format`` 1)::

    {"format": 1, "wrapping": "none", "current": 2,
     "keys": [{"version": 1, "purpose": "token-hmac-sha256",
               "created_at": "2025-08-01T08:00:00+00:00", "material": "<base64>"}, ...]}

``wrapping`` is ``"none"`` in format 1: the file itself is the secret, hence mode 0600 in a
0700 folder outside the repository. Envelope encryption (a master key wrapping each data
key) will be format 2 with another ``wrapping`` value; format 1 readers refuse it rather
than misread it. Old versions stay in the file after a rotation so that tokens issued with
them can still be recomputed and matched.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from masking.errors import (
    KeyringExistsError,
    KeyringFormatError,
    KeyringMissingError,
    KeyringPermissionError,
    UnknownKeyVersionError,
)

KEYRING_FORMAT = 1
KEY_BYTES = 32
"""256-bit keys: the HMAC-SHA256 output size, so the key is never the weakest link."""
TOKEN_PURPOSE = "token-hmac-sha256"
_MAX_FILE_BYTES = 1 << 20


class Secret:
    """Key material that never prints: repr, str and format all give ``Secret('**********')``."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The raw bytes, for the one place that computes with them."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True)
class TokenKey:
    """One key version, as the token rule needs it."""

    version: int
    secret: Secret

    @property
    def prefix(self) -> str:
        """Written in front of every token so that a token names the key that made it."""
        return f"k{self.version}_"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its material."""

    version: int
    created_at: datetime
    current: bool


@dataclass(frozen=True)
class _Entry:
    created_at: datetime
    secret: Secret


class Keyring:
    """Versioned token keys loaded from (or just written to) a keyring file."""

    def __init__(self, path: Path, keys: dict[int, _Entry], current: int) -> None:
        self._path = path
        self._keys = dict(keys)
        self._current = current

    @classmethod
    def init(cls, path: Path | str, *, force: bool = False) -> Keyring:
        """Create a keyring with one fresh key; refuse to replace an existing one unless ``force``.

        Replacing a keyring makes every token issued so far impossible to recompute, which is
        why overwriting needs an explicit ``force``.
        """
        target = Path(path).expanduser()
        if target.exists() and not force:
            raise KeyringExistsError(_exists_message(target))
        keyring = cls(target, {1: _new_entry()}, current=1)
        _ensure_private_folder(target.parent)
        _write_atomic(target, keyring._dump(), replace=force)
        return keyring

    @classmethod
    def load(cls, path: Path | str) -> Keyring:
        """Read a keyring, refusing files others can read and files that are not keyrings."""
        target = Path(path).expanduser()
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            raise KeyringMissingError(f"no keyring at {target}: run `hub keys init` to create one") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringPermissionError(
                f"keyring {target} is accessible to group or others "
                f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {target}`"
            )
        if not stat.S_ISREG(mode) or target.stat().st_size > _MAX_FILE_BYTES:
            raise _malformed(target, "not a regular file of sensible size")
        try:
            raw = json.loads(target.read_bytes())
        except UnicodeDecodeError:
            raise _malformed(target, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            # Line and column only: the decoder's own message could quote file content.
            where = f"line {exc.lineno}, column {exc.colno}"
            raise _malformed(target, f"not valid JSON ({where})") from None
        keys, current = _parse(raw, target)
        return cls(target, keys, current)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current_version(self) -> int:
        return self._current

    def token_key(self, version: int | None = None) -> TokenKey:
        """The key to make tokens with: the current one unless a version is named."""
        chosen = self._current if version is None else version
        entry = self._keys.get(chosen)
        if entry is None:
            held = ", ".join(str(v) for v in sorted(self._keys))
            raise UnknownKeyVersionError(
                f"keyring {self._path} has no key version {chosen} (versions held: {held})"
            )
        return TokenKey(version=chosen, secret=entry.secret)

    def versions(self) -> tuple[KeyInfo, ...]:
        """Every key version held, oldest first, with its creation time."""
        return tuple(
            KeyInfo(version=v, created_at=e.created_at, current=v == self._current)
            for v, e in sorted(self._keys.items())
        )

    def rotate(self) -> Keyring:
        """Add a fresh key as the new current version and save; older versions are kept."""
        version = max(self._keys) + 1
        rotated = Keyring(self._path, {**self._keys, version: _new_entry()}, current=version)
        _write_atomic(self._path, rotated._dump(), replace=True)
        return rotated

    def __repr__(self) -> str:
        return f"Keyring(path={str(self._path)!r}, versions={sorted(self._keys)}, current={self._current})"

    __str__ = __repr__

    def _dump(self) -> bytes:
        document = {
            "format": KEYRING_FORMAT,
            "wrapping": "none",
            "current": self._current,
            "keys": [
                {
                    "version": v,
                    "purpose": TOKEN_PURPOSE,
                    "created_at": e.created_at.isoformat(),
                    "material": base64.b64encode(e.secret.reveal()).decode("ascii"),
                }
                for v, e in sorted(self._keys.items())
            ],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _new_entry() -> _Entry:
    return _Entry(
        created_at=datetime.now(UTC).replace(microsecond=0),
        secret=Secret(secrets.token_bytes(KEY_BYTES)),
    )


def _exists_message(path: Path) -> str:
    return (
        f"a keyring already exists at {path}; replacing it makes every token issued with it "
        "unrecomputable: pass --force to replace it"
    )


def _malformed(path: Path, reason: str) -> KeyringFormatError:
    return KeyringFormatError(f"keyring {path} is malformed: {reason}")


def _parse(raw: Any, path: Path) -> tuple[dict[int, _Entry], int]:
    def bad(reason: str) -> KeyringFormatError:
        return _malformed(path, reason)

    if not isinstance(raw, dict):
        raise bad("the top level is not an object")
    if raw.get("format") != KEYRING_FORMAT:
        shown = raw.get("format") if isinstance(raw.get("format"), int) else "missing"
        raise bad(f"format {shown} is not supported (expected {KEYRING_FORMAT})")
    if raw.get("wrapping") != "none":
        raise bad("keys are wrapped by a master key, which format 1 readers cannot open")
    items = raw.get("keys")
    if not isinstance(items, list) or not items:
        raise bad("'keys' must be a non-empty list")
    keys: dict[int, _Entry] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise bad(f"key entry {position} is not an object")
        version = item.get("version")
        if type(version) is not int or version < 1:
            raise bad(f"key entry {position} has no positive integer 'version'")
        if version in keys:
            raise bad(f"key version {version} appears twice")
        if item.get("purpose") != TOKEN_PURPOSE:
            raise bad(f"key version {version} has an unknown purpose")
        keys[version] = _Entry(
            created_at=_parse_time(item.get("created_at"), version, path),
            secret=_parse_material(item.get("material"), version, path),
        )
    current = raw.get("current")
    if type(current) is not int or current not in keys:
        raise bad("'current' does not name a key version held in the file")
    return keys, current


def _parse_time(value: Any, version: int, path: Path) -> datetime:
    try:
        created = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        reason = f"key version {version} has no 'created_at' timestamp with a time zone"
        raise _malformed(path, reason)
    return created


def _parse_material(value: Any, version: int, path: Path) -> Secret:
    try:
        material = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        material = None
    if material is None:
        raise _malformed(path, f"key version {version} has no base64 'material'")
    if len(material) != KEY_BYTES:
        raise _malformed(path, f"key version {version} is not {KEY_BYTES} bytes long")
    return Secret(material)


def _ensure_private_folder(folder: Path) -> None:
    """Create the keyring's folder 0700; a folder that already exists is left as it is."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_atomic(path: Path, data: bytes, *, replace: bool) -> None:
    """Write via a 0600 temporary file in the same folder, so readers never see half a file.

    Without ``replace`` the file is hard-linked into place, which fails if another process
    created the keyring in the meantime instead of silently replacing it.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_clobber(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise KeyringExistsError(_exists_message(path)) from None
    except OSError:
        # File systems without hard links: fall back to check-then-replace.
        if path.exists():
            raise KeyringExistsError(_exists_message(path)) from None
        os.replace(tmp, path)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
