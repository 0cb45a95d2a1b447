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
Iceberg table ``internal.<dataset>verify_route`` (:func:`register_staged`), so the index follows
every update. During a token-key mapping period the batch's old-version tokens are retired
as the shared table's are. The server holds each index in memory as sorted fixed-width
numpy arrays (:class:`VerificationIndex`, 32 bytes a row) and looks a key up by binary
search, under every token-key version the index holds, newest first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from catalog.tables import SharedTables
    from masking.keys import DataKey, Keyring

INDEX_NAMESPACE = "internal"
"""Iceberg namespace of the verification indexes (hub-owned, never shared)."""
VERIFY_CONTEXT = b"gov-data-hub/verify/v1"
"""Domain separation of the verification key from the token key it is derived from."""
DIGEST_BYTES = 16
STAGED = "verify"
"""Staged file (``verify.parquet``) of a batch's index rows, beside ``masked.parquet``."""
STAGED_RETIRED = "verify_retired"

INDEX_SCHEMA = pa.schema(
    [
        pa.field("key_token", pa.string(), nullable=False),
        pa.field("key_version", pa.int32(), nullable=False),
        pa.field("name_digest", pa.binary(DIGEST_BYTES), nullable=True),
    ]
)
RETIRED_SCHEMA = pa.schema([pa.field("old_token", pa.string(), nullable=False)])

_TOKEN_CHARS = 43  # unpadded url-safe base64 of a 32-byte HMAC


@dataclass(frozen=True)
class Subject:
    """What one kind of verification checks: a dataset's key field and, if any, its name field."""

    kind: str
    dataset: str
    key_field: str
    """Contract field holding the identifier (also the request's field name)."""
    name_field: str | None
    name_required: bool
    close_prefix: bool
    """Whether identifiers sharing a long prefix count as sequentially close (enumeration)."""
    pattern: str
    """What a normalised identifier must look like (a request otherwise is invalid)."""
    shape: str
    """The pattern in words, for the refusal."""


SUBJECTS: dict[str, Subject] = {
    "person": Subject(
        "person",
        "population",
        "id_number",
        "name",
        name_required=True,
        close_prefix=True,
        pattern=r"^[0-9]{17}[0-9X]$",
        shape="17 digits and a digit or X (GB 11643)",
    ),
    "legal_entity": Subject(
        "legal_entity",
        "legal_entity",
        "uscc",
        "name",
        name_required=True,
        close_prefix=True,
        pattern=r"^[0-9A-HJ-NP-RTUW-Y]{18}$",
        shape="18 characters of 0-9 and A-Y without I, O, S, V, Z (GB 32100)",
    ),
    "certificate": Subject(
        "certificate",
        "certificate",
        "certificate_id",
        "holder_name",
        name_required=False,
        close_prefix=False,
        pattern=r"^[0-9A-Z]+(\.[0-9A-Z]+)+$",
        shape="dot-separated digits and capital letters (GB/T 36904)",
    ),
}
"""Verification kinds: an identity number and name against population, a credit code and
name against legal entities, a certificate identifier (and optionally its holder's name)
against certificates."""
BY_DATASET = {s.dataset: s for s in SUBJECTS.values()}


def index_name(dataset: str) -> str:
    """The verification index table of a dataset, in namespace :data:`INDEX_NAMESPACE`."""
    return f"{dataset}verify_route"


# -- normalisation and digests ---------------------------------------------------------------

_DOTS = str.maketrans(dict.fromkeys(".。．•‧∙⋅・･", "·"))


def normalise_name(text: str) -> str:
    """A name as the index compares it: NFKC, no whitespace, one separator dot, case-folded."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).translate(_DOTS).casefold()


def normalise_key(text: str) -> str:
    """An identifier as the index compares it: NFKC, no whitespace, upper case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def verify_key(token_key: DataKey) -> bytes:
    """The verification key derived from one token key version."""
    return hmac.new(token_key.secret.reveal(), VERIFY_CONTEXT, hashlib.sha256).digest()


def name_digest(key: bytes, dataset: str, identifier: str, name: str) -> bytes:
    """Keyed digest of a normalised (identifier, name) pair; both are normalised here."""
    message = "\x1f".join((dataset, normalise_key(identifier), normalise_name(name))).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()[:DIGEST_BYTES]


def key_hmac(token_key: DataKey, identifier: str) -> bytes:
    """HMAC-SHA256 of a normalised identifier under a token key: the bytes its token encodes."""
    return hmac.new(
        token_key.secret.reveal(), normalise_key(identifier).encode("utf-8"), hashlib.sha256
    ).digest()


def index_rows(
    keys: pa.Array | pa.ChunkedArray,
    names: pa.Array | pa.ChunkedArray | None,
    token_key: DataKey,
    dataset: str,
) -> pa.Table:
    """Index rows of raw identifiers (and names), rows with no identifier left out.

    Identifiers are tokenised exactly as the masking rule tokenises them, after
    normalisation (registered identifiers are already in their normal form).
    """
    from masking.rules import token

    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks()
    present = pc.fill_null(pc.not_equal(keys, ""), False)
    keys = _normal_keys(pc.filter(keys, present))
    tokens = token(keys, token_key)
    if names is None:
        digests = pa.nulls(len(keys), pa.binary(DIGEST_BYTES))
    else:
        digests = _name_digests(verify_key(token_key), dataset, keys, pc.filter(names, present))
    return pa.Table.from_arrays(
        [tokens, pa.repeat(pa.scalar(token_key.version, pa.int32()), len(keys)), digests],
        schema=INDEX_SCHEMA,
    )


def _normal_keys(keys: pa.Array) -> pa.Array:
    """Keys in normal form; registered ones already are, so only odd ones go through Python."""
    if len(keys) == 0:
        return keys.cast(pa.string())
    odd = pc.or_(
        pc.invert(pc.string_is_ascii(keys)),
        pc.or_(pc.match_substring_regex(keys, r"\s"), pc.not_equal(keys, pc.ascii_upper(keys))),
    )
    if not pc.any(odd).as_py():
        return keys.cast(pa.string())
    return pa.array([normalise_key(k) for k in keys.to_pylist()], pa.string())


def _name_digests(secret: bytes, dataset: str, keys: pa.Array, names: pa.Array) -> pa.Array:
    """:func:`name_digest` of each (normalised key, name) row; null where there is no name.

    HMAC from SHA-256 states fed with the padded key once (RFC 2104), as the token rule does.
    """
    block = secret.ljust(64, b"\0")
    inner_copy = hashlib.sha256(block.translate(_IPAD)).copy
    outer_copy = hashlib.sha256(block.translate(_OPAD)).copy
    head = f"{dataset}\x1f".encode()
    out: list[bytes | None] = []
    append = out.append
    for key, name in zip(keys.to_pylist(), names.to_pylist(), strict=True):
        if name is None:
            append(None)
            continue
        normal = normalise_name(name)
        if not normal:
            append(None)
            continue
        inner = inner_copy()
        inner.update(head + f"{key}\x1f{normal}".encode())
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.digest()[:DIGEST_BYTES])
    return pa.array(out, pa.binary(DIGEST_BYTES))


_IPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x36 for b in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(b ^ 0x5C for b in range(256)))


# -- the pipeline's part ------------------------------------------------------------------------


class IndexStager:
    """Stages a batch's verification rows beside its masked rows (the mask step).

    A dataset without a verification kind stages nothing; every method is then a no-op.
    """

    def __init__(self, folder: Path, dataset: str, keyring: Keyring, *, mapping_days: int) -> None:
        self.subject = BY_DATASET.get(dataset)
        self.folder = folder
        self.keyring = keyring
        self.mapping_days = mapping_days
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._retired: pq.ParquetWriter | None = None
        if self.subject is not None:
            for stage in (STAGED, STAGED_RETIRED):  # a retried step starts clean
                (folder / f"{stage}.parquet").unlink(missing_ok=True)

    def add(self, chunk: pa.RecordBatch | pa.Table) -> None:
        """Stage the index rows of one chunk of valid (raw) rows."""
        from masking.token_map import token_mapping

        if self.subject is None or chunk.num_rows == 0:
            return
        subject = self.subject
        names = chunk.column(subject.name_field) if subject.name_field else None
        rows = index_rows(
            chunk.column(subject.key_field), names, self.keyring.current_key("token"), subject.dataset
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.folder / f"{STAGED}.parquet", INDEX_SCHEMA, compression="zstd"
            )
        self._writer.write_table(rows)
        self.rows += rows.num_rows
        pairs = token_mapping(chunk.column(subject.key_field), self.keyring, mapping_days=self.mapping_days)
        if pairs is not None and pairs.num_rows:
            if self._retired is None:
                self._retired = pq.ParquetWriter(
                    self.folder / f"{STAGED_RETIRED}.parquet", RETIRED_SCHEMA, compression="zstd"
                )
            self._retired.write_table(pairs.select(["old_token"]).cast(RETIRED_SCHEMA))

    def close(self) -> None:
        for writer in (self._writer, self._retired):
            if writer is not None:
                writer.close()


def register_staged(folder: Path, dataset: str, internal: SharedTables, *, batch_id: str) -> int | None:
    """Upsert a batch's staged index rows into ``internal.<dataset>verify_route`` in one commit.

    Returns the index snapshot, or None when the batch staged nothing (no verification kind
    for the dataset, or no rows). Re-running it with the same batch changes nothing.
    """
    path = folder / f"{STAGED}.parquet"
    if dataset not in BY_DATASET or not path.exists():
        return None
    rows = pq.read_table(path, schema=INDEX_SCHEMA)
    retired_path = folder / f"{STAGED_RETIRED}.parquet"
    retired = (
        pq.read_table(retired_path).column("old_token").combine_chunks() if retired_path.exists() else None
    )
    if rows.num_rows == 0 and (retired is None or len(retired) == 0):
        return None
    return internal.upsert_rows(
        index_name(dataset), rows, keys=["key_token"], batch_id=batch_id, retired_keys=retired
    )


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
    encoded = _fixed_bytes(tokens, _TOKEN_CHARS)
    n = len(encoded)
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    # 43 characters plus one more make 44, exactly 33 bytes: decode all rows in one call.
    padded = np.empty((n, _TOKEN_CHARS + 1), dtype=np.uint8)
    padded[:, :_TOKEN_CHARS] = encoded
    padded[:, _TOKEN_CHARS] = ord("A")
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
    from catalog.errors import DatasetNotFoundError

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
    from catalog.errors import DatasetNotFoundError

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
    from masking.rules import KEY_KINDS, apply_rule
    from schemas.contract import DEFAULT_LEVEL, ShareLevel, load_contract

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
