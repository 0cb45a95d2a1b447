"""Verification (核验) without bulk access: does this identity number belong to this name?

A consumer system asks whether an identity number and name, a unified social credit code
and name, or an electronic certificate identifier (optionally with its holder's name) are
on record, and gets match or no match. The hub answers from a verification index that
never holds a raw value: per registered record,

* ``key_token``: the keyed token of the record's key, exactly as the shared tables carry it
  (population's ``person_token`` is the token of ``id_number``), ``k<version>_...``;
* ``name_digest``: the first 16 bytes of HMAC-SHA256 of
  ``dataset 0x1F normalised-key 0x1F normalised-name`` under a verification key derived
  from the same token key version (``HMAC(token key, "gov-data-hub/verify/v1")``), so a
  digest is useless outside the hub and different from every token.

Names are compared after :func:`normalise_name`: Unicode NFKC (full-width letters, digits
and spaces become half-width), every whitespace removed, the separator dot of minority and
foreign names written one way (``·``), then case-folded. Keys after :func:`normalise_key`:
NFKC, whitespace removed, upper case (``x`` check characters become ``X``).

The pipeline's mask step stages a batch's index rows from the raw values it already holds
(:class:`IndexStager`); the register step upserts them on ``key_token`` into the internal
Iceberg table ``internal.<dataset>_verify`` (:func:`register_staged`), so the index follows
every update. During a token-key mapping period the batch's old-version tokens are retired
as the shared table's are. The server holds each index in memory as sorted fixed-width
numpy arrays (:class:`VerificationIndex`, 32 bytes a row) and looks a key up by binary
search, under every token-key version the index holds, newest first.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from catalog.errors import DatasetNotFoundError
from catalog.tables.verification_index import (
    BY_DATASET,
    DIGEST_BYTES,
    INDEX_NAMESPACE,
    INDEX_SCHEMA,
    SUBJECTS,
    TOKEN_CHARS,
    IndexStager,
    Subject,
    index_name,
    index_rows,
    key_hmac,
    name_digest,
    normalise_key,
    normalise_name,
    register_staged,
    verify_key,
)
from masking.rules import KEY_KINDS, apply_rule
from schemas.contract import DEFAULT_LEVEL, ShareLevel, load_contract

if TYPE_CHECKING:
    from catalog.tables import SharedTables
    from masking.keys import DataKey


# -- normalisation and digests ---------------------------------------------------------------


# -- the pipeline's part ------------------------------------------------------------------------


# -- the server's part ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """The index rows made under one token-key version, sorted by key."""

    version: int
    hi: np.ndarray
    lo: np.ndarray
    n0: np.ndarray
    n1: np.ndarray


@dataclass(frozen=True)
class Lookup:
    """The answer of the index for one identifier (and name)."""

    found: bool
    matched: bool
    version: int | None = None
    key_token: str | None = None
    """The identifier's token under the version looked up (the newest one held when not found)."""


@dataclass
class VerificationIndex:
    """One dataset's index in memory: per token-key version, four sorted uint64 arrays."""

    dataset: str
    snapshot_id: int | None
    parts: list[_Part] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(p.hi) for p in self.parts)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for p in self.parts for a in (p.hi, p.lo, p.n0, p.n1))

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(p.version for p in self.parts)

    @classmethod
    def from_batches(
        cls, dataset: str, snapshot_id: int | None, batches: Iterable[pa.RecordBatch | pa.Table]
    ) -> VerificationIndex:
        """Build from index rows (``key_token``, ``key_version``, ``name_digest``), any order."""
        pieces: dict[int, list[tuple[np.ndarray, ...]]] = {}
        for batch in batches:
            if batch.num_rows == 0:
                continue
            versions = np.asarray(batch.column("key_version").to_numpy(zero_copy_only=False), dtype=np.int64)
            for version in np.unique(versions):
                chosen = versions == version
                subset = batch.filter(pa.array(chosen)) if not chosen.all() else batch
                hi, lo = _token_words(subset.column("key_token"))
                n0, n1 = _digest_words(subset.column("name_digest"))
                pieces.setdefault(int(version), []).append((hi, lo, n0, n1))
        parts = []
        for version, chunks in sorted(pieces.items(), reverse=True):
            hi, lo, n0, n1 = (np.concatenate([c[i] for c in chunks]) for i in range(4))
            order = np.lexsort((lo, hi))
            parts.append(_Part(version, hi[order], lo[order], n0[order], n1[order]))
            del hi, lo, n0, n1, order
        return cls(dataset, snapshot_id, parts)

    def lookup(self, identifier: str, name: str | None, keys: dict[int, DataKey]) -> Lookup:
        """Whether the identifier is indexed and, when a name is given, whether it matches.

        ``keys`` maps token-key versions to keys; a version the index holds but ``keys``
        lacks cannot be looked up (the server reloads its keyring on rotation).
        """
        first_token: str | None = None
        for part in self.parts:
            key = keys.get(part.version)
            if key is None:
                continue
            mac = key_hmac(key, identifier)
            if first_token is None:
                first_token = token_string(key, mac)
            hi, lo = struct.unpack(">QQ", mac[:16])
            start = int(np.searchsorted(part.hi, np.uint64(hi), "left"))
            stop = int(np.searchsorted(part.hi, np.uint64(hi), "right"))
            for position in range(start, stop):
                if int(part.lo[position]) != lo:
                    continue
                token_text = token_string(key, mac)
                if name is None:
                    return Lookup(True, True, part.version, token_text)
                d0, d1 = struct.unpack(">QQ", name_digest(verify_key(key), self.dataset, identifier, name))
                stored = (int(part.n0[position]), int(part.n1[position]))
                return Lookup(True, stored == (d0, d1) and stored != (0, 0), part.version, token_text)
        return Lookup(False, False, None, first_token)


def token_string(key: DataKey, mac: bytes) -> str:
    """The token (``k<version>_...``) an HMAC of ``key`` encodes, as the masking rule writes it."""
    return key.prefix + base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def _fixed_bytes(values: pa.Array | pa.ChunkedArray, width: int, *, suffix: int = 0) -> np.ndarray:
    """The last ``width`` bytes of each (same-length) string or binary value, as an (n, width) matrix."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
        values = values.cast(pa.string() if pa.types.is_large_string(values.type) else pa.binary())
    n = len(values)
    if pa.types.is_fixed_size_binary(values.type):
        size = values.type.byte_width
        data = np.frombuffer(values.buffers()[1], dtype=np.uint8)
        matrix = data[values.offset * size : (values.offset + n) * size].reshape(n, size)
        return matrix[:, size - width :]
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + n + 1]
    lengths = np.diff(offsets)
    if n and (lengths.min() != lengths.max()):
        # Several token versions of different prefix lengths in one array: right-align.
        return np.array(
            [np.frombuffer(v, dtype=np.uint8)[-width:] for v in _as_bytes(values)], dtype=np.uint8
        )
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    size = int(lengths[0]) if n else width
    matrix = data[offsets[0] : offsets[0] + n * size].reshape(n, size)
    return matrix[:, size - width :]


def _as_bytes(values: pa.Array) -> Iterator[bytes]:
    yield from values.cast(pa.binary()).to_pylist()


def _token_words(tokens: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The first 16 bytes of the HMAC each token encodes, as two big-endian uint64 arrays."""
    encoded = _fixed_bytes(tokens, TOKEN_CHARS)
    n = len(encoded)
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    # 43 characters plus one more make 44, exactly 33 bytes: decode all rows in one call.
    padded = np.empty((n, TOKEN_CHARS + 1), dtype=np.uint8)
    padded[:, :TOKEN_CHARS] = encoded
    padded[:, TOKEN_CHARS] = ord("A")
    raw = np.frombuffer(base64.urlsafe_b64decode(padded.tobytes()), dtype=np.uint8).reshape(n, 33)
    words = np.ascontiguousarray(raw[:, :16]).view(">u8").astype(np.uint64)
    return words[:, 0].copy(), words[:, 1].copy()


def _digest_words(digests: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(digests, pa.ChunkedArray):
        digests = digests.combine_chunks()
    if not pa.types.is_fixed_size_binary(digests.type):
        digests = digests.cast(pa.binary(DIGEST_BYTES))
    n = len(digests)
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    filled = (
        digests.fill_null(pa.scalar(bytes(DIGEST_BYTES), pa.binary(DIGEST_BYTES)))
        if digests.null_count
        else digests
    )
    matrix = _fixed_bytes(filled, DIGEST_BYTES)
    words = np.ascontiguousarray(matrix).view(">u8").astype(np.uint64)
    return words[:, 0].copy(), words[:, 1].copy()


def load_index(internal: SharedTables, dataset: str) -> VerificationIndex | None:
    """The dataset's index as of its table's current snapshot; None when it has no table yet."""
    try:
        table = internal.load(index_name(dataset))
    except DatasetNotFoundError:
        return None
    snapshot = table.current_snapshot()
    if snapshot is None:
        return VerificationIndex(dataset, None)
    reader = table.scan(
        selected_fields=("key_token", "key_version", "name_digest"), snapshot_id=snapshot.snapshot_id
    ).to_arrow_batch_reader()
    return VerificationIndex.from_batches(dataset, snapshot.snapshot_id, reader)


def current_snapshot(internal: SharedTables, dataset: str) -> int | None:
    """The index table's current snapshot (None: no table or no snapshot yet)."""
    try:
        snapshot = internal.load(index_name(dataset)).current_snapshot()
    except DatasetNotFoundError:
        return None
    return None if snapshot is None else snapshot.snapshot_id


def published_key(subject: Subject, identifier: str, token_key: DataKey) -> tuple[str, Any]:
    """The record's key column and value as its shared table holds them: the contract's rule
    (at the shared tables' level) applied to the identifier.

    ``token_key`` is the version the index found the record under: the shared table's row
    was masked in the same step with the same version.
    """

    contract = load_contract(subject.dataset)
    key_field = next(f for f in contract.fields if f.name == subject.key_field)
    spec = key_field.mask.at(ShareLevel(DEFAULT_LEVEL))
    key = token_key if KEY_KINDS.get(spec.rule) == "token" else None
    value = apply_rule(spec.rule, pa.array([normalise_key(identifier)], pa.string()), key=key, **spec.params)
    return key_field.published_name, value[0].as_py()


__all__ = [
    "BY_DATASET",
    "INDEX_NAMESPACE",
    "INDEX_SCHEMA",
    "SUBJECTS",
    "IndexStager",
    "Lookup",
    "Subject",
    "VerificationIndex",
    "current_snapshot",
    "index_name",
    "index_rows",
    "load_index",
    "name_digest",
    "normalise_key",
    "normalise_name",
    "published_key",
    "register_staged",
]
