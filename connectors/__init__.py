"""Department connectors: read a source system as Arrow record batches in a contract's schema.

``hub.settings`` imports ``connectors.settings`` and DAG files import settings at parse
time, so this package imports nothing heavy up front: the names below load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ERRORS_COLUMN": "connectors.base",
    "Connector": "connectors.base",
    "SqlConnector": "connectors.sql",
    "open_connector": "connectors.factory",
    "to_batch": "connectors.convert",
    "SourceQueryError": "connectors.errors",
    "SourceConfigError": "connectors.errors",
    "SourceDataError": "connectors.errors",
    "SourceSchemaError": "connectors.errors",
    "SourceUnreachableError": "connectors.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'connectors' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
