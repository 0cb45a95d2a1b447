"""The tamper-evident access log: recording an entry, the audit keys, the hash chain and
signed checkpoints, verification, reports, exports and retention. Above the metadata only:
every other concept records into it.
"""

from __future__ import annotations

from catalog.audit.log import (
    AccessLog,
    AuditIntegrityError,
    AuditKeys,
    Filters,
    GroupAppender,
    Report,
    RetentionError,
    Tally,
    Verification,
    begin_write,
    load_keys,
    public_key_pem,
    read_public_keys,
    record_access,
    require_auditor,
)

__all__ = [
    "AccessLog",
    "AuditIntegrityError",
    "AuditKeys",
    "Filters",
    "GroupAppender",
    "Report",
    "RetentionError",
    "Tally",
    "Verification",
    "begin_write",
    "load_keys",
    "public_key_pem",
    "read_public_keys",
    "record_access",
    "require_auditor",
]
