"""Errors of sharing and its calendar, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from schemas.errors import AccessDeniedError, ConfigurationError


class CalendarError(ConfigurationError):
    """A calendar file is missing or malformed."""


class CalendarRangeError(ConfigurationError):
    """A date falls in a year the calendar does not list."""


class SharingError(AccessDeniedError):
    """A sharing action or request was refused; the message says why (exit code 5)."""


class RegistryError(ConfigurationError):
    """A registry entry cannot be made as given (an invalid code, a duplicate)."""
