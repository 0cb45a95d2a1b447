"""Catalogue entries as rows of the hub metadata: one ``hub_catalogue_entries`` row per
dataset, pointing at its current and published versions, and one ``hub_catalogue_versions``
row per version (content, who, when, why, and the contract it came from).

A version is added only after the one the writer read: two stewards changing the same entry
at once get one version each or a clear refusal, never a lost edit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.entries.content import EntryContent
from catalog.entries.errors import CatalogueError, ConcurrentEditError, UnknownDatasetError
from catalog.entries.generation import all_contracts
from catalog.metadata import CatalogueEntry, CatalogueVersion
from schemas.contract import Contract

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.tables import SharedTables


class EntryRecords:
    """The stored entries and their versions; the base the catalogue's reading and writing share.

    ``contracts`` defaults to every contract in ``schemas/``; tests hand in others.
    ``tables`` (optional) gives each entry its live facts and lets a steward's sync evolve
    the shared tables.
    """

    def __init__(
        self,
        store: MetadataStore,
        contracts: Mapping[str, Contract] | None = None,
        *,
        tables: SharedTables | None = None,
    ) -> None:
        self.store = store
        self.contracts = dict(contracts) if contracts is not None else all_contracts()
        self.tables = tables

    def known(self, dataset: str) -> str:
        """The dataset name if it has a contract or an entry, else a refusal naming the known ones."""
        if dataset in self.contracts:
            return dataset
        with self.store.session() as session:
            if session.get(CatalogueEntry, dataset) is not None:
                return dataset
        raise UnknownDatasetError(self._unknown_message(dataset))

    def contract_of(self, dataset: str, version: int) -> dict[str, Any]:
        """The contract (as JSON) an entry version came from."""
        with self.store.session() as session:
            row = self._version_row(session, self.known(dataset), version)
            if row is None:
                raise CatalogueError(f"catalogue entry {dataset} has no version {version}")
            return dict(json.loads(row.contract))

    def _contract_of(self, dataset: str, version: int) -> Contract:
        """The contract an entry version came from (a pending newer one is not it)."""
        contract = self.contracts.get(dataset)
        stored = self.contract_of(dataset, version)
        if contract is not None and stored.get("version") == contract.version:
            return contract
        return Contract.model_validate(stored)

    def _save(
        self,
        contract: Contract | None,
        content: EntryContent,
        *,
        edited: Sequence[str],
        change: str,
        note: str,
        author: str,
        digest: str | None,
        expected_version: int,
        dataset: str | None = None,
    ) -> int:
        """Add a version after ``expected_version``; a concurrent change makes this fail cleanly."""
        name = dataset or content.dataset
        version = expected_version + 1
        moved = ConcurrentEditError(
            f"catalogue entry {name}: another change was saved first (it is now past version "
            f"{expected_version}); look at `hub catalog show {name}` and run the command again"
        )
        try:
            with self.store.session() as session:
                entry = session.get(CatalogueEntry, name)
                previous = None if entry is None else self._version_row(session, name, entry.version)
                if (entry.version if entry else 0) != expected_version:
                    raise moved
                if entry is None:
                    entry = CatalogueEntry(
                        dataset=name, version=version, contract_version=content.contract_version
                    )
                    session.add(entry)
                    session.flush()
                session.add(
                    CatalogueVersion(
                        dataset=name,
                        version=version,
                        change=change,
                        note=note,
                        author=author,
                        contract_version=content.contract_version,
                        contract_digest=digest or (previous.contract_digest if previous else ""),
                        content=content.model_dump_json(),
                        edited=json.dumps(sorted(edited)),
                        contract=(
                            json.dumps(contract.model_dump(mode="json", by_alias=True), ensure_ascii=False)
                            if contract is not None and digest is not None
                            else (previous.contract if previous else "{}")
                        ),
                    )
                )
                entry.version = version
                entry.contract_version = content.contract_version
                session.flush()
        except IntegrityError:
            raise moved from None
        return version

    @staticmethod
    def _version_row(session: Session, dataset: str, version: int) -> CatalogueVersion | None:
        return session.scalars(
            select(CatalogueVersion).where(
                CatalogueVersion.dataset == dataset, CatalogueVersion.version == version
            )
        ).first()

    def _entry_row(self, session: Session, dataset: str) -> CatalogueEntry:
        entry = session.get(CatalogueEntry, dataset)
        if entry is None:
            raise UnknownDatasetError(self._unknown_message(dataset))
        return entry

    def _unknown_message(self, dataset: str) -> str:
        with self.store.session() as session:
            stored = set(session.scalars(select(CatalogueEntry.dataset)))
        known = ", ".join(sorted(stored | set(self.contracts))) or "none"
        return f"no catalogue entry for dataset {dataset!r} (known: {known})"
