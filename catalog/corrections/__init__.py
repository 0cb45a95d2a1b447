"""Correction requests (校核纠错): opened from quarantined rows or filed by consumers,
answered by the source department within working days, closed by a corrected record.
"""

from __future__ import annotations

from catalog.corrections.corrections import (
    STAGED_SCHEMA,
    Corrections,
    digest,
    due_date,
    file_request,
    key_tokens,
    masked_record,
    published_keys,
    stage_rows,
)

__all__ = [
    "STAGED_SCHEMA",
    "Corrections",
    "digest",
    "due_date",
    "file_request",
    "key_tokens",
    "masked_record",
    "published_keys",
    "stage_rows",
]
