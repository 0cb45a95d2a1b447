"""SQL connector: stream one table of a department database as Arrow record batches.

Any database SQLAlchemy has a dialect for works the same way (PostgreSQL, MySQL/MariaDB,
SQLite, Oracle/DM). Rows are read through a server-side cursor in key order, ``chunk_rows``
at a time, and each chunk becomes one record batch in exactly the contract's canonical
schema, so memory stays flat whatever the size of the source.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from connectors.errors import (
    SourceConfigError,
    SourceDataError,
    SourceSchemaError,
    SourceUnreachableError,
)
from hub.errors import redact_url
from schemas.contract import Contract, ContractField, FieldType

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
"""Fail fast on an unreachable server so the scheduler's retry, not a hung task, takes over."""
_SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})


def source_engine(source: str, url: str) -> sa.Engine:
    """An engine for ``url``; a malformed URL or a missing driver is a configuration error."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SourceConfigError(f"source {source!r}: {redact_url(url)} is not a database URL") from None
    connect_args = (
        {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() in _SERVER_BACKENDS else {}
    )
    try:
        return sa.create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceConfigError(
            f"source {source!r}: no database driver for {redact_url(url)} ({exc})"
        ) from None


def driver_reason(exc: BaseException, url: sa.URL) -> str:
    """First line of the driver's message, with the password removed should it appear."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


@contextmanager
def connect(source: str, url: str, engine: sa.Engine, *, must_exist: bool = True) -> Iterator[sa.Connection]:
    """A connection, or :class:`SourceUnreachableError` naming the source and redacted URL.

    SQLite creates a missing file on connect; a source must already exist (``must_exist``),
    or a mistyped path would read as an empty table instead of failing.
    """
    database = engine.url.database
    if (
        must_exist
        and engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).exists()
    ):
        raise SourceUnreachableError(source, url, f"database file {database} does not exist")
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise SourceUnreachableError(source, url, driver_reason(exc, engine.url)) from exc
    with conn:
        yield conn


class SqlConnector:
    """Reads one table of a department database in the canonical schema of its contract."""

    def __init__(
        self,
        source: str,
        url: str,
        table: str,
        contract: Contract,
        *,
        columns: Mapping[str, str] | None = None,
        chunk_rows: int = 50_000,
    ) -> None:
        """``columns`` maps contract field -> source column; unmapped fields read the column
        of the same name. ``table`` may be schema-qualified (``schema.table``)."""
        mapping = dict(columns or {})
        known = [f.name for f in contract.fields]
        unknown = sorted(set(mapping) - set(known))
        if unknown:
            raise SourceConfigError(
                f"source {source!r}: column mapping names field(s) {', '.join(unknown)} "
                f"that contract {contract.name!r} does not have"
            )
        if chunk_rows < 1:
            raise SourceConfigError(f"source {source!r}: chunk_rows must be positive, got {chunk_rows}")
        self.source = source
        self.url = url
        self.table = table
        self.contract = contract
        self.columns: dict[str, str] = {name: mapping.get(name, name) for name in known}
        self.chunk_rows = chunk_rows
        schema, _, name = table.rpartition(".")
        self._schema = schema or None
        self._name = name
        self._engine: sa.Engine | None = None

    def __repr__(self) -> str:
        return f"SqlConnector(source={self.source!r}, url={redact_url(self.url)!r}, table={self.table!r})"

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = source_engine(self.source, self.url)
        return self._engine

    def close(self) -> None:
        """Release pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        with connect(self.source, self.url, self.engine) as conn:
            yield conn

    def check(self) -> None:
        """Verify the source is reachable and has the table and every mapped column."""
        with self._connect() as conn:
            self._check(conn)

    def _check(self, conn: sa.Connection) -> None:
        inspector = sa.inspect(conn)
        if not inspector.has_table(self._name, schema=self._schema):
            raise SourceSchemaError(self.source, self.table, (), detail="the table does not exist")
        present = {c["name"] for c in inspector.get_columns(self._name, schema=self._schema)}
        missing = [
            column if column == field else f"{column} (for field {field})"
            for field, column in self.columns.items()
            if column not in present
        ]
        if missing:
            raise SourceSchemaError(self.source, self.table, missing)
        extra = sorted(present - set(self.columns.values()))
        if extra:
            logger.warning(
                "source %r, table %r: column(s) %s are not in contract %r and are not read",
                self.source,
                self.table,
                ", ".join(extra),
                self.contract.name,
            )

    def _selectable(self) -> sa.TableClause:
        return sa.table(self._name, *(sa.column(c) for c in self.columns.values()), schema=self._schema)

    def count(self) -> int:
        """Number of rows in the source table, for progress reporting."""
        with self._connect() as conn:
            self._check(conn)
            query = sa.select(sa.func.count()).select_from(self._selectable())
            return int(conn.execute(query).scalar_one())

    def iter_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the table in key order as record batches of at most ``chunk_rows`` rows."""
        schema = self.contract.arrow_schema()
        source_table = self._selectable()
        query = sa.select(*source_table.columns).order_by(
            *(source_table.c[self.columns[key]] for key in self.contract.keys)
        )
        with self._connect() as conn:
            self._check(conn)
            streaming = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
            done = 0
            try:
                for part in streaming.execute(query).partitions():
                    yield self._to_batch(part, done, schema)
                    done += len(part)
            except OperationalError as exc:
                raise SourceUnreachableError(
                    self.source, self.url, f"lost after {done} rows: {driver_reason(exc, self.engine.url)}"
                ) from exc

    def _to_batch(self, rows: Sequence[sa.Row], first_row: int, schema: pa.Schema) -> pa.RecordBatch:
        values = list(zip(*rows, strict=True)) if rows else [() for _ in self.columns]
        arrays = [
            to_array(column, field, source=self.source, first_row=first_row)
            for column, field in zip(values, self.contract.fields, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


# Conversion of driver values to the contract's Arrow types. Drivers differ: SQLite hands
# back dates and times as text, Oracle returns DATE as datetime, servers pad CHAR columns,
# some systems keep codes as numbers. Whole columns go through Arrow's C converters when
# their Python types allow it; a per-value pass runs only to find and name a bad row.

_ACCEPTED: dict[FieldType, tuple[type, ...]] = {
    FieldType.STRING: (str, int),
    FieldType.DATE: (dt.date, str),
    FieldType.TIMESTAMP: (dt.date, str),
    FieldType.INTEGER: (int, decimal.Decimal, str),
}
"""Python types each field type can be read from (``datetime`` is a ``date``); bool never."""
_INT64 = range(-(2**63), 2**63)


def to_array(values: Sequence[object], field: ContractField, *, source: str, first_row: int) -> pa.Array:
    """Convert one column of a chunk; ``first_row`` (0-based) numbers rows in the error."""
    kinds = set(map(type, values)) - {type(None)}
    accepted = _ACCEPTED[field.type]
    if any(kind is bool or not issubclass(kind, accepted) for kind in kinds):
        for i, value in enumerate(values):
            if value is not None and (type(value) is bool or not isinstance(value, accepted)):
                raise SourceDataError(
                    source, first_row + i + 1, field.name, type(value).__name__, field.type.value
                )
    target = field.type.arrow()
    try:
        array = _fast(values, kinds, field.type, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        array = None
    if array is None:
        parse = _PARSERS[field.type]
        converted = []
        for i, value in enumerate(values):
            try:
                converted.append(None if value is None else parse(value))
            except (ValueError, OverflowError):
                raise SourceDataError(
                    source, first_row + i + 1, field.name, type(value).__name__, field.type.value
                ) from None
        array = pa.array(converted, type=target)
    if field.type is FieldType.STRING:
        # CHAR(n) comes back space-padded from some servers; trailing spaces never carry
        # meaning in codes and names, so they are dropped for every string column.
        array = pc.utf8_rtrim(array, characters=" ")
    return array


def _fast(
    values: Sequence[object], kinds: set[type], kind: FieldType, target: pa.DataType
) -> pa.Array | None:
    """Whole-column conversion for the common cases, or None to fall back to per value."""
    if kind is FieldType.STRING:
        return pa.array(values, type=target) if kinds <= {str} else None
    if kinds <= {str}:
        return pa.array(values, type=pa.string()).cast(target)
    if kind is FieldType.DATE:
        return pa.array(values, type=target)
    if kind is FieldType.TIMESTAMP:
        return pa.array(values, type=target) if kinds <= {dt.datetime} else None
    return pa.array(values, type=target) if kinds <= {int} else None


def _parse_string(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _parse_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dt.datetime.fromisoformat(text).date()


def _parse_timestamp(value: object) -> dt.datetime:
    """Aware values are converted to UTC, as Arrow does for the fast path."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        moment = dt.datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _parse_integer(value: object) -> int:
    if isinstance(value, decimal.Decimal) and value != value.to_integral_value():
        raise ValueError("not a whole number")
    number = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    if number not in _INT64:
        raise OverflowError(number)
    return number


_PARSERS: dict[FieldType, Callable[[object], object]] = {
    FieldType.STRING: _parse_string,
    FieldType.DATE: _parse_date,
    FieldType.TIMESTAMP: _parse_timestamp,
    FieldType.INTEGER: _parse_integer,
}
