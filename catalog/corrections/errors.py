"""Errors of correction requests, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from schemas.errors import FatalError


class CorrectionNotFoundError(FatalError):
    """No correction request with this id is recorded."""


class CorrectionStateError(FatalError):
    """A correction request cannot do this in its state (closed, or an empty message)."""


class RecordNotSharedError(FatalError):
    """A correction was filed against a record or field the shared table does not hold."""
