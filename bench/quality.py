"""Quality gate throughput, each figure beside its baseline timed in the same run.

Targets (issue 4, Speed): the full population suite on N rows (default 1M), Great
Expectations included, at least 300,000 rows/s; the vectorised identity-number check at
least 10x a python-stdnum loop over the same values.

- **suite**: what the validate step does with a staged batch: the duplicate-key scan of the
  Parquet file, then :class:`quality.validate.Validator` on every chunk (GE's graph
  validation over the contract's suite), in chunks of
  :data:`quality.validate.VALIDATION_CHUNK_ROWS` and, for comparison, of the connectors'
  default 50,000; the batch's Data Docs are timed apart, after the suite;
- **baselines**: reading the same Parquet file, and the same checks as a plain pyarrow pass
  (the vectorised functions of :mod:`quality.checks` and Arrow kernels, no GE);
- **identity numbers**: ``checks.gb11643`` (format, check character, birth date, division)
  against ``stdnum.cn.ric.is_valid`` in a Python loop over the same values. stdnum does
  about 10k values/s, so the loop runs over the first ``BENCH_STDNUM_VALUES`` values
  (default 200,000) and the vectorised check is timed on those same values.

Wall time is what counts; CPU time is printed too, because the figures of a machine shared
with other work are only comparable by it.

    python -m bench.quality [rows]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SUITE_TARGET = 300_000
"""Rows per second of the population suite, GE included (issue 4)."""
ID_TARGET = 10.0
"""Vectorised identity-number check over a python-stdnum loop (issue 4)."""
PIPELINE_CHUNK_ROWS = 50_000
"""The connectors' default chunk size, for comparison."""
AS_OF = datetime(2025, 5, 1)


@dataclass
class Timing:
    seconds: float
    cpu: float


def _timed(fn: Callable[[], Any]) -> tuple[Timing, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), value


def _stage(rows: int, folder: Path) -> Path:
    """The simulated registry as a staged batch: Parquet with the ``_row`` numbers."""
    from connectors.simulator import population

    path = folder / "raw.parquet"
    writer: pq.ParquetWriter | None = None
    start = 0
    for batch in population.generate(rows, seed=11, as_of=AS_OF):
        table = pa.Table.from_batches([batch])
        table = table.append_column("_row", pa.array(range(start, start + table.num_rows), pa.int64()))
        start += table.num_rows
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return path


def _suite(path: Path, chunk_rows: int) -> tuple[int, Any]:
    """The validate step's work on the staged file; returns (rows quarantined, the validator)."""
    from quality.validate import Validator, find_duplicate_keys
    from schemas.contract import load_contract

    contract = load_contract("population")
    duplicates = find_duplicate_keys(str(path), contract)
    validator = Validator(contract, today=AS_OF.date())
    quarantined = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        result = validator.validate(
            pa.Table.from_batches([batch]), duplicate_keys=duplicates, batch_id="bench-population"
        )
        quarantined += result.quarantined.num_rows
    return quarantined, validator


def _warm(path: Path) -> None:
    """Imports (GE takes seconds), GE's metric registry and the division table, untimed."""
    from quality.validate import Validator
    from schemas.contract import load_contract

    first = next(pq.ParquetFile(path).iter_batches(batch_size=1000))
    Validator(load_contract("population"), today=AS_OF.date()).validate(pa.Table.from_batches([first]))


def _plain(path: Path, chunk_rows: int) -> int:
    """The same rules as one pyarrow/numpy pass per chunk, without GE; returns invalid rows."""
    from quality import checks
    from quality.validate import find_duplicate_keys
    from schemas.contract import load_contract

    contract = load_contract("population")
    today = AS_OF.date()
    duplicates = pa.array(find_duplicate_keys(str(path), contract), pa.string())
    invalid = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        table = pa.Table.from_batches([batch])
        ids = table.column("id_number")
        ok = pc.and_(checks.gb11643(ids, today), pc.invert(pc.fill_null(pc.is_in(ids, duplicates), False)))
        for f in contract.fields:
            column = table.column(f.name)
            if f.required:
                ok = pc.and_(ok, pc.is_valid(column))
                if pa.types.is_string(column.type):
                    blank = pc.equal(pc.utf8_trim_whitespace(column), "")
                    ok = pc.and_(ok, pc.invert(pc.fill_null(blank, False)))
            if f.values is not None:
                inside = pc.is_in(column, value_set=pa.array(list(f.values), column.type))
                ok = pc.and_(ok, pc.or_(pc.is_null(column), inside))
        ok = pc.and_(ok, checks.gb2260(table.column("division_code")))
        ok = pc.and_(ok, checks.mobile_cn(table.column("mobile")))
        ok = pc.and_(ok, checks.id_birth_date_matches(ids, table.column("birth_date")))
        ok = pc.and_(ok, checks.id_gender_matches(ids, table.column("gender")))
        valid = table.filter(ok)
        invalid += table.num_rows - valid.num_rows
    return invalid


def _ids(path: Path, values: int) -> tuple[Timing, Timing, Timing, int]:
    """(vectorised on all, vectorised on the first ``values``, stdnum loop on those, agreement)."""
    from stdnum.cn import ric

    from quality import checks

    ids = pq.read_table(path, columns=["id_number"]).column(0).combine_chunks()
    today = AS_OF.date()
    whole, _ = _timed(lambda: checks.gb11643(ids, today))
    sample = ids.slice(0, min(values, len(ids)))
    vector, ours = _timed(lambda: checks.gb11643(sample, today).to_pylist())
    python = sample.to_pylist()
    loop, theirs = _timed(lambda: [ric.is_valid(v) for v in python])
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    return whole, vector, loop, agree


def run(rows: int) -> list[dict[str, Any]]:
    """Every figure of this section, as records for ``bench/results``."""
    work = Path(tempfile.mkdtemp(prefix="hub-bench-quality-"))
    results: list[dict[str, Any]] = []
    try:
        path = _stage(rows, work)
        _warm(path)
        read, _ = _timed(lambda: pq.read_table(path))
        plain, plain_invalid = _timed(lambda: _plain(path, _chunk()))
        suite, (quarantined, validator) = _timed(lambda: _suite(path, _chunk()))
        docs, _ = _timed(lambda: validator.build_data_docs("bench-population", work / "datadocs"))
        small, _ = _timed(lambda: _suite(path, PIPELINE_CHUNK_ROWS))

        def record(what: str, t: Timing, target: str = "", met: bool | None = None, **extra: Any) -> None:
            results.append(
                {
                    "what": what,
                    "rows": rows,
                    "seconds": t.seconds,
                    "cpu_seconds": t.cpu,
                    "rows_per_s": rows / t.seconds,
                    "cpu_rows_per_s": rows / t.cpu if t.cpu else None,
                    "target": target,
                    "met": met,
                    **extra,
                }
            )

        record("baseline: read the staged Parquet (pyarrow)", read)
        record("baseline: same checks, plain pyarrow pass", plain, invalid=plain_invalid)
        record(
            f"population suite with GE, {_chunk():,}-row chunks",
            suite,
            f">= {SUITE_TARGET:,} rows/s",
            rows / suite.seconds >= SUITE_TARGET,
            quarantined=quarantined,
            data_docs_seconds=docs.seconds,
            vs_plain=suite.seconds / plain.seconds,
        )
        record(
            f"population suite with GE, {PIPELINE_CHUNK_ROWS:,}-row chunks",
            small,
            f">= {SUITE_TARGET:,} rows/s",
            rows / small.seconds >= SUITE_TARGET,
        )
        whole, vector, loop, agree = _ids(path, int(os.environ.get("BENCH_STDNUM_VALUES", "200000")))
        sample = min(rows, int(os.environ.get("BENCH_STDNUM_VALUES", "200000")))
        ratio = loop.seconds / vector.seconds
        results.append(
            {
                "what": "identity numbers: checks.gb11643 vs stdnum.cn.ric.is_valid loop",
                "rows": sample,
                "seconds": vector.seconds,
                "rows_per_s": sample / vector.seconds,
                "baseline_seconds": loop.seconds,
                "baseline_rows_per_s": sample / loop.seconds,
                "ratio": ratio,
                "target": f">= {ID_TARGET:.0f}x",
                "met": ratio >= ID_TARGET,
                "agreeing_verdicts": agree,
                "vectorised_all_rows_per_s": rows / whole.seconds,
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _chunk() -> int:
    from quality.validate import VALIDATION_CHUNK_ROWS

    return int(os.environ.get("BENCH_QUALITY_CHUNK_ROWS", str(VALIDATION_CHUNK_ROWS)))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_ROWS", "1000000"))
    for r in run(rows):
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})


if __name__ == "__main__":
    main()


__all__ = ["ID_TARGET", "SUITE_TARGET", "run"]
