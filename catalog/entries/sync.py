"""Entries follow their contracts.

A missing entry is generated from its contract. A new contract version regenerates the entry
when it only adds columns or changes metadata; one that drops, renames or retypes a column
needs a major version and no active grant still including that column, and is taken in by
a steward (``hub catalog sync``), which also evolves the shared table
(:mod:`catalog.tables.iceberg`). A steward's edit of a field the contract does not own
outlives later contract versions.
"""

from __future__ import annotations

import json

from catalog.entries.changes import contract_change, version_tuple
from catalog.entries.content import entry_content
from catalog.entries.errors import ContractChangeRefusedError
from catalog.entries.generation import contract_digest, generate
from catalog.entries.records import EntryRecords
from catalog.entries.views import SyncReport
from catalog.metadata import CatalogueEntry
from catalog.sharing import grants_including, require_steward
from schemas.contract import Contract
from schemas.errors import AccessDeniedError

SYSTEM_AUTHOR = "hub"
"""Author of versions the hub makes itself (generated from a contract)."""


class ContractSync(EntryRecords):
    """Keeps the stored entries in step with the contracts."""

    def sync(
        self, dataset: str | None = None, *, steward: str | None = None, note: str | None = None
    ) -> SyncReport:
        """Generate missing entries and take in new contract versions.

        Without ``steward`` only changes no consumer can lose by are taken in (new columns,
        metadata); with one (checked by :func:`catalog.sharing.grants.require_steward`), breaking
        changes are too once no active grant includes the columns they take away, and the
        shared tables are evolved. What could not be taken in is reported, with the reason.
        """
        names = [self.known(dataset)] if dataset else sorted(self.contracts)
        report = SyncReport()
        for name in names:
            contract = self.contracts.get(name)
            if contract is None:
                continue
            acting = None
            if steward is not None:
                try:
                    acting = require_steward(
                        self.store,
                        steward,
                        contract.owner_department.code,
                        action="catalog.sync",
                        dataset=name,
                    )
                except AccessDeniedError:
                    if dataset is not None:
                        raise
            try:
                done = self._sync_one(contract, steward=acting, note=note)
            except ContractChangeRefusedError as exc:
                report.pending[name] = str(exc)
                continue
            if done:
                report.done[name] = done
        return report

    def _sync_one(self, contract: Contract, *, steward: str | None, note: str | None) -> str | None:
        digest = contract_digest(contract)
        with self.store.session() as session:
            entry = session.get(CatalogueEntry, contract.name)
            latest = None if entry is None else self._version_row(session, contract.name, entry.version)
        if entry is None or latest is None:
            values = generate(contract)
            content = entry_content(values, where=f"catalogue entry of {contract.name}")
            self._save(
                contract,
                content,
                edited=(),
                change="generated",
                note=note or f"generated from contract {contract.name} {contract.version}",
                author=steward or SYSTEM_AUTHOR,
                digest=digest,
                expected_version=0,
            )
            return f"generated from contract {contract.version}"
        if latest.contract_digest == digest:
            return None
        where = f"contract {contract.name} {contract.version}"
        if latest.contract_version == contract.version:
            raise ContractChangeRefusedError(
                f"{where} changed since the catalogue took it in, but its version did not: give it a "
                "new version (patch for descriptions, minor for added columns, major for dropped, "
                "renamed or retyped ones)"
            )
        if version_tuple(contract.version) < version_tuple(latest.contract_version):
            raise ContractChangeRefusedError(
                f"{where} is older than version {latest.contract_version} the catalogue already holds"
            )
        previous = json.loads(latest.content)
        change = contract_change(previous["items"], previous["keys"], latest.contract_version, contract)
        order = ("none", "patch", "minor", "major")
        if order.index(change.bump) < order.index(change.needed_bump):
            raise ContractChangeRefusedError(
                f"{where} {change.columns.describe()} (from {change.previous}): that needs a "
                f"{change.needed_bump} version, not a {change.bump} one"
            )
        if change.columns.breaking:
            lost = change.columns.removed + tuple(name for name, _, _ in change.columns.retyped)
            grants = grants_including(self.store, contract.name, lost)
            if grants:
                named = "; ".join(
                    f"grant #{g.id} ({g.system} of {g.department}: {', '.join(g.columns)})" for g in grants
                )
                raise ContractChangeRefusedError(
                    f"{where} {change.columns.describe()}, but active grants include "
                    f"{', '.join(lost)}: {named}. Migrate them first (grant the new columns, revoke "
                    "these), then sync again"
                )
            if steward is None:
                raise ContractChangeRefusedError(
                    f"{where} {change.columns.describe()} (from {change.previous}); no active grant "
                    f"includes those columns: a steward takes it in with `hub catalog sync {contract.name} "
                    "--as NAME`, which also evolves the shared table"
                )
        if steward is not None and self.tables is not None and contract.name in self.tables.datasets():
            self.tables.evolve(contract, allow_breaking=change.columns.breaking, renames=change.renames)
        edited = tuple(json.loads(latest.edited))
        values = generate(contract)
        for name in edited:
            # A steward's value stays, unless it is empty and the contract now says something.
            if previous.get(name) not in (None, [], "") or values.get(name) in (None, [], ""):
                values[name] = previous.get(name)
        values["publication_date"] = previous.get("publication_date")
        content = entry_content(values, where=f"catalogue entry of {contract.name} from {where}")
        self._save(
            contract,
            content,
            edited=edited,
            change="regenerated",
            note=note
            or f"contract {contract.name} {change.previous} -> {contract.version}: {change.columns.describe()}",
            author=steward or SYSTEM_AUTHOR,
            digest=digest,
            expected_version=latest.version,
        )
        return f"{change.previous} -> {contract.version}: {change.columns.describe()}"
