"""Validate chunks of a batch: split them into valid and quarantined rows, with reasons.

One :class:`Validator` per (contract, batch) holds one ephemeral Great Expectations
context and the suite built from the contract; each chunk is validated as one pandas
batch. Rows are identified by the ``_row`` column (their number in the whole batch), so
violations point at source rows no matter how the batch was chunked.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import great_expectations as gx
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.validator.v1_validator import Validator as SuiteRunner

from quality.errors import AccountingError, CheckCrashedError, ChunkShapeError, StagedBatchError
from quality.suite import KEY_COLUMN, KEY_SEPARATOR, build_suite, key_column
from schemas.contract import Contract, FieldType

ROW_COLUMN = "_row"
"""Int64 column every chunk carries: the row's number within the whole batch."""

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_COLUMN],
    "return_unexpected_index_query": False,
    "exclude_unexpected_values": True,
}
"""COMPLETE so every failing row is listed; values are excluded because they are personal
data and quarantine keeps the raw rows anyway (under access control)."""

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


class Validator:
    """Validates chunks of one dataset against the suite derived from its contract."""

    def __init__(self, contract: Contract, *, today: date | None = None) -> None:
        """``today`` bounds birth dates; default the real date. Pass the setting
        ``quality.today`` to replay an old batch exactly as it was judged."""
        self.contract = contract
        self.today = today or date.today()
        self._duplicates: frozenset[str] = frozenset()
        self._suite = build_suite(contract, duplicate_keys=(), today=self.today)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = context.data_sources.add_pandas("hub").add_dataframe_asset(contract.name)
        self._batch_definition = asset.add_batch_definition_whole_dataframe("chunk")
        self._columns = [f.name for f in contract.fields]

    def _suite_for(self, duplicate_keys: Collection[str]) -> gx.ExpectationSuite:
        wanted = frozenset(duplicate_keys)
        if wanted != self._duplicates:
            self._suite = build_suite(self.contract, duplicate_keys=wanted, today=self.today)
            self._duplicates = wanted
        return self._suite

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
        if rows.null_count or pc.count_distinct(rows).as_py() != chunk.num_rows:
            raise ChunkShapeError(f"{where}: column {ROW_COLUMN} must hold distinct non-null row numbers")

    def _frame(self, chunk: pa.Table) -> Any:
        table = chunk.select([*self._columns, ROW_COLUMN])
        if key_column(self.contract) == KEY_COLUMN:
            table = table.append_column(KEY_COLUMN, _key_array(table, self.contract))
        return table.to_pandas()

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
        where = f"source {source or '?'} batch {batch_id or '?'} dataset {self.contract.name}"
        self._check_shape(chunk, where)
        suite = self._suite_for(duplicate_keys)
        violations: list[Violation] = []
        if chunk.num_rows:
            # What Batch.validate does, minus its first load: that one fingerprints the
            # whole dataframe a second time, a cost that grows with the rows.
            runner = SuiteRunner(
                self._batch_definition,
                result_format=RESULT_FORMAT,
                batch_parameters={"dataframe": self._frame(chunk)},
            )
            result = runner.validate_expectation_suite(suite)
            for outcome in result.results:
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
        return ChunkResult(chunk.num_rows, valid, quarantined, violations)


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

    With unexpected values excluded GE groups indices (``[{"_row": [1, 2]}]``); with values
    it lists one dict per row (``[{"_row": 1, "col": v}]``). Both are accepted.
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
    return [Violation(row, meta["field"], rule, meta["message_zh"], meta["message_en"]) for row in rows]


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
