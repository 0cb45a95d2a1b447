"""Errors of the shared catalogue: an entry that cannot be found, edited or published as
asked, a contract change that would take columns away, and an edit that lost a race.

A refusal is a contract problem (the caller fixes the contract or the edit); a concurrent
edit is transient (look again and repeat the command).
"""

from __future__ import annotations

from schemas.errors import ContractError, TransientError


class CatalogueError(ContractError):
    """A catalogue entry cannot be found, edited or published as asked."""


class UnknownDatasetError(CatalogueError):
    """No contract and no catalogue entry has this name."""


class ContractChangeRefusedError(CatalogueError):
    """A new contract version would take columns away that consumers rely on."""


class ConcurrentEditError(TransientError):
    """Another change to the same entry was saved first."""
