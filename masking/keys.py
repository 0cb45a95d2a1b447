"""The keyring: versioned data keys, each wrapped by a master key (envelope encryption).

File layout (``format`` 2)::

    {"format": 2, "wrapping": "aes-256-gcm", "master_check": "<hex>",
     "current": {"token": 2, "encrypt": 1},
     "keys": [{"kind": "token", "version": 1, "algorithm": "hmac-sha256",
               "created_at": "2025-08-01T08:00:00+00:00",
               "wrapped": "<base64 nonce|ciphertext|tag>", "kcv": "<hex>"}, ...]}

Four kinds of data key: ``token`` (HMAC-SHA256 keyed tokens), ``encrypt`` (AES-256-GCM
field encryption), ``audit`` (HMAC-SHA256 MAC of access-log entries) and ``audit-sign`` (the
32-byte seed of the Ed25519 key that signs access-log checkpoints). Each is wrapped with
AES-256-GCM under the master key, with the kind and version as associated data, so an entry
cannot be moved to another kind or version unnoticed.
``master_check`` tells a wrong master key apart from a damaged entry, and each entry's key
check value (``kcv``) proves that what unwrapped is the key that was stored.

The master key comes from ``HUB_MASTER_KEY`` (base64 of 32 bytes) or, when that is not set,
from a file (``masking.master_key_file``, default ``master.key`` beside the keyring): mode
0600, never inside a git work tree. Old versions stay after a rotation so that tokens made
with them can still be recomputed and values encrypted with them still decrypted.

Format 1 (unwrapped keys, token kind only) is read only by :meth:`Keyring.upgrade`
(``hub keys upgrade``), which keeps every token key and version so tokens do not change.
Format-2 keyrings made before the access log hold no audit kinds: :meth:`Keyring.add_missing`
(``hub keys upgrade``, or the access log on first use) adds them, under a file lock.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from masking.errors import (
    KeyringExistsError,
    KeyringFormatError,
    KeyringMissingError,
    KeyringPermissionError,
    KeyringUpgradeNeededError,
    KeyVerificationError,
    MasterKeyError,
    UnknownKeyVersionError,
)

KeyKind: TypeAlias = Literal["token", "encrypt", "audit", "audit-sign"]
KINDS: tuple[KeyKind, ...] = get_args(KeyKind)
REQUIRED_KINDS: tuple[KeyKind, ...] = ("token", "encrypt")
"""Kinds every format-2 keyring holds; the others may be missing from older keyrings."""
KEYRING_FORMAT = 2
KEY_BYTES = 32
"""256-bit keys: the HMAC-SHA256 output size and the AES-256 key size."""
MASTER_KEY_ENV = "HUB_MASTER_KEY"
MASTER_KEY_FILENAME = "master.key"
WRAPPING = "aes-256-gcm"
ALGORITHMS: dict[KeyKind, str] = {
    "token": "hmac-sha256",
    "encrypt": "aes-256-gcm",
    "audit": "hmac-sha256",
    "audit-sign": "ed25519",
}
TOKEN_PURPOSE = "token-hmac-sha256"
"""The only purpose of format-1 keys."""
_NONCE_BYTES = 12
_CHECK_BYTES = 8
"""64-bit check values: a wrong key passes by chance once in 2**64, and they reveal nothing."""
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


@dataclass(frozen=True, kw_only=True)
class DataKey:
    """One data key version, as the masking rules need it.

    ``kind`` defaults to ``"token"`` so that ``TokenKey(version=..., secret=...)``, the name
    the token rule has always used, still builds a token key.
    """

    kind: KeyKind = "token"
    version: int
    secret: Secret

    @property
    def prefix(self) -> str:
        """Written in front of every token or ciphertext so that it names the key that made it."""
        return f"k{self.version}_" if self.kind == "token" else f"e{self.version}:"


TokenKey = DataKey
"""The earlier name of a token key; a :class:`DataKey` of kind ``token``."""


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its material."""

    kind: KeyKind
    version: int
    created_at: datetime
    current: bool


@dataclass(frozen=True)
class MasterKey:
    """The key that wraps the data keys, and where it came from (for messages, never the key)."""

    secret: Secret = field(repr=False)
    origin: str
    created: bool = False
    """True when this process just wrote the master key file (``hub keys init`` says where)."""

    @classmethod
    def resolve(
        cls, keyring_path: Path, *, create: bool = False, master_key_file: Path | None = None
    ) -> MasterKey:
        """``HUB_MASTER_KEY`` if set, else the master key file (made when ``create`` and missing)."""
        encoded = os.environ.get(MASTER_KEY_ENV)
        if encoded:
            material = _decode_key(encoded)
            if material is None:
                raise MasterKeyError(f"{MASTER_KEY_ENV} is not the base64 encoding of {KEY_BYTES} bytes")
            return cls(Secret(material), origin=f"environment variable {MASTER_KEY_ENV}")
        return cls.from_file(master_key_path(keyring_path, master_key_file), create=create)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> MasterKey:
        """Read (or, with ``create``, make) a master key file, refusing unsafe places and modes."""
        path = path.expanduser().absolute()
        origin = f"file {path}"
        repository = _git_work_tree(path)
        if repository is not None:
            raise MasterKeyError(
                f"master key file {path} lies inside the git work tree {repository}: "
                "set masking.master_key_file to a path outside any repository"
            )
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            if not create:
                raise MasterKeyError(
                    f"no master key: {MASTER_KEY_ENV} is not set and {path} does not exist "
                    "(`hub keys init` creates it)"
                ) from None
            material = secrets.token_bytes(KEY_BYTES)
            _ensure_private_folder(path.parent)
            _write_atomic(path, base64.b64encode(material) + b"\n", replace=False, what="master key file")
            return cls(Secret(material), origin=origin, created=True)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringPermissionError(
                f"master key file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
            )
        if not stat.S_ISREG(mode) or path.stat().st_size > 1024:
            raise MasterKeyError(f"master key file {path} is not a regular file of sensible size")
        stored = _decode_key(path.read_bytes().decode("ascii", errors="replace"))
        if stored is None:
            raise MasterKeyError(f"master key file {path} does not hold base64 of {KEY_BYTES} bytes")
        return cls(Secret(stored), origin=origin)


def master_key_path(keyring_path: Path, configured: Path | None = None) -> Path:
    """The configured master key file (``settings.masking.master_key_file``, handed in by the
    caller), or ``master.key`` in the keyring's folder."""
    if configured is not None:
        return configured.expanduser()
    return keyring_path.expanduser().parent / MASTER_KEY_FILENAME


def keyring_format(path: Path | str) -> int:
    """The ``format`` number of a keyring file (after the same safety checks as loading)."""
    raw = _read_document(Path(path).expanduser())
    version = raw.get("format")
    if type(version) is not int:
        raise _malformed(Path(path), "format missing")
    return version


@dataclass(frozen=True)
class _Entry:
    created_at: datetime
    secret: Secret


class Keyring:
    """Versioned token and encryption keys, unwrapped in memory from a keyring file."""

    def __init__(
        self,
        path: Path,
        keys: dict[tuple[KeyKind, int], _Entry],
        current: dict[KeyKind, int],
        master: MasterKey,
    ) -> None:
        self._path = path
        self._keys = dict(keys)
        self._current = dict(current)
        self._master = master

    @classmethod
    def init(
        cls,
        path: Path | str,
        *,
        force: bool = False,
        master: MasterKey | None = None,
        master_key_file: Path | None = None,
    ) -> Keyring:
        """Create a keyring with one fresh key of every kind; refuse to replace one unless ``force``.

        Replacing a keyring makes every token issued so far impossible to recompute and every
        encrypted value undecryptable, which is why overwriting needs an explicit ``force``.
        The master key file is created too when neither it nor ``HUB_MASTER_KEY`` exists.
        """
        target = Path(path).expanduser()
        if target.exists() and not force:
            raise KeyringExistsError(_exists_message(target))
        master = master or MasterKey.resolve(target, create=True, master_key_file=master_key_file)
        keys = {(kind, 1): _new_entry() for kind in KINDS}
        keyring = cls(target, keys, dict.fromkeys(KINDS, 1), master)
        _ensure_private_folder(target.parent)
        _write_atomic(target, keyring._dump(), replace=force, what="keyring")
        return keyring

    @classmethod
    def load(
        cls, path: Path | str, *, master: MasterKey | None = None, master_key_file: Path | None = None
    ) -> Keyring:
        """Read a keyring and unwrap every key, checking each against its key check value.

        Refuses files others can read and files that are not format-2 keyrings; the first key
        that does not unwrap or check is named (``hub keys verify`` is this load).
        """
        target = Path(path).expanduser()
        raw = _read_document(target)
        if raw.get("format") == 1:
            raise KeyringUpgradeNeededError(
                f"keyring {target} is format 1 (keys not wrapped by a master key): "
                "run `hub keys upgrade` to wrap them, tokens stay the same"
            )
        master = master or MasterKey.resolve(target, master_key_file=master_key_file)
        keys, current = _parse_v2(raw, target, master)
        return cls(target, keys, current, master)

    @classmethod
    def upgrade(
        cls, path: Path | str, *, master: MasterKey | None = None, master_key_file: Path | None = None
    ) -> Keyring:
        """Rewrite a format-1 keyring as format 2 with the same token keys and versions.

        An encryption key and the audit keys (version 1 each) are added, since format 1 had
        none. The master key file is created when neither it nor ``HUB_MASTER_KEY`` exists.
        """
        target = Path(path).expanduser()
        raw = _read_document(target)
        if raw.get("format") != 1:
            shown = raw.get("format") if isinstance(raw.get("format"), int) else "missing"
            raise KeyringFormatError(f"keyring {target} is format {shown}: only format 1 can be upgraded")
        tokens, current_token = _parse_v1(raw, target)
        master = master or MasterKey.resolve(target, create=True, master_key_file=master_key_file)
        keys: dict[tuple[KeyKind, int], _Entry] = {("token", v): e for v, e in tokens.items()}
        current: dict[KeyKind, int] = {"token": current_token}
        for kind in KINDS[1:]:
            keys[kind, 1] = _new_entry()
            current[kind] = 1
        keyring = cls(target, keys, current, master)
        _write_atomic(target, keyring._dump(), replace=True, what="keyring")
        return keyring

    @property
    def path(self) -> Path:
        return self._path

    @property
    def master(self) -> MasterKey:
        """Where the master key came from (its ``secret`` never prints)."""
        return self._master

    @property
    def current_version(self) -> int:
        """The current token key version."""
        return self._current["token"]

    def has(self, kind: KeyKind) -> bool:
        """Whether the keyring holds keys of ``kind`` (older keyrings lack the audit kinds)."""
        return _kind(kind) in self._current

    def current_key(self, kind: KeyKind) -> DataKey:
        """The key new tokens or ciphertexts of ``kind`` are made with."""
        kind = _kind(kind)
        if kind not in self._current:
            raise UnknownKeyVersionError(
                f"keyring {self._path} has no {kind} key: run `hub keys upgrade` to add it"
            )
        return self.key(kind, self._current[kind])

    def key(self, kind: KeyKind, version: int) -> DataKey:
        """One version of a kind, current or older (to recompute or decrypt)."""
        entry = self._keys.get((_kind(kind), version))
        if entry is None:
            held = ", ".join(str(v) for k, v in sorted(self._keys) if k == kind) or "none"
            raise UnknownKeyVersionError(
                f"keyring {self._path} has no {kind} key version {version} (versions held: {held})"
            )
        return DataKey(kind=kind, version=version, secret=entry.secret)

    def token_key(self, version: int | None = None) -> DataKey:
        """The key to make tokens with: the current one unless a version is named."""
        return self.key("token", self._current["token"] if version is None else version)

    def versions(self, kind: KeyKind | None = None) -> tuple[KeyInfo, ...]:
        """Every key version held (of one kind, or all), token keys first, oldest first."""
        return tuple(
            KeyInfo(kind=k, version=v, created_at=e.created_at, current=self._current[k] == v)
            for (k, v), e in sorted(
                self._keys.items(), key=lambda item: (KINDS.index(item[0][0]), item[0][1])
            )
            if kind is None or k == kind
        )

    def rotate(self, kind: KeyKind = "token") -> Keyring:
        """Add a fresh key of ``kind`` as its new current version and save; older ones are kept.

        The file is re-read under the keyring lock first, so a key another process added in
        the meantime is kept rather than overwritten.
        """
        kind = _kind(kind)

        def add(keyring: Keyring) -> Keyring:
            version = max((v for k, v in keyring._keys if k == kind), default=0) + 1
            return keyring._with(kind, version)

        return self._update(add)

    def add_missing(self, kinds: Iterable[KeyKind] = KINDS) -> tuple[Keyring, tuple[KeyKind, ...]]:
        """Add version 1 of each of ``kinds`` the keyring lacks and save; returns the keyring
        and the kinds added (none when another process added them first)."""
        wanted = tuple(_kind(k) for k in kinds)
        added: list[KeyKind] = []

        def add(keyring: Keyring) -> Keyring:
            for kind in wanted:
                if kind not in keyring._current:
                    keyring = keyring._with(kind, 1)
                    added.append(kind)
            return keyring

        if all(kind in self._current for kind in wanted):
            return self, ()
        return self._update(add), tuple(added)

    def _with(self, kind: KeyKind, version: int) -> Keyring:
        return Keyring(
            self._path,
            {**self._keys, (kind, version): _new_entry()},
            {**self._current, kind: version},
            self._master,
        )

    def _update(self, change: Callable[[Keyring], Keyring]) -> Keyring:
        """Apply ``change`` to the keyring as it is on disk now and save, holding the lock."""
        with _locked(self._path):
            keys, current = _parse_v2(_read_document(self._path), self._path, self._master)
            fresh = Keyring(self._path, keys, current, self._master)
            changed = change(fresh)
            if changed is not fresh:
                _write_atomic(self._path, changed._dump(), replace=True, what="keyring")
            return changed

    def __repr__(self) -> str:
        held = "; ".join(
            f"{kind} versions {[v for k, v in sorted(self._keys) if k == kind]} current {self._current[kind]}"
            for kind in KINDS
            if kind in self._current
        )
        return f"Keyring(path={str(self._path)!r}, {held}, master from {self._master.origin})"

    __str__ = __repr__

    def _dump(self) -> bytes:
        master = self._master.secret.reveal()
        document = {
            "format": KEYRING_FORMAT,
            "wrapping": WRAPPING,
            "master_check": _check_value(master, b"gov-data-hub master key check"),
            "current": {kind: self._current[kind] for kind in KINDS if kind in self._current},
            "keys": [
                {
                    "kind": info.kind,
                    "version": info.version,
                    "algorithm": ALGORITHMS[info.kind],
                    "created_at": info.created_at.isoformat(),
                    "wrapped": _wrap(master, info.kind, info.version, self._keys[info.kind, info.version]),
                    "kcv": _check_value(self._keys[info.kind, info.version].secret.reveal(), b"kcv"),
                }
                for info in self.versions()
            ],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _kind(kind: str) -> KeyKind:
    if kind not in KINDS:
        raise UnknownKeyVersionError(f"unknown key kind {kind!r} (known: {', '.join(KINDS)})")
    return kind


def _new_entry() -> _Entry:
    return _Entry(
        created_at=datetime.now(UTC).replace(microsecond=0),
        secret=Secret(secrets.token_bytes(KEY_BYTES)),
    )


def _decode_key(text: str) -> bytes | None:
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return material if len(material) == KEY_BYTES else None


def _check_value(key: bytes, label: bytes) -> str:
    return hmac.new(key, b"gov-data-hub check value: " + label, hashlib.sha256).digest()[:_CHECK_BYTES].hex()


def _aad(kind: KeyKind, version: int) -> bytes:
    return f"gov-data-hub keyring {KEYRING_FORMAT} {kind} {version}".encode("ascii")


def _wrap(master: bytes, kind: KeyKind, version: int, entry: _Entry) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, entry.secret.reveal(), _aad(kind, version))
    return base64.b64encode(nonce + sealed).decode("ascii")


def _unwrap(master: bytes, kind: KeyKind, version: int, wrapped: bytes) -> bytes | None:
    try:
        return AESGCM(master).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _aad(kind, version))
    except InvalidTag:
        return None


def _exists_message(path: Path) -> str:
    return (
        f"a keyring already exists at {path}; replacing it makes every token issued with it "
        "unrecomputable and every encrypted value undecryptable: pass --force to replace it"
    )


def _malformed(path: Path, reason: str) -> KeyringFormatError:
    return KeyringFormatError(f"keyring {path} is malformed: {reason}")


def _read_document(target: Path) -> dict[str, Any]:
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
    if not isinstance(raw, dict):
        raise _malformed(target, "the top level is not an object")
    return raw


def _parse_v2(
    raw: dict[str, Any], path: Path, master: MasterKey
) -> tuple[dict[tuple[KeyKind, int], _Entry], dict[KeyKind, int]]:
    def bad(reason: str) -> KeyringFormatError:
        return _malformed(path, reason)

    if raw.get("format") != KEYRING_FORMAT:
        shown = raw.get("format") if isinstance(raw.get("format"), int) else "missing"
        raise bad(f"format {shown} is not supported (expected {KEYRING_FORMAT})")
    if raw.get("wrapping") != WRAPPING:
        raise bad(f"'wrapping' is not {WRAPPING!r}")
    secret = master.secret.reveal()
    if raw.get("master_check") != _check_value(secret, b"gov-data-hub master key check"):
        raise MasterKeyError(
            f"the master key from {master.origin} is not the one keyring {path} was made with "
            "(its check value differs)"
        )
    items = raw.get("keys")
    if not isinstance(items, list) or not items:
        raise bad("'keys' must be a non-empty list")
    keys: dict[tuple[KeyKind, int], _Entry] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise bad(f"key entry {position} is not an object")
        kind, version = item.get("kind"), item.get("version")
        if kind not in KINDS:
            raise bad(f"key entry {position} has no known 'kind' ({', '.join(KINDS)})")
        if type(version) is not int or version < 1:
            raise bad(f"key entry {position} has no positive integer 'version'")
        name = f"{kind} key version {version}"
        if (kind, version) in keys:
            raise bad(f"{name} appears twice")
        if item.get("algorithm") != ALGORITHMS[kind]:
            raise bad(f"{name} has an unknown algorithm")
        created_at = _parse_time(item.get("created_at"), name, path)
        wrapped = item.get("wrapped")
        try:
            sealed = base64.b64decode(wrapped, validate=True) if isinstance(wrapped, str) else None
        except (binascii.Error, ValueError):
            sealed = None
        if sealed is None:
            raise bad(f"{name} has no base64 'wrapped' key")
        material = _unwrap(secret, kind, version, sealed)
        if material is None or len(material) != KEY_BYTES:
            raise KeyVerificationError(
                f"{name} in keyring {path} does not unwrap with the master key from {master.origin} "
                "(damaged, or copied from another keyring)"
            )
        if item.get("kcv") != _check_value(material, b"kcv"):
            raise KeyVerificationError(
                f"{name} in keyring {path} fails its key check value (the entry was altered)"
            )
        keys[kind, version] = _Entry(created_at=created_at, secret=Secret(material))
    current = raw.get("current")
    if not isinstance(current, dict):
        raise bad("'current' must map each key kind to a version")
    held = {kind for kind, _ in keys}
    for kind in KINDS:
        if kind not in REQUIRED_KINDS and kind not in held and kind not in current:
            continue  # a keyring made before this kind existed
        version = current.get(kind)
        if type(version) is not int or (kind, version) not in keys:
            raise bad(f"'current' does not name a {kind} key version held in the file")
    return keys, {kind: current[kind] for kind in KINDS if kind in current}


def _parse_v1(raw: dict[str, Any], path: Path) -> tuple[dict[int, _Entry], int]:
    def bad(reason: str) -> KeyringFormatError:
        return _malformed(path, reason)

    if raw.get("wrapping") != "none":
        raise bad("a format-1 keyring must have 'wrapping' 'none'")
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
        material = item.get("material")
        decoded = _decode_key(material) if isinstance(material, str) else None
        if decoded is None:
            raise bad(f"key version {version} has no base64 'material' of {KEY_BYTES} bytes")
        keys[version] = _Entry(
            created_at=_parse_time(item.get("created_at"), f"key version {version}", path),
            secret=Secret(decoded),
        )
    current = raw.get("current")
    if type(current) is not int or current not in keys:
        raise bad("'current' does not name a key version held in the file")
    return keys, current


def _parse_time(value: Any, name: str, path: Path) -> datetime:
    try:
        created = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise _malformed(path, f"{name} has no 'created_at' timestamp with a time zone")
    return created


def _git_work_tree(path: Path) -> Path | None:
    """The work tree holding ``path``, if any: a key file there is one `git add` from a leak."""
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the keyring (``.keyring.json.lock``) while it is rewritten."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _ensure_private_folder(folder: Path) -> None:
    """Create the key folder 0700; a folder that already exists is left as it is."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_atomic(path: Path, data: bytes, *, replace: bool, what: str) -> None:
    """Write via a 0600 temporary file in the same folder, so readers never see half a file.

    Without ``replace`` the file is hard-linked into place, which fails if another process
    created it in the meantime instead of silently replacing it.
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
            _link_no_clobber(tmp, path, what)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_clobber(tmp: Path, path: Path, what: str) -> None:
    def exists() -> KeyringExistsError:
        if what == "keyring":
            return KeyringExistsError(_exists_message(path))
        return KeyringExistsError(f"a {what} appeared at {path} while it was being created; run again")

    try:
        os.link(tmp, path)
    except FileExistsError:
        raise exists() from None
    except OSError:
        # File systems without hard links: fall back to check-then-replace.
        if path.exists():
            raise exists() from None
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
