"""Errors raised while reading department sources, grouped by what the caller should do.

Each message names the source, the URL without its password, the table, the row and
the field as far as they are known, and never a data value: source rows hold personal
data, so only a value's type is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContractError,
    FatalError,
    TransientError,
    redact_url,
)

REJECTED = "rejected"
"""Folder of a drop where unreadable files go, each with a reason file beside it (named in messages)."""


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


class SourceAccessDeniedError(AccessDeniedError):
    """The source API refused the hub's credential (401/403)."""

    def __init__(self, source: str, url: str, status: int) -> None:
        self.source = source
        self.url = redact_url(url)
        self.status = status
        super().__init__(
            f"source {source!r}: {self.url} answered HTTP {status}: the token is missing, wrong or "
            "not allowed to read these records"
        )


class SourceRequestError(FatalError):
    """The source API rejected the request itself (a 4xx other than 401/403)."""

    def __init__(self, source: str, url: str, status: int, detail: str = "") -> None:
        self.source = source
        self.url = redact_url(url)
        self.status = status
        super().__init__(f"source {source!r}: {self.url} answered HTTP {status}{detail}")


class SourceResponseError(ContractError):
    """The source API answered, but not in the paginated-records protocol."""

    def __init__(self, source: str, url: str, page: int, problem: str) -> None:
        self.source = source
        self.url = redact_url(url)
        self.page = page
        super().__init__(f"source {source!r}: {self.url}, page {page}: {problem}")


class SourceFileError(ConfigurationError):
    """A source file is missing or wrong; the message lists every problem."""


class SourceFileRejectedError(TransientError):
    """A file failed after part of it was read; it was rejected, and a new read goes on without it."""

    def __init__(self, source: str, name: str, problem: str, rows: int) -> None:
        self.source = source
        self.name = name
        super().__init__(
            f"source {source!r}: file {name} became unreadable after {rows} row(s) were read ({problem}); "
            f"it was moved to {REJECTED}/, read the source again to take the other files"
        )


class SourceFileSchemaError(SourceSchemaError):
    """Dropped files lack mapped columns: the source's export changed. The files were rejected."""

    def __init__(self, source: str, missing: Mapping[str, Sequence[str]]) -> None:
        self.source = source
        self.table = ", ".join(missing)
        self.missing = tuple(dict.fromkeys(c for columns in missing.values() for c in columns))
        files = "; ".join(
            f"file {name}: missing column(s) {', '.join(cols)}" for name, cols in missing.items()
        )
        ContractError.__init__(
            self,
            f"source {source!r}: {files}. The file(s) were moved to {REJECTED}/; the other new files "
            "are read by the next run",
        )
