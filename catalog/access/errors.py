"""Errors of consumer access, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from schemas.errors import AccessDeniedError, HubError


class AuthError(AccessDeniedError):
    """A credential was missing or refused; ``system`` is known when the credential was valid."""

    def __init__(self, message: str, *, system: str | None = None, department: str | None = None) -> None:
        super().__init__(message)
        self.system, self.department = system, department


class PurposeRequiredError(AccessDeniedError):
    """A read without a stated purpose (the regulation asks for one on every use)."""


class ReplayError(HubError):
    """A logged entry that cannot be re-run (not a query, refused, or its snapshot is gone)."""

    exit_code = 2
