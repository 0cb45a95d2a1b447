"""Errors of deliveries, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.errors import FatalError

if TYPE_CHECKING:
    pass


class DeliveryError(FatalError):
    """A delivery cannot be made or queued: its snapshot is gone, or a replay names none."""
