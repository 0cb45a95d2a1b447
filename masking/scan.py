"""Leak scan: find raw identifiers in what consumers receive.

Checks every string (and integer) column of an Arrow table for:

- ``id_number``: a resident identity number (GB 11643) with a valid check character,
  alone or inside longer text;
- ``uscc_individual``: a unified social credit code of an individual business (``92``:
  market regulation, individual business) with a valid check character, which names its
  operator;
- ``mobile``: an unmasked mainland mobile number (``1[3-9]`` and nine more digits);
- ``name``: in a column the contract masks with ``mask_name``, a non-empty value without
  ``*``.

A candidate must not touch other digits (a 20-digit number holds no identity number).
Findings say where (source, column, rule, how many, first row number), never the value.
Tables, Kafka messages (keys and JSON values) and exported files all become Arrow tables
and go through the same vectorised checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import Contract, MaskRule, ShareLevel

ID_PATTERN = r"(?:^|[^0-9])(?P<v>[0-9]{17}[0-9Xx])(?:[^0-9Xx]|$)"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_PATTERN = rf"(?:^|[^0-9A-Z])(?P<v>92[{USCC_ALPHABET}]{{16}})(?:[^0-9A-Z]|$)"
MOBILE_PATTERN = r"(?:^|[^0-9])1[3-9][0-9]{9}(?:[^0-9]|$)"
MAX_CANDIDATES_PER_VALUE = 8
"""Candidates examined per value when earlier ones fail their check: enough for any
realistic free-text field; a value with more is itself worth a look."""
KEY_COLUMN = "_key"
"""Column that holds the Kafka message key when messages are scanned."""

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECKS = np.frombuffer(b"10X98765432", dtype=np.uint8)
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_VALUE = np.full(256, 0, dtype=np.int64)
_USCC_VALUE[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
_USCC_CHARS = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)


@dataclass(frozen=True)
class Finding:
    """One kind of leak in one column of one output."""

    source: str
    column: str
    rule: str
    count: int
    first_row: int

    def __str__(self) -> str:
        return f"{self.source}: column {self.column!r}: {self.count} {self.rule} value(s), first at row {self.first_row}"


def name_columns(contract: Contract, level: ShareLevel | str = ShareLevel.CONDITIONAL) -> tuple[str, ...]:
    """Published columns the contract masks with ``mask_name`` at ``level``."""
    return tuple(f.published_name for f in contract.fields if f.mask.at(level).rule is MaskRule.MASK_NAME)


def scan_table(table: pa.Table, *, source: str, names: Sequence[str] = ()) -> list[Finding]:
    """Every leak in ``table``; ``names`` are the columns that must hold masked names."""
    findings: list[Finding] = []
    for column_name in table.column_names:
        column = table.column(column_name)
        if pa.types.is_integer(column.type):
            column = pc.cast(column, pa.string())
        if pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        if not pa.types.is_string(column.type):
            continue
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        hits = {
            "id_number": _checked(values, ID_PATTERN, _valid_ids),
            "uscc_individual": _checked(values, USCC_PATTERN, _valid_usccs),
            "mobile": pc.fill_null(pc.match_substring_regex(values, MOBILE_PATTERN), False),
        }
        if column_name in names:
            present = pc.and_(pc.is_valid(values), pc.not_equal(values, ""))
            unmasked = pc.invert(pc.match_substring(values, "*"))
            hits["name"] = pc.fill_null(pc.and_(present, unmasked), False)
        for rule, hit in hits.items():
            count = pc.sum(hit).as_py() or 0
            if count:
                first = pc.indices_nonzero(hit)[0].as_py()
                findings.append(Finding(source, column_name, rule, count, first))
    return findings


def scan_messages(
    messages: Iterable[tuple[str, dict[str, Any], dict[str, str]]], *, source: str, names: Sequence[str] = ()
) -> list[Finding]:
    """Leaks in Kafka messages as :func:`catalog.deliveries.publish.read_messages` returns them."""
    rows = [{KEY_COLUMN: key, **value} for key, value, _headers in messages]
    if not rows:
        return []
    return scan_table(_records_table(rows), source=source, names=names)


def scan_file(path: Path, *, names: Sequence[str] = ()) -> list[Finding]:
    """Leaks in an exported file: Parquet, CSV (every column read as text) or JSON (lines or array)."""
    return scan_table(read_export(path), source=str(path), names=names)


def read_export(path: Path) -> pa.Table:
    """An export as a table; an unknown format is read as lines of text in one column."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        names = pcsv.read_csv(path, read_options=pcsv.ReadOptions(skip_rows_after_names=0)).column_names
        types = dict.fromkeys(names, pa.string())
        return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types))
    text = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".json", ".jsonl", ".ndjson"):
        try:
            loaded = json.loads(text)
            records = loaded if isinstance(loaded, list) else [loaded]
        except json.JSONDecodeError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        if all(isinstance(r, dict) for r in records):
            return _records_table(records)
    return pa.table({"line": pa.array(text.splitlines(), type=pa.string())})


def _records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records as text columns; every key of every record is a column (absent: null)."""
    names = list(dict.fromkeys(k for record in records for k in record))
    return pa.table(
        {n: pa.array([_text(record.get(n)) for record in records], type=pa.string()) for n in names}
    )


def _text(value: Any) -> str | None:
    """JSON values as text: nested objects are scanned as their JSON, numbers as digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _checked(values: pa.Array, pattern: str, valid: Any) -> pa.Array:
    """Rows holding a candidate that passes ``valid``; later candidates tried if earlier fail."""
    found = np.zeros(len(values), dtype=bool)
    remaining = values
    for _ in range(MAX_CANDIDATES_PER_VALUE):
        candidate = pc.struct_field(pc.extract_regex(remaining, pattern), [0])
        has = pc.fill_null(pc.is_valid(candidate), False).to_numpy(zero_copy_only=False)
        if not has.any():
            break
        rows = np.flatnonzero(has & ~found)
        if len(rows):
            picked = pc.utf8_upper(pc.take(candidate, pa.array(rows)))
            found[rows[valid(picked)]] = True
        # Drop the text up to the candidate just examined and look again.
        remaining = pc.replace_substring_regex(
            remaining, pattern=rf"^.*?{pattern}", replacement="", max_replacements=1
        )
    return pa.array(found)


def _fixed(values: pa.Array, width: int) -> np.ndarray:
    """ASCII strings of one width as an (n, width) byte matrix."""
    values = pa.array(values.to_pylist(), type=pa.string()) if values.offset else values
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[: len(values) + 1]
    return data[offsets[0] : offsets[-1]].reshape(len(values), width)


def _valid_ids(values: pa.Array) -> np.ndarray:
    """Candidates that are real identity numbers: check digit, a real birth date and a known
    division code. The check digit alone matches one in eleven all-digit codes of other kinds
    (credit codes of government bodies, certificate serials), which are not personal data."""
    from datetime import date

    from quality.checks import gb11643

    grid = _fixed(values, 18)
    digits = grid[:, :17].astype(np.int64) - ord("0")
    checked = np.asarray(_ID_CHECKS[(digits @ _ID_WEIGHTS) % 11] == grid[:, 17])
    return checked & np.asarray(gb11643(values, date.today()), dtype=bool)


def _valid_usccs(values: pa.Array) -> np.ndarray:
    grid = _fixed(values, 18)
    numbers = _USCC_VALUE[grid[:, :17]]
    return np.asarray(_USCC_CHARS[(31 - (numbers @ _USCC_WEIGHTS) % 31) % 31] == grid[:, 17])
