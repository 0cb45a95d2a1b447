"""Memory benchmark: peak RSS of the HTTP and file connectors over N and 5N certificates.

The issue asks that every connector streams: peak memory for 1M and 5M source rows
differs by less than 20%. The SQL connector is measured by ``bench/extract.py``; this
measures the other two kinds through the real source files shipped with the hub
(``connectors/sources/certificate_api.yaml`` and ``certificate_files.yaml``):

- HTTP: N certificates made by the certificate simulator (with its default defects),
  under the issuing system's field names, served by the issuing API simulator (in this
  process, so its records are not counted; injected duplicate identifiers collapse into
  one record there), read by ``HttpConnector`` in a child process;
- file: the same records as one GB18030 CSV with the system's Chinese headers in a
  fresh hub home's drop folder, read by ``FileConnector`` in a child process.

Each read runs in its own interpreter and reports its own high-water mark (VmHWM), so
each peak is that connector's alone. N defaults to 200,000 (``BENCH_MEMORY_ROWS``): the
simulated API keeps its records as Python objects and serves JSON pages from one thread,
so 5 x 1M would measure the simulator more than the connector.

    python bench/memory.py                      # 200,000 and 1,000,000 rows
    BENCH_MEMORY_ROWS=50000 python bench/memory.py
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from bench.extract import READ_AND_REPORT, child  # noqa: E402

DEFAULT_ROWS = 200_000
FACTOR = 5
"""The issue compares 1M with 5M rows: the same ratio at a size the simulator serves well."""
CHUNK_ROWS = 50_000
"""The connector settings' default chunk size."""
SEED = 11
SOURCES = ROOT / "connectors" / "sources"

_READ = (
    """
import json, sys, time
from pathlib import Path
from connectors.config import load_source_file
from connectors.factory import open_connector
import pyarrow as pa, pyarrow.compute as pc
source = load_source_file(Path(sys.argv[1]))
connector = open_connector(source, chunk_rows=int(sys.argv[2]))
"""
    + READ_AND_REPORT
)


def _certificates(rows: int) -> pa.Table:
    from connectors.simulator import certificate

    return pa.Table.from_batches(list(certificate.generate(rows, seed=SEED)), schema=certificate.schema())


def _http(rows: int, home: Path) -> tuple[dict[str, float], int]:
    from connectors.simulator import certificate
    from connectors.simulator.issuing_api import IssuingApi

    token = secrets.token_urlsafe(16)
    api = IssuingApi(certificate.to_system_columns(_certificates(rows)), token=token)
    with api:
        env = {
            "HUB_HOME": str(home),
            "HUB_SOURCE_CERTIFICATE_API_URL": str(api.base_url),
            "HUB_SOURCE_CERTIFICATE_API_TOKEN": token,
        }
        result, _ = child(_READ, str(SOURCES / "certificate_api.yaml"), str(CHUNK_ROWS), env=env)
    return result, len(api)


def _files(rows: int, home: Path) -> tuple[dict[str, float], int]:
    from connectors.simulator import certificate
    from connectors.simulator.drop import write_csv

    folder = home / "drops" / "certificates"
    folder.mkdir(parents=True, exist_ok=True)
    table = certificate.to_csv_columns(_certificates(rows))
    write_csv(table, folder / "certificates.csv", headers=None)
    del table
    result, _ = child(
        _READ, str(SOURCES / "certificate_files.yaml"), str(CHUNK_ROWS), env={"HUB_HOME": str(home)}
    )
    return result, rows


def run(rows: int) -> list[dict[str, object]]:
    """Read ``rows`` and ``FACTOR * rows`` certificates through each connector kind; one
    dict per read, the larger read with ``peak_vs_1x`` (its peak over the smaller's)."""
    results: list[dict[str, object]] = []
    for kind, read in (("http", _http), ("file", _files)):
        peaks: list[float] = []
        for n in (rows, rows * FACTOR):
            with tempfile.TemporaryDirectory(prefix="hub-bench-memory-") as home:
                result, served = read(n, Path(home))
            if result["rows"] != served:
                raise SystemExit(f"{kind} connector read {result['rows']} of {served} rows")
            peaks.append(float(result["peak_mib"]))
            entry: dict[str, object] = {
                "what": f"{kind} connector, {n // rows}x rows",
                "kind": kind,
                "rows": result["rows"],
                "seconds": result["seconds"],
                "rows_per_s": result["rows"] / result["seconds"],
                "peak_mib": result["peak_mib"],
            }
            if len(peaks) == 2:
                entry["peak_vs_1x"] = peaks[1] / peaks[0]
            results.append(entry)
    return results


def main() -> None:
    rows = int(os.environ.get("BENCH_MEMORY_ROWS", str(DEFAULT_ROWS)))
    for result in run(rows):
        ratio = f"  peak_vs_1x {result['peak_vs_1x']:.2f}" if "peak_vs_1x" in result else ""
        print(
            f"{result['what']:<30} {result['rows']:>10,} rows {result['seconds']:>7.2f} s "
            f"{result['rows_per_s']:>9,.0f} rows/s {result['peak_mib']:>7.0f} MiB{ratio}"
        )


if __name__ == "__main__":
    main()
