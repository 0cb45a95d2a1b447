"""Errors of the quality gate, branched from :mod:`schemas.errors` by what the caller should do."""

from __future__ import annotations

from schemas.errors import ConfigurationError, ContractError, FatalError, QualityError


class UnknownCheckError(ContractError):
    """A contract names a field or row check the quality gate does not implement."""


class ChunkShapeError(ContractError):
    """A chunk does not have the columns (or the unique ``_row`` numbers) the gate needs."""


class CheckCrashedError(FatalError):
    """An expectation raised instead of judging rows: a defect in the gate, not in the data."""


class AccountingError(QualityError, FatalError):
    """A batch's counts do not add up: rows in is not rows valid plus rows quarantined.

    The one accounting error of the hub, raised by validation and by the metadata store's
    check before a batch registers. A quality failure (exit code 4) that is also fatal: rows
    were lost or counted twice, retrying gives the same counts, and the batch must not
    register."""


class StagedBatchError(FatalError):
    """The staged Parquet files of a batch cannot be read for the duplicate-key scan."""


class BatchHeldError(QualityError):
    """The batch gate held a batch: more of its rows were quarantined than its contract allows.

    Not retried: the same rows give the same share. A steward releases the batch
    (``hub batches release``) or the source fixes its data and the batch runs again.
    """


class DataDocsError(FatalError):
    """A batch's Data Docs could not be written or rendered. The batch's data is not at
    fault: callers record it on the batch and go on."""


class ReportError(ConfigurationError):
    """A quality report was asked for something the hub does not know (a dataset, a
    department, a date)."""
