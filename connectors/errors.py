"""Errors raised while reading department sources, grouped by what the caller should do.

Each message names the source, the URL without its password, the table, the row and
the field as far as they are known, and never a data value: source rows hold personal
data, so only a value's type is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.errors import ConfigurationError, ContractError, FatalError, TransientError, redact_url


class SourceConfigError(ConfigurationError):
    """The connector was set up wrongly (bad URL, unknown field in the column mapping)."""


class SourceUnreachableError(TransientError):
    """The source database cannot be reached now; the task should retry later."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source = source
        self.url = redact_url(url)
        super().__init__(f"source {source!r}: cannot reach {self.url}: {reason}")


class SourceSchemaError(ContractError):
    """The source table lacks the table or columns its contract mapping needs."""

    def __init__(self, source: str, table: str, missing: Sequence[str], *, detail: str = "") -> None:
        self.source = source
        self.table = table
        self.missing = tuple(missing)
        what = f"missing column(s) {', '.join(self.missing)}" if self.missing else detail
        super().__init__(f"source {source!r}, table {table!r}: {what}")


class SourceQueryError(FatalError):
    """The source refused the read (permissions, a column of an unreadable type): retrying
    the same query will not help, the department or the source file must change."""

    def __init__(self, source: str, table: str, reason: str) -> None:
        self.source = source
        self.table = table
        super().__init__(f"source {source!r}, table {table!r}: the read was refused: {reason}")


class SourceDataError(ContractError):
    """A source value cannot be converted to its contract type.

    Connectors flag such rows for quarantine instead (:data:`connectors.base.ERRORS_COLUMN`);
    this error is for callers that cannot quarantine.
    """

    def __init__(self, source: str, row: int, field: str, value_type: str | None, expected: str) -> None:
        self.source = source
        self.row = row
        self.field = field
        self.value_type = value_type
        what = f"a value of type {value_type}" if value_type else "a value"
        super().__init__(
            f"source {source!r}, row {row}, field {field!r}: {what} cannot be read as {expected}"
        )
