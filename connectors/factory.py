"""One way to open any source: the connector kind named in its file picks the class.

The HTTP and file connectors are imported only when a source of their kind is opened, so
a hub that reads only databases never loads their dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.errors import SourceConfigError

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.config import SourceConfig


def open_connector(
    source: SourceConfig, *, chunk_rows: int, env: Mapping[str, str] | None = None
) -> Connector:
    """A connector for ``source``; ``env`` is where ``${VAR}`` and ``*_env`` references are
    looked up (default: the process environment)."""
    kind = source.connector.kind
    if kind == "sql":
        from connectors.sql import SqlConnector

        return SqlConnector.from_source(source, chunk_rows=chunk_rows, env=env)
    if kind == "http":
        from connectors.http import HttpConnector

        return HttpConnector.from_source(source, chunk_rows=chunk_rows, env=env)
    if kind == "file":
        from connectors.files import FileConnector

        return FileConnector.from_source(source, chunk_rows=chunk_rows, env=env)
    raise SourceConfigError(f"source {source.name!r}: no connector of kind {kind!r}")
