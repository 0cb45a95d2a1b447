"""SQL connector: stream one table of a department database as Arrow record batches.

Any database SQLAlchemy has a dialect for works the same way (PostgreSQL, MySQL/MariaDB,
SQLite, Oracle/DM): rows come through a server-side cursor, ``chunk_rows`` at a time, and
each chunk becomes one record batch in the contract's canonical schema plus the
conversion-errors column (see :mod:`connectors.base`), so memory stays flat whatever the
size of the source. PostgreSQL through psycopg 3 takes a faster road with the same
result: ``COPY (SELECT ...) TO STDOUT`` in CSV, parsed by Arrow's streaming CSV reader
into string columns that :mod:`connectors.convert` casts whole (:func:`copy_chunks`).

Incremental reads select ``cursor > since`` ordered by cursor then key; full reads take
the table in the server's own order (see :meth:`SqlConnector.query`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from connectors.base import ERRORS_COLUMN
from connectors.convert import to_batch
from connectors.errors import (
    SourceConfigError,
    SourceDataError,
    SourceQueryError,
    SourceSchemaError,
    SourceUnreachableError,
)
from hub.errors import ConfigurationError, redact_url
from schemas.contract import Contract, FieldType

if TYPE_CHECKING:
    from connectors.config import SourceConfig

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
"""Fail fast on an unreachable server so the scheduler's retry, not a hung task, takes over."""
DEFAULT_CHUNK_ROWS = 50_000
"""Same as the connector settings' default: amortises per-chunk costs, small in memory."""
_SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})
_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
"""URLs without a driver get the one the hub ships: psycopg 3 (which the COPY road needs) and
PyMySQL; SQLAlchemy's own defaults (psycopg2, mysqlclient) are not installed."""
_SA_TYPES: dict[str, type[sa.types.TypeEngine[Any]]] = {
    FieldType.STRING.value: sa.String,
    FieldType.DATE.value: sa.Date,
    FieldType.TIMESTAMP.value: sa.DateTime,
    FieldType.INTEGER.value: sa.BigInteger,
    "decimal": sa.Numeric,
}


def source_engine(source: str, url: str) -> sa.Engine:
    """An engine for ``url``; a malformed URL or a missing driver is a configuration error."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SourceConfigError(f"source {source!r}: {redact_url(url)} is not a database URL") from None
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
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


def source_url(source: SourceConfig, env: Mapping[str, str] | None = None) -> str:
    """The database URL of a SQL source (see :func:`connectors.config.resolve_url`), with
    every failure a configuration error naming the source. ``env`` defaults to the process
    environment plus ``HUB_HOME``."""
    from connectors.config import resolve_url

    config = source.connector
    if config.kind != "sql":
        raise SourceConfigError(f"source {source.name!r} is a {config.kind} source, not sql")
    if env is None:
        from hub.settings import get_settings

        env = get_settings().source_env()
    try:
        return resolve_url(config, env)
    except ConfigurationError as exc:
        raise SourceConfigError(f"source {source.name!r}: {exc}") from None
    except ImportError:
        raise SourceConfigError(
            f"source {source.name!r}: names Airflow connection {config.airflow_connection!r} "
            "but Airflow is not installed"
        ) from None
    except Exception as exc:  # Airflow's not-found and secrets-backend errors have no common base
        if not config.airflow_connection:
            raise
        raise SourceConfigError(
            f"source {source.name!r}: Airflow connection {config.airflow_connection!r} "
            f"cannot be read ({type(exc).__name__})"
        ) from None


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
        values: Mapping[str, Mapping[str, str]] | None = None,
        cursor: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        """``columns`` maps contract field -> source column; unmapped fields read the column
        of the same name. ``table`` may be schema-qualified (``schema.table``). ``values``
        maps per field source value -> contract code; ``cursor`` is the contract field
        whose growth marks new or changed records."""
        mapping = dict(columns or {})
        known = [f.name for f in contract.fields]
        named = set(mapping) | set(values or {}) | ({cursor} if cursor else set())
        unknown = sorted(named - set(known))
        if unknown:
            raise SourceConfigError(
                f"source {source!r}: configuration names field(s) {', '.join(unknown)} "
                f"that contract {contract.name!r} does not have"
            )
        if chunk_rows < 1:
            raise SourceConfigError(f"source {source!r}: chunk_rows must be positive, got {chunk_rows}")
        self.source = source
        self.url = url
        self.table = table
        self.contract = contract
        self.columns: dict[str, str] = {name: mapping.get(name, name) for name in known}
        self.values = {k: dict(v) for k, v in (values or {}).items()}
        self.cursor = cursor
        self.chunk_rows = chunk_rows
        schema, _, name = table.rpartition(".")
        self._schema = schema or None
        self._name = name
        self._engine: sa.Engine | None = None
        self._since: str | None = None
        self._greatest: object = None

    @classmethod
    def from_source(
        cls, source: SourceConfig, *, chunk_rows: int, env: Mapping[str, str] | None = None
    ) -> SqlConnector:
        """A connector for a loaded source file; the file's own ``chunk_rows`` wins over the
        setting passed in, since the department knows its rows' width."""
        config = source.connector
        if config.kind != "sql":
            raise SourceConfigError(f"source {source.name!r} is a {config.kind} source, not sql")
        return cls(
            source.name,
            source_url(source, env),
            config.table,
            source.contract,
            columns=source.columns,
            values=source.values,
            cursor=source.cursor,
            chunk_rows=source.chunk_rows or chunk_rows,
        )

    def __repr__(self) -> str:
        return f"SqlConnector(source={self.source!r}, url={redact_url(self.url)!r}, table={self.table!r})"

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = source_engine(self.source, self.url)
        return self._engine

    @property
    def watermark(self) -> str | None:
        """The greatest cursor value read (ISO text for dates and times), else ``since``."""
        if self._greatest is None:
            return self._since
        value = self._greatest
        return value.isoformat() if isinstance(value, dt.date) else str(value)

    def checkpoint(self) -> dict[str, Any] | None:
        """Nothing for ``commit``: the watermark alone marks what was read."""
        return None

    def commit(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Nothing to archive: a database keeps its rows; the watermark marks progress."""

    def close(self) -> None:
        """Release pooled connections; safe to call more than once."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        with connect(self.source, self.url, self.engine) as conn:
            if conn.dialect.name == "postgresql":
                # Timestamps with a zone are compared and printed in UTC, as the hub keeps them.
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
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
                "source %r, table %r: new column(s) %s are not in contract %r and are not read",
                self.source,
                self.table,
                ", ".join(extra),
                self.contract.name,
            )

    def _selectable(self) -> sa.TableClause:
        """Untyped columns: drivers' values go to :mod:`connectors.convert` unprocessed (a
        typed SQLite column would raise on the first impossible date)."""
        return sa.table(self._name, *(sa.column(c) for c in self.columns.values()), schema=self._schema)

    def query(self, since: str | None = None) -> sa.Select[Any]:
        """The SELECT one read runs: contract fields in order; with ``since``, only rows with
        ``cursor > since`` ordered by cursor then key. A full read is left unordered: it
        is the whole table either way, and sorting millions of rows on the department's
        server would cost about as much as sending them."""
        table = self._selectable()
        query = sa.select(*table.columns)
        keys = [table.c[self.columns[k]] for k in self.contract.keys]
        if self.cursor is None or since is None:
            return query
        cursor = table.c[self.columns[self.cursor]]
        kind = _SA_TYPES.get(self.contract.field(self.cursor).type.value, sa.String)
        query = query.where(cursor > sa.bindparam("since", self._parse_since(since), type_=kind()))
        return query.order_by(cursor, *keys)

    def _parse_since(self, since: str) -> object:
        assert self.cursor is not None
        kind = self.contract.field(self.cursor).type
        try:
            if kind is FieldType.TIMESTAMP:
                moment = dt.datetime.fromisoformat(since)
                if moment.tzinfo is not None:
                    moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
                return moment
            if kind is FieldType.DATE:
                return dt.date.fromisoformat(since)
            if kind is FieldType.INTEGER:
                return int(since)
            if kind.value == "decimal":
                return decimal.Decimal(since)
        except (ValueError, ArithmeticError):
            raise SourceConfigError(
                f"source {self.source!r}: watermark is not a {kind.value} as cursor {self.cursor!r} needs"
            ) from None
        return since

    def count(self) -> int:
        """Number of rows in the source table, for progress reporting."""
        with self._connect() as conn:
            self._check(conn)
            query = sa.select(sa.func.count()).select_from(self._selectable())
            return int(conn.execute(query).scalar_one())

    def read(self, *, since: str | None = None) -> Iterator[pa.RecordBatch]:
        """Records changed after ``since`` (all when None or without a cursor), in chunks of
        ``chunk_rows`` in ``batch_schema(contract.arrow_schema())``."""
        self._since = since if self.cursor is not None else None
        self._greatest = None
        query = self.query(self._since)
        with self._connect() as conn:
            self._check(conn)
            if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
                chunks: Iterator[Sequence[Any]] = self._copy(conn, query)
            else:
                chunks = self._rows(conn, query)
            for columns in chunks:
                batch = to_batch(columns, self.contract, values=self.values)
                self._note(batch)
                yield batch

    def _copy(self, conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
        import psycopg

        try:
            yield from copy_chunks(conn, query, self.chunk_rows)
        except psycopg.OperationalError as exc:
            raise SourceUnreachableError(self.source, self.url, driver_reason(exc, self.engine.url)) from exc
        except psycopg.Error as exc:
            raise SourceQueryError(self.source, self.table, driver_reason(exc, self.engine.url)) from exc

    def _rows(self, conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
        """Columns of each chunk through a server-side cursor (any SQLAlchemy dialect)."""
        streaming = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
        done = 0
        try:
            for part in streaming.execute(query).partitions():
                yield [list(c) for c in zip(*part, strict=True)]
                done += len(part)
        except OperationalError as exc:
            raise SourceUnreachableError(
                self.source, self.url, f"lost after {done} rows: {driver_reason(exc, self.engine.url)}"
            ) from exc
        except DBAPIError as exc:
            raise SourceQueryError(self.source, self.table, driver_reason(exc, self.engine.url)) from exc

    def _note(self, batch: pa.RecordBatch) -> None:
        """Track the greatest cursor value; unconverted (null) cursors do not count."""
        if self.cursor is None or batch.num_rows == 0:
            return
        top = pc.max(batch.column(self.cursor)).as_py()
        if top is not None and (self._greatest is None or top > self._greatest):
            self._greatest = top
        flagged = batch.num_rows - batch.column(ERRORS_COLUMN).null_count
        if flagged:
            logger.warning(
                "source %r, table %r: %d row(s) of a chunk have values that do not convert; "
                "they go to quarantine",
                self.source,
                self.table,
                flagged,
            )

    def iter_batches(self) -> Iterator[pa.RecordBatch]:
        """Every record in the contract's schema without the errors column, failing on the
        first value that does not convert: for callers that cannot quarantine yet."""
        done = 0
        for batch in self.read(since=None):
            errors = batch.column(ERRORS_COLUMN)
            if errors.null_count < batch.num_rows:
                row = pc.index(pc.is_valid(errors), True).as_py()
                field = errors[row].as_py()[0]
                raise SourceDataError(
                    self.source, done + row + 1, field, None, self.contract.field(field).type.value
                )
            done += batch.num_rows
            yield batch.drop_columns([ERRORS_COLUMN])


COPY_BLOCK_BYTES = 1 << 20
"""CSV bytes Arrow parses at a time: about 7,000 population rows, small beside a chunk."""


class _CopyStream:
    """A read-only file over a running ``COPY ... TO STDOUT``, for Arrow's CSV reader.

    psycopg hands the data over a row at a time; Arrow wants large blocks, so rows are
    gathered into blocks of about :data:`COPY_BLOCK_BYTES`. (Receiving in a thread while
    Arrow parses was tried: the per-row Python work then fights the parser and the
    conversion for the interpreter lock and the whole is no faster.) A driver error met
    while receiving is kept in :attr:`error`, since Arrow reports it as its own.
    """

    def __init__(self, copy: Any) -> None:
        self._rows = iter(copy)
        self._rest = b""
        self._eof = False
        self.error: BaseException | None = None
        self.closed = False

    def _next(self) -> bytes:
        if self._eof:
            return b""
        buffer = bytearray()
        try:
            for row in self._rows:
                buffer += row
                if len(buffer) >= COPY_BLOCK_BYTES:
                    return bytes(buffer)
        except BaseException as exc:
            self.error = exc
            raise
        self._eof = True
        return bytes(buffer)

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            block = self._next()
            if not block:
                break
            self._rest = self._rest + block if self._rest else block
        if size < 0 or size >= len(self._rest):
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data

    def at_end(self) -> bool:
        """True when COPY sent nothing at all (Arrow refuses an empty CSV)."""
        if not self._rest:
            self._rest = self._next()
        return not self._rest

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def copy_chunks(conn: sa.Connection, query: sa.Select[Any], chunk_rows: int) -> Iterator[Sequence[pa.Array]]:
    """Run ``query`` as ``COPY (...) TO STDOUT`` in CSV on a psycopg 3 connection and yield
    its columns as string arrays, ``chunk_rows`` rows at a time.

    Every column is read as text and converted by :func:`connectors.convert.to_batch`, so a
    value that does not convert flags its row instead of failing the whole block. NULL is
    an unquoted empty field, an empty string a quoted one, as PostgreSQL writes them.
    """
    compiled = query.compile(dialect=conn.dialect)
    names = [f"c{i}" for i in range(len(query.selected_columns))]
    conn.exec_driver_sql("SET DateStyle TO 'ISO, YMD'")
    driver = conn.connection.driver_connection
    assert driver is not None
    read_options = pa_csv.ReadOptions(column_names=names, block_size=COPY_BLOCK_BYTES, use_threads=False)
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with driver.cursor() as cursor:
        statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)"
        with cursor.copy(statement, compiled.params or None) as copy:
            stream = _CopyStream(copy)
            try:
                if stream.at_end():
                    return
                reader = pa_csv.open_csv(
                    stream,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                yield from _rebatch(reader, chunk_rows)
            except pa.ArrowException:
                if stream.error is not None:  # the driver's error, not the parser's
                    raise stream.error from None
                raise


def _rebatch(reader: pa.RecordBatchReader, chunk_rows: int) -> Iterator[Sequence[pa.Array]]:
    """Columns of exactly ``chunk_rows`` rows (the last chunk: the rest) from the parser's
    batches, whose sizes follow the CSV block size instead."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        if held < chunk_rows:
            continue
        whole = pa.concat_batches(pending)
        start = 0
        while held - start >= chunk_rows:
            yield whole.slice(start, chunk_rows).columns
            start += chunk_rows
        pending, held = [whole.slice(start)], held - start
    if held:
        yield pa.concat_batches(pending).columns
