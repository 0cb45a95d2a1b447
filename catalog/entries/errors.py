"""Errors of the catalogue entries, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.errors import ContractError, TransientError

if TYPE_CHECKING:
    pass


class CatalogueError(ContractError):
    """A catalogue entry cannot be found, edited or published as asked."""


class UnknownDatasetError(CatalogueError):
    """No contract and no catalogue entry has this name."""


class ContractChangeRefusedError(CatalogueError):
    """A new contract version would take columns away that consumers rely on."""


class ConcurrentEditError(TransientError):
    """Another change to the same entry was saved first."""
