"""Appending to the access log from several processes at once."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

_WRITER = """
import sys
from catalog.audit import record_access
from catalog.metadata import MetadataStore
from hub.settings import get_settings
get_settings()  # as every hub process does first: hands the catalogue its settings
store = MetadataStore(sys.argv[1], schema=sys.argv[4] or None)
for i in range(int(sys.argv[2])):
    record_access(store, action="query", outcome="allowed", system=sys.argv[3], rows=i)
store.dispose()
"""


def run_writers(
    url: str, *, processes: int, each: int, env: dict[str, str] | None = None, schema: str | None = None
) -> None:
    """Append from several processes at once; each fails the test if it fails."""
    import os

    environment = {**os.environ, **(env or {})}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(each), f"writer-{n}", schema or ""],
            cwd=ROOT,
            env=environment,
            stderr=subprocess.PIPE,
        )
        for n in range(processes)
    ]
    failures = [p.stderr.read().decode() for p in procs if p.wait(timeout=300) != 0 and p.stderr]
    assert failures == []
