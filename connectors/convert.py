"""Conversion of source values to a contract's canonical Arrow schema, with quarantine.

Every connector kind hands raw columns to :func:`to_batch`: Python values as a driver, a
JSON parser or a CSV reader gives them (str, int, float, Decimal, date, datetime, None), or
Arrow arrays. A value that does not convert to its field's type is not an error here: it
becomes null and the row's :data:`~connectors.base.ERRORS_COLUMN` names the field, so the
quality step quarantines that row (rule ``type``) and the rest of the batch goes on.

Clean data stays fast: a whole column goes through Arrow's C converters and casts; the
per-value pass runs only for a column whose fast conversion failed, to find the bad rows.
Drivers differ: SQLite hands back dates and times as text, Oracle returns DATE as datetime,
servers pad CHAR columns, some systems keep codes as numbers; all of that is accepted.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ERRORS_TYPE, batch_schema
from schemas.contract import FieldType

if TYPE_CHECKING:
    from schemas.contract import Contract, ContractField

Column: TypeAlias = "Sequence[object] | pa.Array | pa.ChunkedArray"
"""One raw column: Python values or an Arrow array, in row order."""

_DECIMAL: FieldType | None = getattr(FieldType, "DECIMAL", None)
"""The ``decimal`` field type, when the contract module has it."""

_INT64 = range(-(2**63), 2**63)
_DECIMAL_STEP = decimal.Decimal("0.0001")
"""Scale of the contract's ``decimal`` type (decimal128(20, 4))."""
_DECIMAL_LIMIT = decimal.Decimal(10) ** 16
"""Values of decimal128(20, 4) stay below 10**16 in magnitude."""


def to_batch(
    columns: Sequence[Column],
    contract: Contract,
    *,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> pa.RecordBatch:
    """One record batch in ``batch_schema(contract.arrow_schema())`` from raw columns.

    ``columns`` come in contract field order. ``values`` maps, per field, a source value
    to the contract code (男 -> 1); it is applied before conversion, and a value it does
    not list is kept as is, so the contract's code-list check reports it.
    """
    fields = contract.fields
    if len(columns) != len(fields):
        raise ValueError(f"{len(columns)} columns given for the {len(fields)} fields of {contract.name!r}")
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)} for {contract.name!r}")
    rows = lengths.pop() if lengths else 0
    mappings = values or {}
    arrays: list[pa.Array] = []
    bad: dict[str, list[int]] = {}
    for raw, field in zip(columns, fields, strict=True):
        array, failed = convert_column(raw, field, mappings.get(field.name))
        arrays.append(array)
        if failed:
            bad[field.name] = failed
    arrays.append(errors_column(rows, bad, [f.name for f in fields]))
    return pa.RecordBatch.from_arrays(arrays, schema=batch_schema(contract.arrow_schema()))


def errors_column(rows: int, bad: Mapping[str, Sequence[int]], order: Sequence[str]) -> pa.Array:
    """The ERRORS_COLUMN for ``rows`` rows: per row, the fields listed in ``bad`` (field ->
    row positions) in contract order, or null when every value of the row converted."""
    if not any(bad.values()):
        return pa.nulls(rows, ERRORS_TYPE)
    per_row: list[list[str] | None] = [None] * rows
    for name in order:
        for i in bad.get(name, ()):
            entry = per_row[i]
            if entry is None:
                per_row[i] = [name]
            else:
                entry.append(name)
    return pa.array(per_row, type=ERRORS_TYPE)


def convert_column(
    raw: Column, field: ContractField, mapping: Mapping[str, str] | None = None
) -> tuple[pa.Array, list[int]]:
    """Convert one column to ``field``'s Arrow type; returns it and the positions of values
    that did not convert (now null)."""
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if isinstance(raw, pa.Array):
        if mapping:
            raw = map_codes(as_strings(raw), mapping)
        return _from_arrow(raw, field)
    if mapping:
        raw = _map_values(raw, mapping)
    return _from_python(raw, field)


def as_strings(array: pa.Array) -> pa.Array:
    """An Arrow column as ``string`` (dictionary-decoded, large strings narrowed)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array if array.type == pa.string() else pc.cast(array, pa.string())


def map_codes(strings: pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    """Replace source values by contract codes, vectorised; unlisted values are kept.

    Trailing spaces are dropped first, so a CHAR-padded ``男 `` maps like ``男``.
    """
    trimmed = pc.utf8_rtrim(strings, characters=" ")
    keys = pa.array(list(mapping), type=pa.string())
    codes = pa.array(list(mapping.values()), type=pa.string())
    found = codes.take(pc.index_in(trimmed, value_set=keys))
    return pc.coalesce(found, trimmed)


def from_strings(strings: pa.Array, field: ContractField) -> tuple[pa.Array, list[int]]:
    """A string column (CSV, JSON) in ``field``'s type, vectorised; returns the array and
    the positions that did not convert. An empty or blank text is null for every type but
    ``string``: a file has no other way to say a date or number is missing."""
    return _from_arrow(as_strings(strings), field)


def _from_arrow(array: pa.Array, field: ContractField) -> tuple[pa.Array, list[int]]:
    target = field.type.arrow()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.string())
    if field.type is FieldType.STRING:
        if pa.types.is_string(array.type) or pa.types.is_integer(array.type) or pa.types.is_null(array.type):
            return _rtrim(pc.cast(array, pa.string())), []
        return _from_python(array.to_pylist(), field)
    if pa.types.is_string(array.type):
        blank = pc.equal(pc.utf8_trim_whitespace(array), "")
        if pc.any(blank).as_py():
            array = pc.if_else(blank, pa.scalar(None, pa.string()), array)
        return _cast_parts(array, field, target)
    if array.type == target or pa.types.is_null(array.type):
        return pc.cast(array, target), []
    if pa.types.is_timestamp(array.type) and field.type is FieldType.TIMESTAMP and array.type.tz is not None:
        # Aware instants become naive UTC, as the per-value path does.
        return pc.cast(array, pa.timestamp(array.type.unit)).cast(target), []
    if not pa.types.is_boolean(array.type):
        try:
            return pc.cast(array, target), []
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    return _from_python(array.to_pylist(), field)


SMALLEST_PART = 64
"""Below this many values a failing part of a text column is parsed value by value: a
failed cast costs about as much as parsing that many values in Python."""


_ISO = {FieldType.DATE: "%Y-%m-%d", FieldType.TIMESTAMP: "%Y-%m-%d %H:%M:%S"}
"""The text form of dates and times most sources send, checked without a per-value pass."""


def _cast_parts(array: pa.Array, field: ContractField, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Cast text whole; when that fails, only the values that need it go value by value,
    so clean data and a few bad values keep C speed."""
    cast = _cast_text(array, field.type, target)
    if cast is not None:
        return cast, []
    if field.type in _ISO:
        return _patch_iso(array, field, target)
    return _bisect(array, field, target)


def _patch_iso(array: pa.Array, field: ContractField, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Parse ISO text vectorised and keep a value only if it prints back the same (``strptime``
    alone would roll 30 February over to March); re-parse the rest one by one."""
    form = _ISO[field.type]
    parsed = pc.strptime(array, format=form, unit="s", error_is_null=True)
    if field.type is FieldType.DATE:
        parsed = pc.cast(parsed, pa.date32())
    # Arrow prints date32 and timestamp[s] in exactly these forms, far faster than strftime.
    same = pc.fill_null(pc.equal(pc.cast(parsed, pa.string()), array), False)
    redo = pc.and_(pc.is_valid(array), pc.invert(same))
    result = pc.if_else(same, parsed, pa.scalar(None, parsed.type)).cast(target)
    positions = pc.indices_nonzero(redo)
    if not len(positions):
        return result, []
    converted, bad = _per_value(array.take(positions).to_pylist(), field)
    failed = positions.take(pa.array(bad, pa.int64())).to_pylist() if bad else []
    return pc.replace_with_mask(result, redo, converted), failed


def _bisect(array: pa.Array, field: ContractField, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Halve a failing text column until parts cast or are small enough to go value by value."""
    pieces: list[pa.Array] = []
    failed: list[int] = []
    todo = [(0, len(array))]
    while todo:
        offset, length = todo.pop()
        part = array.slice(offset, length)
        cast = _cast_text(part, field.type, target)
        if cast is not None:
            pieces.append(cast)
        elif length <= SMALLEST_PART:
            converted, bad = _per_value(part.to_pylist(), field)
            pieces.append(converted)
            failed.extend(offset + i for i in bad)
        else:
            half = length // 2
            todo += [(offset + half, length - half), (offset, half)]
    if len(pieces) == 1:
        return pieces[0], failed
    return pa.concat_arrays(pieces), sorted(failed)


def _cast_text(array: pa.Array, kind: FieldType, target: pa.DataType) -> pa.Array | None:
    """Vectorised parse of text; None when some value needs the per-value pass."""
    try:
        return pc.cast(array, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if kind is FieldType.TIMESTAMP:
        try:  # text with a zone offset (+08, +00:00, Z): to UTC, then naive
            return pc.cast(pc.cast(array, pa.timestamp("us", "UTC")), pa.timestamp("us")).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _rtrim(array: pa.Array) -> pa.Array:
    """CHAR(n) comes back space-padded from some servers; trailing spaces never carry
    meaning in codes and names, so they are dropped for every string column."""
    return pc.utf8_rtrim(array, characters=" ")


def _map_values(raw: Sequence[object], mapping: Mapping[str, str]) -> list[object]:
    out: list[object] = []
    for value in raw:
        if isinstance(value, str):
            key = value.rstrip(" ")
            out.append(mapping.get(key, key))
        elif isinstance(value, int) and not isinstance(value, bool):
            out.append(mapping.get(str(value), value))
        else:
            out.append(value)
    return out


def _from_python(values: Sequence[object], field: ContractField) -> tuple[pa.Array, list[int]]:
    kinds = set(map(type, values)) - {type(None)}
    if kinds <= {str} and field.type is not FieldType.STRING and len(values) > SMALLEST_PART:
        return _from_arrow(pa.array(values, type=pa.string()), field)
    target = field.type.arrow()
    accepted = _accepted(field.type)
    if not any(kind is bool or not issubclass(kind, accepted) for kind in kinds):
        try:
            array = _fast(values, kinds, field.type, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            array = None
        if array is not None:
            return (_rtrim(array) if field.type is FieldType.STRING else array), []
    return _per_value(values, field)


def _per_value(values: Sequence[object], field: ContractField) -> tuple[pa.Array, list[int]]:
    """The slow pass: parse each value, null and report those that do not convert."""
    target = field.type.arrow()
    accepted = _accepted(field.type)
    parse = _parser(field.type)
    converted: list[object] = []
    failed: list[int] = []
    for i, value in enumerate(values):
        if value is None:
            converted.append(None)
            continue
        try:
            if type(value) is bool or not isinstance(value, accepted):
                raise TypeError(type(value).__name__)
            converted.append(parse(value))
        except (ValueError, TypeError, OverflowError, ArithmeticError):
            converted.append(None)
            failed.append(i)
    array = pa.array(converted, type=target)
    return (_rtrim(array) if field.type is FieldType.STRING else array), failed


def _fast(
    values: Sequence[object], kinds: set[type], kind: FieldType, target: pa.DataType
) -> pa.Array | None:
    """Whole-column conversion for the common cases, or None to go value by value."""
    if kind is FieldType.STRING:
        return pa.array(values, type=target) if kinds <= {str} else None
    if kind is FieldType.DATE:
        return pa.array(values, type=target) if kinds <= {dt.date, dt.datetime} else None
    if kind is FieldType.TIMESTAMP:
        return pa.array(values, type=target) if kinds <= {dt.datetime} else None
    if kind is _DECIMAL:
        return pa.array(values, type=target) if kinds <= {decimal.Decimal, int} else None
    return pa.array(values, type=target) if kinds <= {int} else None


def _accepted(kind: FieldType) -> tuple[type, ...]:
    """Python types a field type can be read from (``datetime`` is a ``date``); bool never."""
    if kind is FieldType.STRING:
        return (str, int, decimal.Decimal)
    if kind in (FieldType.DATE, FieldType.TIMESTAMP):
        return (dt.date, str)
    if kind is FieldType.INTEGER:
        return (int, decimal.Decimal, float, str)
    return (int, decimal.Decimal, float, str)


def _parse_string(value: object) -> str:
    if isinstance(value, decimal.Decimal):
        if value != value.to_integral_value():
            raise ValueError("not a whole number")
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _parse_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dt.datetime.fromisoformat(text).date()


def _parse_timestamp(value: object) -> dt.datetime | None:
    """Aware values are converted to UTC, as Arrow does for the fast path."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        text = str(value).strip()
        if not text:
            return None
        moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _parse_integer(value: object) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        number = int(text)
    elif isinstance(value, float):
        if not value.is_integer():  # also refuses NaN and infinities
            raise ValueError("not a whole number")
        number = int(value)
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("not a whole number")
        number = int(value)
    else:
        number = int(value)  # type: ignore[call-overload]
    if number not in _INT64:
        raise OverflowError(number)
    return number


def _parse_decimal(value: object) -> decimal.Decimal | None:
    """Exact inputs (text, Decimal, int) must fit the scale; floats, inexact anyway, round."""
    if isinstance(value, float):
        number = decimal.Decimal(repr(value)).quantize(_DECIMAL_STEP, rounding=decimal.ROUND_HALF_EVEN)
    else:
        text = str(value).strip()
        if not text:
            return None
        number = decimal.Decimal(text)
        if not number.is_finite() or number.quantize(_DECIMAL_STEP) != number:
            raise ValueError("more than 4 decimal places")
    if not number.is_finite() or abs(number) >= _DECIMAL_LIMIT:
        raise OverflowError("out of range")
    return number


def _parser(kind: FieldType) -> Callable[[object], object]:
    if kind is FieldType.STRING:
        return _parse_string
    if kind is FieldType.DATE:
        return _parse_date
    if kind is FieldType.TIMESTAMP:
        return _parse_timestamp
    if kind is FieldType.INTEGER:
        return _parse_integer
    if kind is _DECIMAL:
        return _parse_decimal
    raise ValueError(f"no conversion for field type {kind!r}")
