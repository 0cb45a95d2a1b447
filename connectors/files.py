"""File-drop connector: CSV, JSON Lines and Parquet files left in a folder, each read once.

Departments that cannot offer a database or an API drop export files on a shared folder.
Files directly in the folder are taken in the order they arrived (modification time, then
name); names starting with ``.`` or ending ``.tmp``/``.part`` are files still being
written and are left alone, so a writer should write under such a name and rename when
done (as :mod:`connectors.simulator.drop` does). The folder keeps its own bookkeeping::

    <folder>/.hub/processed.jsonl      ledger: one line per file registered (SHA-256, name, rows)
    <folder>/archive/YYYYMMDD/<name>   files whose batch was registered
    <folder>/rejected/<name>           files that could not be read,
    <folder>/rejected/<name>.reason.txt  with the problem, line and column when known

The ledger lives in the drop folder, not in the hub's metadata, so it travels with the
folder: every worker that mounts the share sees the same record, and an operator sees
in one place what was taken. A file is identified by its SHA-256 checksum, so a file
dropped again with the same content is skipped (and archived with the batch) whatever
its name, while a corrected file under an old name is read.

``read()`` streams new files ``chunk_rows`` rows at a time (``pyarrow.csv.open_csv``,
``ParquetFile.iter_batches``, JSON Lines line by line), never a whole file in memory.
Before a file's first row is handed on, one pass computes its checksum and checks its
encoding (CSV and JSON Lines: UTF-8 with or without BOM, else GB18030, which covers GBK;
a configured encoding overrides), and its header or schema is checked against the
mapping. A file failing those checks is moved to ``rejected/`` with its reason and the
other files go on. A file that turns out broken after some of its rows were handed on
(a malformed line deep in a big CSV) is rejected too, and the read fails with a transient
error: the batch cannot keep half a file, and read again it goes on without it. A value
that does not convert is not a file problem: the row goes to quarantine like any other.

``commit()`` runs after the batch is registered, possibly in another process: it records
the checksums in the ledger first, then moves the files to the archive, so a crash
between the two never lets a file be read twice.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from connectors.base import field_columns
from connectors.config import FileConnectorConfig, SourceConfig, expand
from connectors.convert import to_batch
from connectors.errors import (
    REJECTED,
    SourceConfigError,
    SourceFileRejectedError,
    SourceFileSchemaError,
    SourceUnreachableError,
)

if TYPE_CHECKING:
    from schemas.contract import Contract

log = logging.getLogger(__name__)

LEDGER = Path(".hub") / "processed.jsonl"
ARCHIVE = "archive"
REASON_SUFFIX = ".reason.txt"
SCAN_BLOCK = 1 << 20
"""Bytes read at a time while hashing and checking the encoding: large enough for full disk
speed, small enough not to matter in memory."""
CSV_BLOCK = 1 << 20
"""Bytes Arrow's CSV reader parses at a time. Its streaming reader reads a fixed number of
blocks ahead of the consumer, so small blocks keep that lookahead (and peak memory) from
growing with the file: 4 MiB blocks made the peak track the file size, 1 MiB does not."""
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
JSONL_PROBE = 1_000
"""JSON Lines records whose keys make a file's columns; later records may leave keys out."""
_IN_PROGRESS = (".tmp", ".part")
_CSV_ROW_ERROR = re.compile(r"^(CSV parse error: (?:Row #\d+: )?Expected \d+ columns?, got \d+)")


class _Unreadable(Exception):
    """A file cannot be read: what is wrong, and where when known."""

    def __init__(self, problem: str, *, line: int | None = None, column: str | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        super().__init__(problem)


class _MissingColumns(_Unreadable):
    def __init__(self, columns: list[str]) -> None:
        super().__init__(f"missing column(s) {', '.join(columns)}", line=1, column=columns[0])
        self.columns = columns


@dataclass(frozen=True)
class _Scan:
    sha256: str
    encoding: str | None
    """Python codec name of a text file (``utf-8-sig`` for UTF-8, BOM or not)."""


@dataclass(frozen=True)
class _Taken:
    name: str
    sha256: str
    rows: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows}


class FileConnector:
    """Reads the files dropped in a folder, each exactly once, in a contract's canonical schema."""

    def __init__(
        self,
        source: str,
        folder: Path,
        contract: Contract,
        *,
        pattern: str = "*",
        formats: Sequence[str] = ("csv", "jsonl", "parquet"),
        encoding: str = "auto",
        columns: Mapping[str, str] | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
        cursor: str | None = None,
        chunk_rows: int = 50_000,
    ) -> None:
        """``columns`` maps contract field -> column (CSV header, JSON key, Parquet column);
        unmapped fields read the column of the same name."""
        self.columns: dict[str, str] = field_columns(source, contract, columns, cursor)
        if encoding != "auto":
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise SourceConfigError(f"source {source!r}: unknown encoding {encoding!r}") from None
        if chunk_rows < 1:
            raise SourceConfigError(f"source {source!r}: chunk_rows must be positive, got {chunk_rows}")
        self.source = source
        self.folder = Path(folder)
        self.contract = contract
        self.pattern = pattern
        self.formats = tuple(formats)
        self.encoding = encoding
        self.values = {k: dict(v) for k, v in (values or {}).items()}
        self.cursor = cursor
        self.chunk_rows = chunk_rows
        self._taken: list[_Taken] = []
        self._duplicates: list[_Taken] = []
        self._watermark: str | None = None

    @classmethod
    def from_source(
        cls, source: SourceConfig, *, chunk_rows: int, env: Mapping[str, str] | None = None
    ) -> FileConnector:
        config = source.connector
        if not isinstance(config, FileConnectorConfig):
            raise SourceConfigError(f"source {source.name!r} is not a file source (kind {config.kind!r})")
        return cls(
            source.name,
            Path(expand(config.folder, env)),
            source.contract,
            pattern=config.pattern,
            formats=config.formats,
            encoding=config.encoding,
            columns=source.columns,
            values=source.values,
            cursor=source.cursor,
            chunk_rows=source.chunk_rows or chunk_rows,
        )

    def __repr__(self) -> str:
        return f"FileConnector(source={self.source!r}, folder={str(self.folder)!r})"

    # the Connector interface -----------------------------------------------------------

    def check(self) -> None:
        """The drop folder exists and can be listed (files are checked one by one when read)."""
        if not self.folder.is_dir():
            raise SourceUnreachableError(self.source, str(self.folder), "the drop folder does not exist")
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            raise SourceUnreachableError(
                self.source, str(self.folder), "the drop folder cannot be read and written"
            )

    def read(self, *, since: str | None) -> Iterator[pa.RecordBatch]:
        """Rows of the files not processed before; ``since`` only seeds the watermark, since
        files are consumed by checksum, not filtered by cursor.

        Every new file is checked first (checksum, encoding, header or schema), unreadable
        ones are rejected, and only then are rows read. A file lacking a mapped column is
        rejected too, and the read then fails naming the files and columns: the source's
        export changed, which a steward must hear of rather than find an empty table.
        """
        self.check()
        self._taken = []
        self._duplicates = []
        self._watermark = since
        done = self._ledger()
        plan: list[tuple[Path, str, _Scan]] = []
        missing: dict[str, list[str]] = {}
        for path in self._candidates():
            kind = FORMATS.get(path.suffix.lower())
            try:
                if kind is None or kind not in self.formats:
                    raise _Unreadable(f"not a file format this source takes ({', '.join(self.formats)})")
                scan = self._scan(path, kind)
                if scan.sha256 in done:
                    log.info(
                        "source %r: file %s has the content of a file already processed (sha256 %s); skipped",
                        self.source, path.name, scan.sha256[:12],
                    )  # fmt: skip
                    self._duplicates.append(_Taken(path.name, scan.sha256, 0))
                    continue
                self._check_columns(self._probe(path, kind, scan), path)
            except _Unreadable as bad:
                self._reject(path, bad)
                if isinstance(bad, _MissingColumns):
                    missing[path.name] = bad.columns
                continue
            done.add(scan.sha256)
            plan.append((path, kind, scan))
        if missing:
            raise SourceFileSchemaError(self.source, missing)
        for path, kind, scan in plan:
            rows = 0
            try:
                for batch in self._batches(path, kind, scan):
                    rows += batch.num_rows
                    self._advance(batch)
                    yield batch
            except _Unreadable as bad:
                self._reject(path, bad, sha256=scan.sha256)
                if rows:
                    raise SourceFileRejectedError(self.source, path.name, bad.problem, rows) from None
                continue
            self._taken.append(_Taken(path.name, scan.sha256, rows))
            log.info("source %r: read %d row(s) from %s", self.source, rows, path.name)

    @property
    def watermark(self) -> str | None:
        return self._watermark

    def checkpoint(self) -> dict[str, Any] | None:
        """The files read (to archive and record) and the re-dropped copies (to archive)."""
        if not self._taken and not self._duplicates:
            return None
        return {
            "files": [t.as_json() for t in self._taken],
            "duplicates": [t.as_json() for t in self._duplicates],
        }

    def commit(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Record the checksums read in the ledger, then move the files to ``archive/YYYYMMDD/``
        (see :func:`archive_registered`)."""
        archive_registered(
            self.folder, self.source, checkpoint if checkpoint is not None else self.checkpoint()
        )
        self._taken = []
        self._duplicates = []

    def close(self) -> None:
        """Nothing is held open between calls."""

    # files -----------------------------------------------------------------------------

    def _candidates(self) -> list[Path]:
        paths = [
            p
            for p in self.folder.glob(self.pattern)
            if p.parent == self.folder
            and p.is_file()
            and not p.name.startswith(".")
            and not p.name.endswith(_IN_PROGRESS)
        ]
        return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _ledger(self) -> set[str]:
        path = self.folder / LEDGER
        if not path.exists():
            return set()
        done: set[str] = set()
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    try:
                        done.add(json.loads(line)["sha256"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("source %r: ledger %s has an unreadable line; ignored", self.source, path)
        return done

    def _reject(self, path: Path, bad: _Unreadable, *, sha256: str | None = None) -> None:
        """Move ``path`` to ``rejected/`` with a reason file beside it naming the problem."""
        folder = self.folder / REJECTED
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, path.name)
        os.replace(path, target)
        lines = [f"file: {path.name}", f"source: {self.source}", f"problem: {bad.problem}"]
        if bad.line is not None:
            lines.append(f"line: {bad.line}")
        if bad.column is not None:
            lines.append(f"column: {bad.column}")
        if sha256 is not None:
            lines.append(f"sha256: {sha256}")
        lines.append(f"rejected at: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
        target.with_name(target.name + REASON_SUFFIX).write_text("\n".join(lines) + "\n", encoding="utf-8")
        where = "".join(
            [
                f", line {bad.line}" if bad.line is not None else "",
                f", column {bad.column}" if bad.column else "",
            ]
        )
        log.warning(
            "source %r: file %s rejected%s: %s (moved to %s)",
            self.source,
            path.name,
            where,
            bad.problem,
            target,
        )

    def _scan(self, path: Path, kind: str) -> _Scan:
        """Checksum, and for text formats the encoding, in one pass (a second only for GB18030)."""
        if kind == "parquet":
            return _Scan(_sha256(path), None)
        candidates = ["utf-8-sig", "gb18030"] if self.encoding == "auto" else [self.encoding]
        digest = hashlib.sha256()
        failure = _decode(path, candidates[0], digest)
        sha = digest.hexdigest()
        if failure is None:
            return _Scan(sha, candidates[0])
        if len(candidates) > 1:
            second = _decode(path, candidates[1], None)
            if second is None:
                return _Scan(sha, candidates[1])
            failure = max(failure, second)
            raise _Unreadable("bytes that are neither UTF-8 nor GB18030 (GBK) text", line=failure)
        raise _Unreadable(f"bytes that are not {self.encoding} text", line=failure)

    def _batches(self, path: Path, kind: str, scan: _Scan) -> Iterator[pa.RecordBatch]:
        if kind == "csv":
            assert scan.encoding is not None
            yield from self._csv(path, scan.encoding)
        elif kind == "jsonl":
            assert scan.encoding is not None
            yield from self._jsonl(path, scan.encoding)
        else:
            yield from self._parquet(path)

    def _probe(self, path: Path, kind: str, scan: _Scan) -> list[str] | None:
        """The columns a file offers: CSV header, Parquet schema, or the keys of the first
        :data:`JSONL_PROBE` JSON Lines records (JSON leaves null keys out, so one is not
        enough); None for a JSON Lines file without records, which has nothing to check."""
        if kind == "csv":
            return _csv_header(path, scan.encoding or "utf-8-sig")
        if kind == "parquet":
            try:
                return list(pq.read_schema(path).names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise _Unreadable(f"not a readable Parquet file ({_first_line(exc)})") from None
        keys: dict[str, None] = {}
        for _, record in zip(
            range(JSONL_PROBE), _json_records(path, scan.encoding or "utf-8-sig"), strict=False
        ):
            keys.update(dict.fromkeys(record))
        return list(keys) if keys else None

    def _check_columns(self, present: Sequence[str] | None, path: Path) -> None:
        if present is None:
            return
        duplicated = sorted({c for c in present if present.count(c) > 1})
        if duplicated:
            raise _Unreadable(
                f"column(s) {', '.join(duplicated)} appear more than once", column=duplicated[0]
            )
        have = set(present)
        missing = [
            column if column == field else f"{column} (for field {field})"
            for field, column in self.columns.items()
            if column not in have
        ]
        if missing:
            raise _MissingColumns(missing)
        wanted = set(self.columns.values())
        extra = [c for c in present if c not in wanted]
        if extra:
            log.warning(
                "source %r: file %s has column(s) %s that are not in contract %r and are not read",
                self.source, path.name, ", ".join(extra), self.contract.name,
            )  # fmt: skip

    def _convert(self, table: pa.Table | pa.RecordBatch) -> pa.RecordBatch:
        return to_batch([table.column(c) for c in self.columns.values()], self.contract, values=self.values)

    def _csv(self, path: Path, encoding: str) -> Iterator[pa.RecordBatch]:
        wanted = list(dict.fromkeys(self.columns.values()))
        try:
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(
                    encoding="utf8" if encoding == "utf-8-sig" else encoding, block_size=CSV_BLOCK
                ),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=wanted,
                    column_types=dict.fromkeys(wanted, pa.string()),
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
            for table in _rechunk(reader, self.chunk_rows):
                yield self._convert(table)
        except pa.ArrowInvalid as exc:
            width = len(_csv_header(path, encoding))
            raise _Unreadable(_csv_problem(exc), line=_bad_csv_line(path, encoding, width)) from None

    def _jsonl(self, path: Path, encoding: str) -> Iterator[pa.RecordBatch]:
        keys = list(dict.fromkeys(self.columns.values()))
        records: list[dict[str, Any]] = []
        for record in _json_records(path, encoding):
            records.append(record)
            if len(records) == self.chunk_rows:
                yield self._records(records, keys)
                records = []
        if records:
            yield self._records(records, keys)

    def _records(self, records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> pa.RecordBatch:
        by_key = {key: [r.get(key) for r in records] for key in keys}
        return to_batch([by_key[c] for c in self.columns.values()], self.contract, values=self.values)

    def _parquet(self, path: Path) -> Iterator[pa.RecordBatch]:
        wanted = list(dict.fromkeys(self.columns.values()))
        try:
            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(batch_size=self.chunk_rows, columns=wanted):
                    yield self._convert(batch)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _Unreadable(f"damaged Parquet data ({_first_line(exc)})") from None

    def _advance(self, batch: pa.RecordBatch) -> None:
        if self.cursor is None or batch.num_rows == 0:
            return
        greatest = pc.max(batch.column(self.cursor)).as_py()
        if greatest is None:
            return
        text = greatest.isoformat() if hasattr(greatest, "isoformat") else str(greatest)
        if self._watermark is None or _later(text, self._watermark):
            self._watermark = text


def _later(text: str, than: str) -> bool:
    try:
        return dt.datetime.fromisoformat(text) > dt.datetime.fromisoformat(than)
    except (ValueError, TypeError):
        return text > than


def _csv_header(path: Path, encoding: str) -> list[str]:
    try:
        with path.open(encoding=encoding, newline="") as text:
            header = next(csv.reader(text), None)
    except csv.Error as exc:
        raise _Unreadable(f"the header line is not CSV ({exc})", line=1) from None
    if not header:
        raise _Unreadable("the file is empty: no header line", line=1)
    return header


def _json_records(path: Path, encoding: str) -> Iterator[dict[str, Any]]:
    """JSON Lines records one by one (blank lines skipped); a bad line names its number."""
    with path.open(encoding=encoding) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _Unreadable(f"not JSON: {exc.msg}", line=number, column=str(exc.colno)) from None
            if not isinstance(record, dict):
                raise _Unreadable(f"a line holds a JSON {type(record).__name__}, not an object", line=number)
            yield record


def _rechunk(reader: pa_csv.CSVStreamingReader, rows: int) -> Iterator[pa.Table]:
    """Arrow's CSV blocks regrouped into tables of exactly ``rows`` rows (the last fewer)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for block in reader:
        pending.append(block)
        count += block.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending = rest.to_batches()
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(SCAN_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _decode(path: Path, encoding: str, digest: Any) -> int | None:
    """Decode the whole file block by block (updating ``digest`` when given); None when it
    decodes, else the line (1-based) of the first bad byte. Hashing continues past it."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines = 0
    failure: int | None = None
    with path.open("rb") as data:
        while True:
            block = data.read(SCAN_BLOCK)
            if digest is not None:
                digest.update(block)
            if failure is None:
                try:
                    decoder.decode(block, final=not block)
                except UnicodeDecodeError as exc:
                    failure = lines + exc.object[: exc.start].count(b"\n") + 1
                lines += block.count(b"\n")
            if not block or (failure is not None and digest is None):
                return failure


def _bad_csv_line(path: Path, encoding: str, width: int) -> int | None:
    """Line of the first row whose field count differs from the header's (only on failure)."""
    try:
        with path.open(encoding=encoding, newline="") as text:
            reader = csv.reader(text)
            for row in reader:
                if len(row) != width:
                    return reader.line_num
    except (csv.Error, UnicodeDecodeError):
        return None
    return None


def _csv_problem(exc: Exception) -> str:
    """Arrow's message without the row text it quotes (which may hold personal data)."""
    message = _first_line(exc)
    match = _CSV_ROW_ERROR.match(message)
    if match:
        return match.group(1)
    return "CSV parse error" if message.startswith("CSV parse error") else message


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem.N.suffix`` when a file of that name is already there."""
    target = folder / name
    number = 1
    while target.exists() or target.with_name(target.name + REASON_SUFFIX).exists():
        stem, dot, suffix = name.partition(".")
        target = folder / f"{stem}.{number}{dot}{suffix}"
        number += 1
    return target


def archive_registered(folder: Path, source: str, state: dict[str, Any] | None) -> None:
    """A registered batch's files: record their checksums in the drop folder's ledger, then
    move them to ``archive/YYYYMMDD/``.

    ``state`` is the batch's recorded connector state (what :meth:`FileConnector.checkpoint`
    gave at extraction): the pipeline calls this from the batch record once the batch is
    registered, without opening the source. A file whose content changed since it was
    read (dropped again under the same name) stays for the next read; only what was read
    is recorded. Running the same call twice changes nothing more.
    """
    if not state:
        return
    files = [_Taken(**entry) for entry in state.get("files", ())]
    duplicates = [_Taken(**entry) for entry in state.get("duplicates", ())]
    now = dt.datetime.now(dt.UTC)
    ledger = folder / LEDGER
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", encoding="utf-8") as out:
        for taken in files:
            entry = {**taken.as_json(), "source": source, "at": now.isoformat(timespec="seconds")}
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    archive = folder / ARCHIVE / now.astimezone().strftime("%Y%m%d")
    for taken in [*files, *duplicates]:
        path = folder / taken.name
        if not path.is_file():
            continue  # archived by an earlier run of this commit
        if _sha256(path) != taken.sha256:
            log.warning(
                "source %r: file %s changed since it was read; left for the next read",
                source, taken.name,
            )  # fmt: skip
            continue
        archive.mkdir(parents=True, exist_ok=True)
        os.replace(path, _free_name(archive, taken.name))
