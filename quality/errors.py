"""Errors of the quality gate, branched from :mod:`hub.errors` by what the caller should do."""

from __future__ import annotations

from hub.errors import ContractError, FatalError


class UnknownCheckError(ContractError):
    """A contract names a field or row check the quality gate does not implement."""


class ChunkShapeError(ContractError):
    """A chunk does not have the columns (or the unique ``_row`` numbers) the gate needs."""


class CheckCrashedError(FatalError):
    """An expectation raised instead of judging rows: a defect in the gate, not in the data."""


class AccountingError(FatalError):
    """Rows in does not equal rows valid plus rows quarantined."""


class StagedBatchError(FatalError):
    """The staged Parquet files of a batch cannot be read for the duplicate-key scan."""
