"""One way to open any source: the connector kind named in its file picks the class.

The HTTP and file connectors are imported only when a source of their kind is opened, so
a hub that reads only databases never loads their dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def settle_registered(
    source: SourceConfig, state: dict[str, Any] | None, *, env: Mapping[str, str] | None = None
) -> None:
    """What a source does once a batch it read is registered, from the state recorded on the
    batch: a file drop records and archives the files it read; a database or an API keeps
    its records, and the watermark on the batch record is all the progress there is.

    No connector is opened: no source URL or credential is resolved to commit a batch.
    """
    config = source.connector
    if config.kind == "file":
        from connectors.config import FileConnectorConfig, expand
        from connectors.files import archive_registered

        assert isinstance(config, FileConnectorConfig)
        archive_registered(Path(expand(config.folder, env)), source.name, state)
