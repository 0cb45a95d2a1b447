"""File-drop simulator: certificate exports written the way departments leave them on a share.

Issuing authorities without an API export their certificates as files, often CSV in GBK
with Chinese headers. These helpers write a pyarrow Table of certificate records (in the
issuing system's own column names, see :mod:`connectors.simulator.issuing_api`) as CSV
(GB18030/GBK or UTF-8, Chinese headers by default, quoted only where needed, as
spreadsheet exports are), JSON Lines or Parquet, always
atomically: the data goes to a hidden temporary name first and is renamed when complete,
so a watcher never sees half a file. :func:`write_broken` writes deliberately unreadable
files for tests.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

CERTIFICATE_HEADERS: dict[str, str] = {
    "certificateId": "证照标识",
    "typeName": "证照类型名称",
    "typeCode": "证照类型代码",
    "number": "证照编号",
    "holderName": "持证主体",
    "holderCode": "持证主体代码",
    "holderCodeType": "持证主体代码类型",
    "issuerName": "发证机关",
    "issuerCode": "发证机关代码",
    "issueDate": "发证日期",
    "validFrom": "有效期起始",
    "validUntil": "有效期截止",
    "divisionCode": "管辖区划代码",
    "status": "证照状态",
    "updatedAt": "更新时间",
}
"""System column -> the Chinese header departments' exports carry."""
WRITE_ROWS = 50_000
"""Rows encoded at a time, so writing a large table needs little more memory than the table."""
Broken = Literal["bad_bytes", "truncated_csv", "truncated_parquet", "not_csv"]


@contextmanager
def _atomic(path: Path) -> Iterator[BinaryIO]:
    """Write to ``.<name>.<random>.tmp`` beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _renamed(table: pa.Table, headers: Mapping[str, str] | None) -> pa.Table:
    if not headers:
        return table
    return table.rename_columns([headers.get(name, name) for name in table.column_names])


def write_csv(
    table: pa.Table,
    path: Path,
    *,
    encoding: str = "gb18030",
    headers: Mapping[str, str] | None = CERTIFICATE_HEADERS,
    bom: bool = False,
) -> Path:
    """Write ``table`` as CSV in ``encoding`` (GB18030 by default, as GBK exports read),
    columns renamed through ``headers`` (None keeps them); ``bom`` adds a UTF-8 BOM."""
    table = _renamed(table, headers)
    with _atomic(path) as out:
        if bom:
            out.write(_bom(encoding))
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(table.column_names)
        out.write(header.getvalue().encode(encoding))
        options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        for start in range(0, table.num_rows, WRITE_ROWS):
            buffer = io.BytesIO()
            pa_csv.write_csv(table.slice(start, WRITE_ROWS), buffer, write_options=options)
            data = buffer.getvalue()
            out.write(data if _is_utf8(encoding) else data.decode("utf-8").encode(encoding))
    return path


def _bom(encoding: str) -> bytes:
    if not _is_utf8(encoding):
        raise ValueError(f"a byte order mark is only written for UTF-8, not {encoding}")
    return b"\xef\xbb\xbf"


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}


def write_jsonl(
    table: pa.Table, path: Path, *, headers: Mapping[str, str] | None = None, encoding: str = "utf-8"
) -> Path:
    """Write ``table`` as JSON Lines (dates and times as ISO text), one record per line."""
    table = _renamed(table, headers)
    with _atomic(path) as out:
        for batch in table.to_batches(max_chunksize=WRITE_ROWS):
            lines = [json.dumps(row, ensure_ascii=False, default=_iso) for row in batch.to_pylist()]
            if lines:
                out.write(("\n".join(lines) + "\n").encode(encoding))
    return path


def _iso(value: object) -> str:
    isoformat: Callable[[], str] | None = getattr(value, "isoformat", None)
    if isoformat is None:
        raise TypeError(f"cannot write a {type(value).__name__} as JSON")
    return isoformat()


def write_parquet(table: pa.Table, path: Path, *, headers: Mapping[str, str] | None = None) -> Path:
    """Write ``table`` as Parquet in row groups of :data:`WRITE_ROWS` rows."""
    table = _renamed(table, headers)
    with _atomic(path) as out:
        pq.write_table(table, out, row_group_size=WRITE_ROWS)
    return path


def write_broken(path: Path, kind: Broken, table: pa.Table | None = None) -> Path:
    """A file no reader should accept, for tests of the rejected folder.

    ``bad_bytes``: a CSV with a good header whose third line holds bytes valid in neither
    UTF-8 nor GB18030. ``truncated_csv``: a CSV cut in the middle of its last record.
    ``truncated_parquet``: the first half of a Parquet file (``table`` or a small one).
    ``not_csv``: binary noise under a ``.csv`` name.
    """
    sample = table if table is not None else pa.table({"certificateId": ["a", "b"], "updatedAt": ["x", "y"]})
    if kind == "bad_bytes":
        header = ",".join(CERTIFICATE_HEADERS.get(c, c) for c in sample.column_names).encode("gb18030")
        data = header + b"\n" + b",".join([b"ok"] * sample.num_columns) + b"\n" + b"\xff\xfe\x80,\x81\n"
    elif kind == "truncated_csv":
        buffer = io.BytesIO()
        pa_csv.write_csv(_renamed(sample, CERTIFICATE_HEADERS), buffer)
        text = buffer.getvalue().decode("utf-8")
        data = text.rstrip("\n").rsplit(",", sample.num_columns // 2)[0].encode("gb18030")
    elif kind == "truncated_parquet":
        buffer = io.BytesIO()
        pq.write_table(sample, buffer)
        whole = buffer.getvalue()
        data = whole[: len(whole) // 2]
    elif kind == "not_csv":
        data = bytes(range(256)) * 4
    else:
        raise ValueError(f"unknown kind of broken file {kind!r}")
    with _atomic(path) as out:
        out.write(data)
    return path
