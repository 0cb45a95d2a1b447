"""Errors of the catalogue: metadata store, shared tables and queries.

Each one sits on the :mod:`schemas.errors` branch that tells the caller what to do:
an unreachable database is transient (retry), a wrong schema is a contract problem,
broken accounting is a quality failure, a missing batch or table is fatal.
"""

from __future__ import annotations

from quality.errors import AccountingError
from schemas.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContractError,
    FatalError,
    QualityError,
    TransientError,
)


class MetadataUnavailableError(TransientError):
    """The hub metadata database cannot be reached."""


class BatchNotFoundError(FatalError):
    """No batch with this id is recorded."""


class ReleaseRefusedError(QualityError):
    """A batch cannot be released: it is not held by the quality gate, or a later batch of
    its source superseded it."""


class QuarantineInputError(ContractError):
    """Quarantined rows or violations handed to the store are not in the expected shape."""


class CatalogUnavailableError(TransientError):
    """The Iceberg catalog or warehouse cannot be reached, or a concurrent commit won."""


class TableSchemaMismatchError(ContractError):
    """A shared table exists with a schema other than its contract's."""


class BatchDataError(ContractError):
    """Data handed to a commit does not fit the contract's published schema."""


class DatasetNotFoundError(FatalError):
    """No shared table is registered for this dataset."""


class QueryError(FatalError):
    """DuckDB rejected or failed a query."""


class QueryDeniedError(AccessDeniedError):
    """A query tried to reach files, settings or extensions the sandbox does not allow."""


class QuerySyntaxError(QueryDeniedError):
    """A consumer's query does not parse (refused before anything runs)."""


class QueryTimeoutError(QueryDeniedError):
    """A consumer's query ran longer than its time limit and was interrupted."""


class ExtensionUnavailableError(ConfigurationError):
    """A DuckDB extension the query engine was told to use is not installed as a package."""


__all__ = ["AccountingError"]  # the one accounting error, from quality.errors
