"""The file-drop connector passes the shared connector suite, for each file format.

CSV is written in GB18030 with Chinese headers for the mapped fields (as departments
export it), JSON Lines in UTF-8 and Parquet as is; each day's records are one file.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from connectors.files import FileConnector
from connectors.simulator.drop import write_csv, write_jsonl, write_parquet
from tests.support.connector_suite import CONTRACT, ConnectorSuite

COLUMNS = {"id_number": "公民身份号码", "name": "姓名", "gender": "性别", "updated_at": "更新时间"}
"""Contract field -> header; the other fields keep their names."""


class DropHarness:
    source_name = "population_drop"

    def __init__(self, folder: Path, suffix: str) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.rows = pa.table({})
        self.day = 0

    def connector(self, full: bool = False) -> FileConnector:
        return FileConnector(
            self.source_name, self.folder, CONTRACT, columns=COLUMNS, cursor="updated_at", chunk_rows=50
        )

    def _write(self, rows: pa.Table, name: str) -> None:
        table = rows.rename_columns([COLUMNS.get(n, n) for n in rows.column_names])
        path = self.folder / f"{name}{self.suffix}"
        if self.suffix == ".csv":
            write_csv(table, path, encoding="gb18030", headers=None)
        elif self.suffix == ".jsonl":
            write_jsonl(table, path)
        else:
            write_parquet(table, path)

    def load(self, rows: pa.Table) -> None:
        self.rows = rows
        self.day += 1
        self._write(rows, f"day{self.day}")

    def upsert(self, rows: pa.Table) -> None:
        self.day += 1
        self._write(rows, f"day{self.day}")

    def drop_column(self, field: str) -> None:
        self._write(self.rows.drop_columns([field]), f"day{self.day}")

    def add_column(self, name: str) -> None:
        self._write(self.rows.append_column(name, pa.array(["x"] * self.rows.num_rows)), f"day{self.day}")

    def put_bad_value(self, field: str, row: int) -> None:
        values = self.rows.column(field).cast(pa.string()).to_pylist()
        values[row] = "not-a-value"
        index = self.rows.schema.get_field_index(field)
        self._write(self.rows.set_column(index, field, pa.array(values, pa.string())), f"day{self.day}")

    def make_unreachable(self) -> str | None:
        self.folder = self.folder.parent / "not-mounted"
        return None


class TestCsvDropSuite(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> DropHarness:
        return DropHarness(tmp_path / "drop", ".csv")


class TestJsonLinesDropSuite(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> DropHarness:
        return DropHarness(tmp_path / "drop", ".jsonl")


class TestParquetDropSuite(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> DropHarness:
        return DropHarness(tmp_path / "drop", ".parquet")
