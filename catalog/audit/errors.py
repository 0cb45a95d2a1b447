"""Errors of the access log, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from schemas.errors import AccessDeniedError, ConfigurationError, FatalError


class AuditIntegrityError(FatalError):
    """The access log does not verify: an entry or checkpoint was altered, removed or added."""


class RetentionError(AccessDeniedError):
    """A purge would remove entries younger than the configured retention."""


class AuditKeyError(ConfigurationError):
    """The audit keys needed to append or verify are missing or do not fit."""
