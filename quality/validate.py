"""Validate chunks of a batch: split them into valid and quarantined rows, with reasons.

One :class:`Validator` per (contract, batch) holds the suite built from the contract and
runs it on each chunk with Great Expectations' validation engine, over an Arrow-backed
pandas frame indexed by ``_row`` (the row's number in the whole batch), so violations point
at source rows no matter how the batch was chunked. It also keeps the batch's tallies (per
expectation and per field) from which :meth:`Validator.build_data_docs` renders the batch's
Data Docs once the last chunk is done.

Speed: GE's fixed cost per validation run (building the metric graph of ~25 expectations)
is ~0.15 s whatever the chunk size, so larger chunks pay it less often; see
:data:`VALIDATION_CHUNK_ROWS`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.execution_engine.pandas_batch_data import PandasBatchData
from great_expectations.validator.validator import Validator as GraphValidator

from quality.datadocs import build
from quality.errors import AccountingError, CheckCrashedError, ChunkShapeError, StagedBatchError
from quality.suite import KEY_COLUMN, KEY_SEPARATOR, REPEATED_KEY_COLUMN, build_suite, key_column
from quality.tallies import BatchTallies, Tally
from schemas.contract import Contract, FieldType

ROW_COLUMN = "_row"
"""Int64 column every chunk carries: the row's number within the whole batch."""

VALIDATION_CHUNK_ROWS = 250_000
"""Rows per validation run that keep GE's fixed cost per run small (1M population rows on
two shared cores: ~205,000 rows/s in 50,000-row chunks, ~510,000 in 250,000-row ones); a
frame of that many population rows is ~60 MB. Callers choose the chunk size; this is the
advice."""

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "exclude_unexpected_values": True,
}
"""COMPLETE so every failing row is listed (as the frame's index: ``_row`` numbers); values
are excluded because they are personal data and quarantine keeps the raw rows anyway
(under access control)."""

DUCKDB_MEMORY_LIMIT = "512MB"
"""Cap for the duplicate-key scan; DuckDB spills the GROUP BY to disk beyond it, so a batch
larger than memory is still scanned, on a machine shared with the rest of the pipeline."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    """One rule one row broke. ``row`` is the batch row number (``_row``)."""

    row: int
    field: str
    rule: str
    message_zh: str
    message_en: str


@dataclass
class ChunkResult:
    """Outcome of one chunk: every input row is in exactly one of ``valid``/``quarantined``."""

    rows_in: int
    valid: pa.Table
    quarantined: pa.Table
    violations: list[Violation] = field(default_factory=list)


def _identity(config: Any) -> tuple[str, ...]:
    """Which expectation of the suite a result belongs to: type, columns and rule."""
    kwargs, meta = config.kwargs, config.meta or {}
    columns = (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"))
    return (config.type, *(str(c) for c in columns), str(meta.get("rule", "")))


class Validator:
    """Validates chunks of one dataset against the suite derived from its contract."""

    def __init__(self, contract: Contract, *, today: date | None = None) -> None:
        """``today`` bounds birth dates; default the real date. Pass the setting
        ``quality.today`` to replay an old batch exactly as it was judged."""
        self.contract = contract
        self.today = today or date.today()
        self._suite = build_suite(contract, today=self.today)
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self._configurations = self._suite.expectation_configurations
        self._columns = [f.name for f in contract.fields]
        self._duplicates: tuple[Collection[str], pa.Array] | None = None
        self.tallies = self._new_tallies()

    def _new_tallies(self, batch_id: str = "", source: str = "") -> BatchTallies:
        tallies = BatchTallies(
            self.contract.name, self.contract.version, self._suite, self.today, batch_id, source
        )
        for config in self._configurations:
            tallies.expectations[_identity(config)] = Tally(config)
        return tallies

    def _check_shape(self, chunk: pa.Table, where: str) -> None:
        missing = [c for c in [*self._columns, ROW_COLUMN] if c not in chunk.column_names]
        if missing:
            raise ChunkShapeError(f"{where}: chunk lacks column(s) {', '.join(missing)}")
        wrong = [
            f"{f.name} is {chunk.schema.field(f.name).type}, contract says {f.type.arrow()}"
            for f in self.contract.fields
            if not chunk.schema.field(f.name).type.equals(f.type.arrow())
        ]
        if not pa.types.is_integer(chunk.schema.field(ROW_COLUMN).type):
            wrong.append(f"{ROW_COLUMN} is {chunk.schema.field(ROW_COLUMN).type}, expected int64")
        if wrong:
            raise ChunkShapeError(f"{where}: wrong column type(s): {'; '.join(wrong)}")
        rows = chunk.column(ROW_COLUMN)
        numbers = rows.to_numpy() if not rows.null_count else None
        increasing = numbers is not None and bool(np.all(numbers[1:] > numbers[:-1]))
        if not increasing and (rows.null_count or pc.count_distinct(rows).as_py() != chunk.num_rows):
            raise ChunkShapeError(f"{where}: column {ROW_COLUMN} must hold distinct non-null row numbers")

    def _duplicate_set(self, duplicate_keys: Collection[str]) -> pa.Array:
        """The batch's duplicate keys as an Arrow array, converted once for all chunks.

        The cache holds the caller's collection itself, so the same object (the pipeline
        passes one list for the whole batch) is recognised and no other can take its id.
        """
        cached = self._duplicates
        if cached is None or cached[0] is not duplicate_keys or len(cached[1]) != len(duplicate_keys):
            values = pa.array(list(duplicate_keys), type=pa.string())
            self._duplicates = cached = (duplicate_keys, values)
        return cached[1]

    def _frame(self, chunk: pa.Table, duplicate_keys: Collection[str]) -> pd.DataFrame:
        """The chunk as GE sees it: Arrow-backed columns, indexed by ``_row``, plus the flag
        of rows whose key occurs more than once in the batch."""
        # one chunk per column: GE filters the frame once per expectation, and Arrow's take
        # over a multi-chunk column first concatenates the chunks
        table = chunk.select(self._columns).combine_chunks()
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        frame.index = pd.Index(chunk.column(ROW_COLUMN).to_numpy(), dtype="int64")
        repeated = np.zeros(chunk.num_rows, dtype=bool)
        if duplicate_keys:
            name = key_column(self.contract)
            keys = table.column(name) if name != KEY_COLUMN else _key_array(table, self.contract)
            hit = pc.is_in(keys, value_set=self._duplicate_set(duplicate_keys))
            repeated = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
        frame[REPEATED_KEY_COLUMN] = repeated
        return frame

    def _run(self, frame: pd.DataFrame) -> list[Any]:
        """The suite over one frame with GE's graph validation, on an engine of its own.

        What ``Batch.validate`` does, minus its batch loading: that fingerprints the whole
        dataframe (a hash of every value) for batch metadata, a cost that grows with the
        rows and buys nothing here. A fresh engine per chunk keeps no metric cache across
        chunks.
        """
        engine = PandasExecutionEngine()
        engine.load_batch_data("chunk", PandasBatchData(engine, frame))
        graph = GraphValidator(execution_engine=engine, data_context=self._context)
        configurations = graph.process_expectations_for_validation(self._configurations)
        results: list[Any] = graph.graph_validate(
            configurations=configurations, runtime_configuration={"result_format": dict(RESULT_FORMAT)}
        )
        return results

    def validate(
        self,
        chunk: pa.Table,
        *,
        duplicate_keys: Collection[str] = (),
        source: str = "",
        batch_id: str = "",
    ) -> ChunkResult:
        """Split ``chunk`` into valid and quarantined rows and list every violation.

        ``duplicate_keys`` are the batch-wide duplicates (:func:`find_duplicate_keys`);
        rows carrying one are quarantined under ``key.duplicate``.
        """
        started = time.perf_counter()
        where = f"source {source or '?'} batch {batch_id or '?'} dataset {self.contract.name}"
        self._check_shape(chunk, where)
        if batch_id and batch_id != self.tallies.batch_id:
            self.tallies = self._new_tallies(batch_id, source)
        violations: list[Violation] = []
        outcomes: list[Any] = []
        if chunk.num_rows:
            outcomes = self._run(self._frame(chunk, duplicate_keys))
            for outcome in outcomes:
                violations += _violations(outcome, where)
            violations += _conversion_violations(chunk)
        violations.sort(key=lambda v: v.row)
        bad = pa.array(sorted({v.row for v in violations}), type=pa.int64())
        in_quarantine = pc.is_in(chunk.column(ROW_COLUMN), value_set=bad)
        quarantined = chunk.filter(in_quarantine)
        valid = chunk.filter(pc.invert(in_quarantine))
        if chunk.num_rows != valid.num_rows + quarantined.num_rows:
            raise AccountingError(
                f"{where}: rows in {chunk.num_rows} != valid {valid.num_rows} + "
                f"quarantined {quarantined.num_rows}"
            )
        if violations:
            log.info("%s: %d of %d rows quarantined", where, quarantined.num_rows, chunk.num_rows)
        self._tally(chunk, outcomes, violations, quarantined.num_rows, time.perf_counter() - started)
        return ChunkResult(chunk.num_rows, valid, quarantined, violations)

    def _tally(
        self, chunk: pa.Table, outcomes: list[Any], violations: list[Violation], bad: int, seconds: float
    ) -> None:
        tallies = self.tallies
        tallies.rows_in += chunk.num_rows
        tallies.rows_quarantined += bad
        tallies.chunks += 1
        tallies.seconds += seconds
        for name in self._columns:
            tallies.present[name] += _present(chunk.column(name))
        for outcome in outcomes:
            tally = tallies.expectations.get(_identity(outcome.expectation_config))
            result = outcome.result or {}
            if tally is not None:
                tally.element_count += int(result.get("element_count") or 0)
                tally.missing_count += int(result.get("missing_count") or 0)
                tally.unexpected_count += int(result.get("unexpected_count") or 0)
        rows_by_rule: dict[tuple[str, str], set[int]] = {}
        for v in violations:
            rows_by_rule.setdefault((v.rule, v.field), set()).add(v.row)
        for rule, rows in rows_by_rule.items():
            tallies.rules[rule] += len(rows)

    def build_data_docs(self, batch_id: str, root: Path) -> Path:
        """Render this batch's Data Docs under ``root/<dataset>/`` and return the page's path.

        Call it once, after the batch's last chunk: the page shows the suite's results over
        the whole batch (counts per expectation, never a value). ``root`` is usually
        ``<hub home>/datadocs``; each dataset is one Data Docs site whose ``index.html``
        lists its batches.
        """
        if batch_id:
            self.tallies.batch_id = batch_id
        return build(self.tallies, Path(root))


def _present(column: pa.ChunkedArray) -> int:
    """Values that are there: not null and, for text, not the empty string."""
    present = len(column) - column.null_count
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        empty = pc.sum(pc.equal(pc.binary_length(column), 0)).as_py() or 0
        present -= int(empty)
    return int(present)


CONVERSION_RULE = "type"
CONVERSION_MESSAGES = (
    "源数据值无法转换为目录契约规定的类型",
    "the source value cannot be read as the type the contract gives this field",
)


def _conversion_violations(chunk: pa.Table) -> list[Violation]:
    """Rows whose connector could not convert a value (listed in the errors column)."""
    from connectors.base import ERRORS_COLUMN

    if ERRORS_COLUMN not in chunk.column_names:
        return []
    errors = chunk.column(ERRORS_COLUMN)
    failing = pc.fill_null(pc.greater(pc.list_value_length(errors), 0), False)
    if not pc.any(failing).as_py():
        return []
    rows = chunk.column(ROW_COLUMN).filter(failing).to_pylist()
    fields = errors.filter(failing).to_pylist()
    zh, en = CONVERSION_MESSAGES
    return [
        Violation(row, name, CONVERSION_RULE, zh, en)
        for row, names in zip(rows, fields, strict=True)
        for name in names
    ]


def _rows(unexpected: Iterable[Any]) -> list[int]:
    """Row numbers from GE's ``unexpected_index_list``.

    The frame is indexed by ``_row``, so GE lists the numbers themselves; the dict forms GE
    uses with ``unexpected_index_column_names`` (``[{"_row": [1, 2]}]`` or one dict per row)
    are accepted too.
    """
    rows: list[int] = []
    for item in unexpected:
        value = item[ROW_COLUMN] if isinstance(item, dict) else item
        if isinstance(value, list | tuple):
            rows.extend(int(v) for v in value)
        else:
            rows.append(int(value))
    return rows


def _crash_message(info: Any) -> str | None:
    """The exception message GE recorded for an expectation, if one was raised.

    GE 1.x reports either one ``{"raised_exception": ...}`` dict or, when a metric failed,
    a dict of those keyed by metric id; both are searched.
    """
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


def _violations(outcome: Any, where: str) -> list[Violation]:
    meta = outcome.expectation_config.meta or {}
    rule = meta.get("rule", outcome.expectation_config.type)
    crash = _crash_message(outcome.exception_info)
    if crash is not None:
        raise CheckCrashedError(
            f"{where}: rule {rule} on field {meta.get('field', '?')} could not run: {crash}"
        )
    if outcome.success:
        return []
    result = outcome.result or {}
    rows = _rows(result.get("unexpected_index_list") or [])
    if len(rows) != result.get("unexpected_count"):
        # never let a failed expectation pass rows through unnamed
        raise CheckCrashedError(
            f"{where}: rule {rule} on field {meta.get('field', '?')} failed "
            f"{result.get('unexpected_count')} row(s) but named {len(rows)}"
        )
    name, zh, en = str(meta["field"]), str(meta["message_zh"]), str(meta["message_en"])
    return [Violation(row, name, rule, zh, en) for row in rows]


def _key_array(table: pa.Table, contract: Contract) -> pa.ChunkedArray:
    parts = []
    for f in contract.key_fields:
        column = table.column(f.name)
        if f.type is FieldType.DATE:
            column = pc.cast(column, pa.int32())
        elif f.type is FieldType.TIMESTAMP:
            column = pc.cast(column, pa.int64())
        parts.append(pc.cast(column, pa.string()))
    return pc.binary_join_element_wise(*parts, KEY_SEPARATOR)


def _key_sql(contract: Contract) -> str:
    """DuckDB twin of :func:`_key_array`: the same text for the same key."""
    parts = []
    for f in contract.key_fields:
        name = '"' + f.name.replace('"', '""') + '"'
        if f.type is FieldType.DATE:
            name = f"({name} - DATE '1970-01-01')"
        elif f.type is FieldType.TIMESTAMP:
            name = f"epoch_us({name})"
        parts.append(f"CAST({name} AS VARCHAR)")
    if key_column(contract) != KEY_COLUMN:
        return parts[0]
    return " || chr(31) || ".join(parts)  # NULL if any part is NULL, like pyarrow's join


def find_duplicate_keys(
    parquet_paths: list[str] | str,
    contract: Contract,
    *,
    memory_limit: str = DUCKDB_MEMORY_LIMIT,
) -> list[str]:
    """Key values occurring more than once across a staged batch's Parquet files.

    The scan is a DuckDB ``GROUP BY key HAVING count(*) > 1``: it streams the files and
    spills to disk past ``memory_limit``, so it works on batches larger than memory.
    Composite keys come back joined like :data:`quality.suite.KEY_COLUMN`.
    """
    import duckdb

    paths = [parquet_paths] if isinstance(parquet_paths, str) else list(parquet_paths)
    if not paths:
        return []
    query = (
        f"SELECT k FROM (SELECT {_key_sql(contract)} AS k FROM read_parquet($paths)) "
        "WHERE k IS NOT NULL AND k <> '' GROUP BY k HAVING count(*) > 1 ORDER BY k"
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="hub-dupkeys-") as spill,
            duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill}) as con,
        ):
            rows = con.execute(query, {"paths": paths}).fetchall()
    except duckdb.Error as exc:
        shown = ", ".join(Path(p).name for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        raise StagedBatchError(
            f"dataset {contract.name}: duplicate-key scan of staged files {shown} failed: {exc}"
        ) from None
    return [str(r[0]) for r in rows]
