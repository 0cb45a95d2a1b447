"""The verification index (核验) the pipeline keeps beside each shared table: per registered
record its keyed token and a keyed digest of its normalised name, never a raw value. Staged
by the masking step from the raw values, registered with the batch into
``internal.<dataset>_verify``; :mod:`catalog.access.verification` answers from it."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from masking.rules import token
from masking.token_map import token_mapping

if TYPE_CHECKING:
    from catalog.tables.iceberg import SharedTables
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


TOKEN_CHARS = 43  # unpadded url-safe base64 of a 32-byte HMAC


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
    return f"{dataset}_verify"


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
    """Upsert a batch's staged index rows into ``internal.<dataset>_verify`` in one commit.

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
