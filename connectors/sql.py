"""SQL connector: stream one table of a department database as Arrow record batches.

Any database SQLAlchemy has a dialect for works the same way (PostgreSQL, MySQL/MariaDB,
SQLite, Oracle/DM): rows come through a server-side cursor, ``chunk_rows`` at a time, and
each chunk becomes one record batch in the contract's canonical schema plus the
conversion-errors column (see :mod:`connectors.base`), so memory stays flat whatever the
size of the source. PostgreSQL takes a faster road with the same result: ADBC's libpq
driver runs the SELECT as a binary ``COPY ... TO STDOUT`` and decodes it into Arrow record
batches in C++, which :mod:`connectors.convert` casts whole (:func:`adbc_chunks`).

Incremental reads select ``cursor > since`` ordered by cursor then key; full reads take
the table in the server's own order (see :meth:`SqlConnector.query`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
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
from schemas.contract import Contract, FieldType
from schemas.errors import redact_url

if TYPE_CHECKING:
    from connectors.config import SourceConfig

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
"""Fail fast on an unreachable server so the scheduler's retry, not a hung task, takes over."""
DEFAULT_CHUNK_ROWS = 50_000
"""Same as the connector settings' default: amortises per-chunk costs, small in memory."""
_SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})
_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
"""URLs without a driver get the one the hub ships: psycopg 3 (for the schema check and
counts; PostgreSQL rows come through ADBC) and PyMySQL; SQLAlchemy's own defaults
(psycopg2, mysqlclient) are not installed."""
ADBC_BATCH_BYTES = 4 << 20
"""Size ADBC aims its record batches at (its default is 16 MiB): a few batches make one
chunk of population rows; measured as fast as the default, with a peak about 40 MiB lower."""
WATERMARK_SETTING = "hub.watermark"
"""Session setting that carries the watermark of an incremental PostgreSQL read to the
server. ADBC runs a query with bound parameters without COPY and holds its whole result in
memory, so the query itself has none: the watermark is bound to ``set_config`` first and
the query reads it back with ``current_setting`` (never spliced into the SQL text)."""
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
    """The database URL of a SQL source (see :func:`connectors.config.resolve_url`); ``env``
    defaults to the process environment (the hub passes its settings' source environment)."""
    from connectors.config import resolve_url

    config = source.connector
    if config.kind != "sql":
        raise SourceConfigError(f"source {source.name!r} is a {config.kind} source, not sql")
    if env is None:
        env = os.environ
    return resolve_url(config, env, source=source.name)


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

    def check(self) -> None:
        """Verify the source is reachable and has the table and every mapped column."""
        with connect(self.source, self.url, self.engine) as conn:
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

    def query(self, since: str | None = None, *, setting: str | None = None) -> sa.Select[Any]:
        """The SELECT one read runs: contract fields in order; with ``since``, only rows with
        ``cursor > since`` ordered by cursor then key. A full read is left unordered: it
        is the whole table either way, and sorting millions of rows on the department's
        server would cost about as much as sending them.

        ``since`` is a bound parameter, or with ``setting`` the server-side session setting
        of that name, cast to the cursor's type (see :data:`WATERMARK_SETTING`)."""
        table = self._selectable()
        query = sa.select(*table.columns)
        keys = [table.c[self.columns[k]] for k in self.contract.keys]
        if self.cursor is None or since is None:
            return query
        cursor = table.c[self.columns[self.cursor]]
        kind = _SA_TYPES.get(self.contract.field(self.cursor).type.value, sa.String)
        value = self._parse_since(since)
        if setting is None:
            bound: sa.ColumnElement[Any] = sa.bindparam("since", value, type_=kind())
        else:
            bound = sa.cast(sa.func.current_setting(sa.literal_column(f"'{setting}'")), kind())
        return query.where(cursor > bound).order_by(cursor, *keys)

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
        with connect(self.source, self.url, self.engine) as conn:
            self._check(conn)
            query = sa.select(sa.func.count()).select_from(self._selectable())
            return int(conn.execute(query).scalar_one())

    def read(self, *, since: str | None = None) -> Iterator[pa.RecordBatch]:
        """Records changed after ``since`` (all when None or without a cursor), in chunks of
        ``chunk_rows`` in ``batch_schema(contract.arrow_schema())``."""
        self._since = since if self.cursor is not None else None
        self._greatest = None
        if self.engine.dialect.name == "postgresql":
            chunks = self._adbc()
        else:
            chunks = self._rows(self.query(self._since))
        for columns in chunks:
            batch = to_batch(columns, self.contract, values=self.values)
            self._note(batch)
            yield batch

    def _adbc(self) -> Iterator[Sequence[pa.Array]]:
        """PostgreSQL: check the table through SQLAlchemy, then stream it through ADBC."""
        query = self.query(self._since, setting=WATERMARK_SETTING)
        watermark = None if self._since is None else _setting_text(self._parse_since(self._since))
        self.check()
        yield from adbc_chunks(
            self.source, self.url, query, self.chunk_rows, watermark=watermark, table=self.table
        )

    def _rows(self, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
        """Columns of each chunk through a server-side cursor (any SQLAlchemy dialect)."""
        done = 0
        with connect(self.source, self.url, self.engine) as conn:
            self._check(conn)
            streaming = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
            try:
                for part in streaming.execute(query).partitions():
                    yield [list(c) for c in zip(*part, strict=True)]
                    done += len(part)
            except OperationalError as exc:
                reason = f"lost after {done} rows: {driver_reason(exc, self.engine.url)}"
                raise SourceUnreachableError(self.source, self.url, reason) from exc
            except DBAPIError as exc:
                reason = driver_reason(exc, self.engine.url)
                raise SourceQueryError(self.source, self.table, reason) from exc

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


def _setting_text(value: object) -> str:
    """A parsed watermark as PostgreSQL reads it back from a setting with ``::type``."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def adbc_uri(url: sa.URL) -> str:
    """The libpq URI ADBC connects with: the SQLAlchemy URL without its driver name, with a
    connect timeout (:data:`CONNECT_TIMEOUT_S`) unless the URL sets one. Parameters are
    percent-encoded: libpq reads a ``+`` (SQLAlchemy's space) literally."""
    query = {"connect_timeout": str(CONNECT_TIMEOUT_S), **url.query}
    base = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return f"{base}?{urlencode(query, doseq=True, quote_via=quote)}"


def adbc_chunks(
    source: str,
    url: str,
    query: sa.Select[Any],
    chunk_rows: int,
    *,
    table: str,
    watermark: str | None = None,
) -> Iterator[Sequence[pa.Array]]:
    """Run ``query`` on PostgreSQL through ADBC and yield its columns ``chunk_rows`` rows at
    a time, as Arrow arrays in the driver's types (``numeric`` and other types Arrow lacks
    come as text). ``query`` must have no bound parameters: ADBC would then skip COPY and
    hold the whole result; ``watermark`` goes to :data:`WATERMARK_SETTING` instead.

    The session's time zone is UTC, as the hub keeps times, so a ``timestamptz`` cursor
    compares with the naive UTC watermark as intended. Failing to connect or losing the
    server mid-stream is :class:`SourceUnreachableError` (naming the rows already read);
    a refused statement is :class:`SourceQueryError`.
    """
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc_pg
    from adbc_driver_postgresql import StatementOptions as adbc_pg_options

    compiled = query.compile(dialect=postgresql.dialect())
    if compiled.params:
        raise ValueError("an ADBC read takes no bound parameters: pass the watermark instead")
    setup = "SELECT set_config('TimeZone', 'UTC', false)"
    params: tuple[str, ...] = ()
    if watermark is not None:
        setup += f", set_config('{WATERMARK_SETTING}', $1, false)"
        params = (watermark,)
    parsed = make_url(url)
    try:
        conn = adbc_pg.connect(adbc_uri(parsed), autocommit=True)
    except adbc_driver_manager.Error as exc:
        raise SourceUnreachableError(source, url, driver_reason(exc, parsed)) from exc
    done = 0
    try:
        with closing(conn), closing(conn.cursor()) as cursor:
            cursor.adbc_statement.set_options(
                **{adbc_pg_options.BATCH_SIZE_HINT_BYTES.value: str(ADBC_BATCH_BYTES)}
            )
            cursor.execute(setup, params or None)
            cursor.fetchall()
            cursor.execute(str(compiled))
            for batch in rechunk(cursor.fetch_record_batch(), chunk_rows):
                yield [_plain(column) for column in batch.columns]
                done += batch.num_rows
    except adbc_driver_manager.OperationalError as exc:
        reason = f"lost after {done} rows: {driver_reason(exc, parsed)}"
        raise SourceUnreachableError(source, url, reason) from exc
    except adbc_driver_manager.Error as exc:
        raise SourceQueryError(source, table, driver_reason(exc, parsed)) from exc
    except OSError as exc:  # how Arrow's stream reader reports the driver failing mid-stream
        reason = f"lost after {done} rows: {driver_reason(exc, parsed)}"
        raise SourceUnreachableError(source, url, reason) from exc


def _plain(column: pa.Array) -> pa.Array:
    """Extension columns (``numeric`` as opaque text, ``json``) as their storage, which
    :mod:`connectors.convert` reads."""
    return column.storage if isinstance(column, pa.ExtensionArray) else column


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last one: the rest) from batches of any size:
    ADBC sizes its batches by bytes, the hub's chunks count rows."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        held += batch.num_rows
        if held < rows:
            continue
        whole = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
        start = 0
        while held - start >= rows:
            yield whole.slice(start, rows)
            start += rows
        pending = [whole.slice(start)] if held > start else []
        held -= start
    if held:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
