"""The SQL connector under the shared connector suite, on SQLite, PostgreSQL or MariaDB."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from connectors.base import Connector
from connectors.config import SourceConfig
from connectors.factory import open_connector
from tests.support.connector_suite import CONTRACT, KEY

COLUMNS = {"id_number": "sfzh", "name": "xm"}
GENDER = {"男": "1", "女": "2"}
UNREACHABLE = "postgresql+psycopg://registry:s3cr3t-pw@127.0.0.1:1/registry"
_TYPES: dict[str, Any] = {"date": sa.Date, "timestamp": sa.DateTime}
_BAD = {"date": "1990-02-30", "timestamp": "2025-13-01 00:00:00", "integer": "12x", "string": "x"}
"""A value per field type that is text no conversion accepts."""


class SqlHarness:
    """A population table in any SQLAlchemy database, driven by canonical Arrow rows."""

    def __init__(self, url: str, *, chunk_rows: int = 50) -> None:
        self.url = url
        self.table = f"suite_{uuid.uuid4().hex[:10]}"
        self.source_name = f"registry_{uuid.uuid4().hex[:6]}"
        self.chunk_rows = chunk_rows
        self.env = {"SUITE_URL": url}
        self.engine = sa.create_engine(url)
        self.loaded: pa.Table | None = None
        self.config = {
            "name": self.source_name,
            "department": {"code": "11000000000013338W", "name": "公安厅"},
            "dataset": "population",
            "connector": {"kind": "sql", "url_env": "SUITE_URL", "table": self.table},
            "columns": COLUMNS,
            "values": {"gender": GENDER},
            "cursor": "updated_at",
        }

    def column(self, field: str) -> str:
        return COLUMNS.get(field, field)

    def _table(self) -> sa.Table:
        return sa.Table(
            self.table,
            sa.MetaData(),
            *(
                sa.Column(self.column(f.name), _TYPES.get(f.type.value, sa.String(200)))
                for f in CONTRACT.fields
            ),
            mysql_charset="utf8mb4",
        )

    def _records(self, rows: pa.Table) -> list[dict[str, object]]:
        back = {code: value for value, code in GENDER.items()}
        records = []
        for row in rows.to_pylist():
            row["gender"] = back.get(row["gender"], row["gender"])
            records.append({self.column(k): v for k, v in row.items()})
        return records

    def connector(self, full: bool = False) -> Connector:
        source = SourceConfig.model_validate(self.config)
        return open_connector(source, chunk_rows=self.chunk_rows, env=self.env)

    def load(self, rows: pa.Table) -> None:
        table = self._table()
        with self.engine.begin() as conn:
            table.drop(conn, checkfirst=True)
            table.create(conn)
            if rows.num_rows:
                conn.execute(table.insert(), self._records(rows))
        self.loaded = rows

    def upsert(self, rows: pa.Table) -> None:
        table = self._table()
        key = table.c[self.column(KEY)]
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(key.in_(rows[KEY].to_pylist())))
            conn.execute(table.insert(), self._records(rows))

    def _ddl(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql)

    def _quoted(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def drop_column(self, field: str) -> None:
        old, new = self._quoted(self.column(field)), self._quoted(f"{self.column(field)}_old")
        self._ddl(f"ALTER TABLE {self._quoted(self.table)} RENAME COLUMN {old} TO {new}")

    def add_column(self, name: str) -> None:
        self._ddl(f"ALTER TABLE {self._quoted(self.table)} ADD COLUMN {self._quoted(name)} VARCHAR(20)")

    def put_bad_value(self, field: str, row: int) -> None:
        assert self.loaded is not None
        table, column = self._quoted(self.table), self._quoted(self.column(field))
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            self._ddl(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT USING {column}::text")
        elif dialect in ("mysql", "mariadb"):
            self._ddl(f"ALTER TABLE {table} MODIFY {column} VARCHAR(40)")
        key = self.loaded[KEY][row].as_py()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :bad WHERE {self._quoted(self.column(KEY))} = :key"),
                {"bad": _BAD[CONTRACT.field(field).type.value], "key": key},
            )

    def make_unreachable(self) -> str | None:
        self.env = {"SUITE_URL": UNREACHABLE}
        return "s3cr3t-pw"

    def close(self) -> None:
        with self.engine.begin() as conn:
            self._table().drop(conn, checkfirst=True)
        self.engine.dispose()
