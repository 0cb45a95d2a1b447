"""The file-drop connector: encodings, exactly-once by checksum, archive, rejected files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from connectors import files as files_module
from connectors.base import ERRORS_COLUMN, batch_schema
from connectors.config import SourceConfig
from connectors.errors import SourceUnreachableError
from connectors.files import LEDGER, FileConnector, SourceFileRejectedError, SourceFileSchemaError
from connectors.simulator.drop import CERTIFICATE_HEADERS, write_broken, write_csv, write_jsonl, write_parquet
from schemas.contract import load_contract
from schemas.errors import ContractError, TransientError

CONTRACT = load_contract("certificate")
SYSTEM = {
    "certificate_id": "certificateId", "type_name": "typeName", "type_code": "typeCode", "number": "number",
    "holder_name": "holderName", "holder_code": "holderCode", "holder_code_type": "holderCodeType",
    "issuer_name": "issuerName", "issuer_code": "issuerCode", "issue_date": "issueDate",
    "valid_from": "validFrom", "valid_until": "validUntil", "division_code": "divisionCode",
    "status": "status", "updated_at": "updatedAt",
}  # fmt: skip
CHINESE = {field: CERTIFICATE_HEADERS[column] for field, column in SYSTEM.items()}
TODAY = dt.datetime.now(dt.UTC).astimezone().strftime("%Y%m%d")


def certificates(n: int, start: int = 0) -> pa.Table:
    """``n`` certificate records in the issuing system's own column names."""
    ids = range(start, start + n)
    return pa.table(
        {
            "certificateId": [
                f"1.2.156.3005.2.11100000000013338W032.11220000013544541J.{i}.001.F" for i in ids
            ],
            "typeName": ["营业执照"] * n,
            "typeCode": ["11100000000013338W032"] * n,
            "number": [f"No.{i}" for i in ids],
            "holderName": ["张三"] * n,
            "holderCode": ["11010519491231002X"] * n,
            "holderCodeType": ["111"] * n,
            "issuerName": ["北京市市场监督管理局"] * n,
            "issuerCode": ["11220000013544541J"] * n,
            "issueDate": [dt.date(2020, 1, 2)] * n,
            "validFrom": [dt.date(2020, 1, 2)] * n,
            "validUntil": [None] * n,
            "divisionCode": ["110105"] * n,
            "status": ["有效"] * n,
            "updatedAt": [dt.datetime(2025, 1, 1) + dt.timedelta(seconds=i) for i in ids],
        },
        schema=pa.schema(
            [(name, pa.string()) for name in list(SYSTEM.values())[:9]]
            + [("issueDate", pa.date32()), ("validFrom", pa.date32()), ("validUntil", pa.date32())]
            + [("divisionCode", pa.string()), ("status", pa.string()), ("updatedAt", pa.timestamp("us"))]
        ),
    )


def drop(folder: Path, columns: dict[str, str] = CHINESE, **options: object) -> FileConnector:
    settings: dict[str, object] = {"columns": columns, "cursor": "updated_at", "chunk_rows": 4}
    settings.update(options)
    return FileConnector("certificate_drop", folder, CONTRACT, **settings)  # type: ignore[arg-type]


def read(conn: FileConnector, since: str | None = None) -> pa.Table:
    return pa.Table.from_batches(list(conn.read(since=since)), schema=batch_schema(CONTRACT.arrow_schema()))


def names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_gbk_csv_with_chinese_headers_is_detected_and_mapped(tmp_path: Path) -> None:
    path = write_csv(certificates(10), tmp_path / "certs.csv", encoding="gbk")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.decode("gbk").startswith("证照标识,证照类型名称")
    conn = drop(tmp_path)
    batches = list(conn.read(since=None))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    table = pa.Table.from_batches(batches)
    row = table.to_pylist()[0]
    assert row["holder_name"] == "张三" and row["status"] == "有效"
    assert row["issue_date"] == dt.date(2020, 1, 2)
    assert row["updated_at"] == dt.datetime(2025, 1, 1)
    assert table.column(ERRORS_COLUMN).null_count == 10
    assert conn.watermark == "2025-01-01T00:00:09"


@pytest.mark.parametrize("bom", [True, False])
def test_utf8_csv_with_or_without_bom(tmp_path: Path, bom: bool) -> None:
    write_csv(certificates(3), tmp_path / "certs.csv", encoding="utf-8", bom=bom)
    table = read(drop(tmp_path))
    assert table.column("issuer_name").to_pylist() == ["北京市市场监督管理局"] * 3


def test_a_configured_encoding_overrides_detection(tmp_path: Path) -> None:
    write_csv(certificates(2), tmp_path / "certs.csv", encoding="gbk")
    assert read(drop(tmp_path, encoding="gbk")).num_rows == 2
    write_csv(certificates(2, start=5), tmp_path / "more.csv", encoding="gbk")
    conn = drop(tmp_path / "x", encoding="utf-8")
    (tmp_path / "x").mkdir()
    (tmp_path / "more.csv").rename(tmp_path / "x" / "more.csv")
    assert read(conn).num_rows == 0
    reason = (tmp_path / "x" / "rejected" / "more.csv.reason.txt").read_text(encoding="utf-8")
    assert "not utf-8 text" in reason and "line: 1" in reason


def test_jsonl_and_parquet_in_system_names(tmp_path: Path) -> None:
    write_jsonl(certificates(3), tmp_path / "a.jsonl")
    write_parquet(certificates(5, start=3), tmp_path / "b.parquet")
    table = read(drop(tmp_path, columns=SYSTEM))
    assert table.num_rows == 8
    assert sorted(table.column("number").to_pylist()) == sorted(f"No.{i}" for i in range(8))


def test_each_file_is_read_once_archived_on_commit_and_recorded_by_checksum(tmp_path: Path) -> None:
    write_csv(certificates(5), tmp_path / "day1.csv")
    conn = drop(tmp_path)
    assert read(conn).num_rows == 5
    assert read(drop(tmp_path)).num_rows == 5  # not committed: a failed batch reads the file again
    state = conn.checkpoint()
    assert state is not None and [f["name"] for f in state["files"]] == ["day1.csv"]
    drop(tmp_path).commit(json.loads(json.dumps(state)))  # another process, from the stored checkpoint
    assert names(tmp_path) == [str(LEDGER), f"archive/{TODAY}/day1.csv"]
    (entry,) = [json.loads(line) for line in (tmp_path / LEDGER).read_text().splitlines()]
    assert entry["name"] == "day1.csv" and entry["rows"] == 5 and len(entry["sha256"]) == 64
    assert read(drop(tmp_path)).num_rows == 0


def test_an_identical_file_dropped_again_is_skipped_and_archived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_csv(certificates(5), tmp_path / "day1.csv")
    conn = drop(tmp_path)
    read(conn)
    conn.commit()
    write_csv(certificates(5), tmp_path / "day1-again.csv")
    write_csv(certificates(2, start=9), tmp_path / "day2.csv")
    again = drop(tmp_path)
    with caplog.at_level(logging.INFO):
        table = read(again)
    assert table.num_rows == 2
    assert "day1-again.csv has the content of a file already processed" in caplog.text
    again.commit()
    assert f"archive/{TODAY}/day1-again.csv" in names(tmp_path)
    assert len((tmp_path / LEDGER).read_text().splitlines()) == 2


def test_two_identical_files_in_one_drop_give_rows_once(tmp_path: Path) -> None:
    write_csv(certificates(3), tmp_path / "a.csv")
    write_csv(certificates(3), tmp_path / "b.csv")
    assert read(drop(tmp_path)).num_rows == 3


def test_a_file_replaced_between_read_and_commit_stays_for_the_next_read(tmp_path: Path) -> None:
    write_csv(certificates(3), tmp_path / "day.csv")
    conn = drop(tmp_path)
    read(conn)
    write_csv(certificates(4, start=10), tmp_path / "day.csv")
    conn.commit()
    assert read(drop(tmp_path)).num_rows == 4


@pytest.mark.parametrize(
    ("kind", "name", "problem", "line"),
    [
        ("bad_bytes", "bad.csv", "neither UTF-8 nor GB18030", "line: 3"),
        ("not_csv", "noise.csv", "neither UTF-8 nor GB18030", "line: 2"),
        ("truncated_parquet", "half.parquet", "not a readable Parquet file", None),
        ("truncated_csv", "cut.csv", "Expected 15 columns, got", "line: 4"),
    ],
)
def test_an_unreadable_file_is_rejected_with_a_reason_and_the_others_go_on(
    tmp_path: Path, kind: str, name: str, problem: str, line: str | None
) -> None:
    write_csv(certificates(3), tmp_path / "good.csv")
    write_broken(tmp_path / name, kind, certificates(3))  # type: ignore[arg-type]
    conn = drop(tmp_path)
    assert read(conn).num_rows == 3
    assert (tmp_path / "rejected" / name).exists() and not (tmp_path / name).exists()
    reason = (tmp_path / "rejected" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert f"file: {name}" in reason and problem in reason
    if line:
        assert line in reason
    assert "张三" not in reason  # the row text Arrow quotes is left out


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = write_jsonl(certificates(3), tmp_path / "a.jsonl")
    path.write_bytes(path.read_bytes() + b'{"certificateId": "x", \n')
    assert read(drop(tmp_path, columns=SYSTEM)).num_rows == 0
    reason = (tmp_path / "rejected" / "a.jsonl.reason.txt").read_text(encoding="utf-8")
    assert "not JSON" in reason and "line: 4" in reason


def test_an_unknown_format_is_rejected_and_in_progress_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.xlsx").write_bytes(b"PK")
    (tmp_path / ".certs.csv.1234.tmp").write_bytes(b"partial")
    (tmp_path / "certs.csv.part").write_bytes(b"partial")
    assert read(drop(tmp_path)).num_rows == 0
    assert (
        "not a file format this source takes" in (tmp_path / "rejected" / "notes.xlsx.reason.txt").read_text()
    )
    assert (tmp_path / ".certs.csv.1234.tmp").exists() and (tmp_path / "certs.csv.part").exists()


def test_a_missing_column_rejects_the_file_and_fails_the_read_naming_both(tmp_path: Path) -> None:
    write_csv(certificates(3).drop_columns(["status"]), tmp_path / "old.csv")
    write_csv(certificates(3, start=3), tmp_path / "good.csv")
    with pytest.raises(ContractError) as caught:
        read(drop(tmp_path))
    assert isinstance(caught.value, SourceFileSchemaError)
    message = str(caught.value)
    assert "certificate_drop" in message and "old.csv" in message and "证照状态 (for field status)" in message
    assert "column: 证照状态 (for field status)" in (tmp_path / "rejected" / "old.csv.reason.txt").read_text()
    assert read(drop(tmp_path)).num_rows == 3  # the next run takes the good file


def test_a_file_broken_after_rows_were_handed_on_is_rejected_and_the_read_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(certificates(3_000), tmp_path / "big.csv")
    path.write_bytes(path.read_bytes() + b"1,2,3\n")
    monkeypatch.setattr(files_module, "CSV_BLOCK", 4_096)  # rows are handed on before the end is parsed
    seen = 0
    with pytest.raises(TransientError) as caught:
        for batch in drop(tmp_path, chunk_rows=4).read(since=None):
            seen += batch.num_rows
    assert seen > 0
    assert isinstance(caught.value, SourceFileRejectedError)
    assert "big.csv" in str(caught.value) and "certificate_drop" in str(caught.value)
    reason = (tmp_path / "rejected" / "big.csv.reason.txt").read_text()
    assert "Expected 15 columns, got 3" in reason and "line: 3002" in reason


def test_a_value_that_does_not_convert_is_a_row_error_not_a_rejected_file(tmp_path: Path) -> None:
    table = certificates(3)
    dates = pa.array(["2020-01-02", "2020-13-45", "2020-01-02"])
    table = table.set_column(table.schema.get_field_index("issueDate"), "issueDate", dates)
    write_csv(table, tmp_path / "certs.csv")
    out = read(drop(tmp_path))
    assert out.column(ERRORS_COLUMN).to_pylist() == [None, ["issue_date"], None]
    assert not (tmp_path / "rejected").exists()


def test_the_newest_file_comes_last_so_later_changes_win(tmp_path: Path) -> None:
    write_csv(certificates(2), tmp_path / "z-first.csv")
    later = certificates(2).set_column(13, "status", pa.array(["注销", "注销"]))
    later = later.set_column(14, "updatedAt", pc.add(later["updatedAt"], pa.scalar(dt.timedelta(days=1))))
    path = write_csv(later, tmp_path / "a-second.csv")
    first = (tmp_path / "z-first.csv").stat().st_mtime_ns
    os.utime(path, ns=(first + 1_000_000_000, first + 1_000_000_000))
    assert read(drop(tmp_path)).column("status").to_pylist() == ["有效", "有效", "注销", "注销"]


def test_a_missing_folder_is_transient_naming_the_source(tmp_path: Path) -> None:
    conn = drop(tmp_path / "not-mounted")
    with pytest.raises(SourceUnreachableError, match="certificate_drop"):
        conn.check()


def test_from_source_expands_the_folder(tmp_path: Path) -> None:
    config = SourceConfig.model_validate(
        {
            "name": "certificate_drop",
            "department": {"code": "11100000MB0143028R", "name": "政务服务管理局"},
            "dataset": "certificate",
            "connector": {"kind": "file", "folder": "${DROP_HOME}/certs", "formats": ["csv"]},
            "columns": CHINESE,
            "cursor": "updated_at",
        }
    )
    (tmp_path / "certs").mkdir()
    write_csv(certificates(3), tmp_path / "certs" / "a.csv")
    write_parquet(certificates(3), tmp_path / "certs" / "b.parquet")
    conn = FileConnector.from_source(config, chunk_rows=1_000, env={"DROP_HOME": str(tmp_path)})
    assert conn.folder == tmp_path / "certs" and conn.chunk_rows == 1_000
    assert read(conn).num_rows == 3
    assert (tmp_path / "certs" / "rejected" / "b.parquet").exists()


def test_writers_leave_no_temporary_files(tmp_path: Path) -> None:
    write_csv(certificates(3), tmp_path / "a.csv")
    write_jsonl(certificates(3), tmp_path / "a.jsonl")
    write_parquet(certificates(3), tmp_path / "a.parquet")
    assert names(tmp_path) == ["a.csv", "a.jsonl", "a.parquet"]
