"""Consumer access: the DuckDB gateway that holds only a grant, queries on record,
verification (核验), rate and enumeration limits, and the consumers' HTTP API.
"""

from __future__ import annotations

from catalog.access.api import create_app
from catalog.access.consumer import QueryRequest, replay_query, run_query
from catalog.access.gateway import Gateway, Limits, referenced_tables
from catalog.access.ratelimit import EnumerationGuard, TokenBuckets, retry_after
from catalog.access.verification import VerificationIndex, load_index
from catalog.tables.verification_index import (
    INDEX_NAMESPACE,
    VERIFY_CONTEXT,
    IndexStager,
    index_name,
    index_rows,
    name_digest,
    normalise_key,
    normalise_name,
    register_staged,
    verify_key,
)

__all__ = [
    "INDEX_NAMESPACE",
    "VERIFY_CONTEXT",
    "EnumerationGuard",
    "Gateway",
    "IndexStager",
    "Limits",
    "QueryRequest",
    "TokenBuckets",
    "VerificationIndex",
    "create_app",
    "index_name",
    "index_rows",
    "load_index",
    "name_digest",
    "normalise_key",
    "normalise_name",
    "referenced_tables",
    "register_staged",
    "replay_query",
    "retry_after",
    "run_query",
    "verify_key",
]
