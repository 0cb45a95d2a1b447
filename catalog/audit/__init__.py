"""The tamper-evident access log: recording an entry, the audit keys, the hash chain and
signed checkpoints, verification, reports, exports and retention. Above the metadata only:
every other concept records into it.
"""

from __future__ import annotations

from catalog.audit.appender import GroupAppender
from catalog.audit.chain import begin_write
from catalog.audit.documents import GENESIS, entry_hash
from catalog.audit.errors import AuditIntegrityError, AuditKeyError, RetentionError
from catalog.audit.keys import AuditKeys, load_keys, public_key_pem, read_public_keys
from catalog.audit.log import AccessLog
from catalog.audit.record import record_access, require_auditor
from catalog.audit.reports import Filters, Report, Tally
from catalog.audit.verify import Verification

__all__ = [
    "GENESIS",
    "AccessLog",
    "AuditIntegrityError",
    "AuditKeyError",
    "AuditKeys",
    "Filters",
    "GroupAppender",
    "Report",
    "RetentionError",
    "Tally",
    "Verification",
    "begin_write",
    "entry_hash",
    "load_keys",
    "public_key_pem",
    "read_public_keys",
    "record_access",
    "require_auditor",
]
