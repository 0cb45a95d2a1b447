"""Reading the catalogue: entries (current or a given version), what consumers see, the
history of an entry, search, and the live facts of a dataset's data (current snapshot and
rows, last successful batch, achieved k-anonymity).

Reading first takes in what the contracts say (:mod:`catalog.entries.sync`), so an entry is
never shown behind its contract without saying why (``pending``).
"""

from __future__ import annotations

import json

from sqlalchemy import select

from catalog.entries.content import EntryContent
from catalog.entries.errors import CatalogueError
from catalog.entries.sync import ContractSync
from catalog.entries.views import EntryView, Facts, SearchHit, VersionInfo
from catalog.metadata import Batch, BatchStatus, CatalogueEntry, CatalogueVersion


class CatalogueReader(ContractSync):
    """The entries as stewards and consumers read them."""

    def entries(self, *, facts: bool = True) -> list[EntryView]:
        """The current version of every entry (generating missing ones first)."""
        report = self.sync()
        with self.store.session() as session:
            names = list(session.scalars(select(CatalogueEntry.dataset).order_by(CatalogueEntry.dataset)))
        return [self.entry(n, facts=facts, pending=report.pending.get(n), synced=True) for n in names]

    def entry(
        self,
        dataset: str,
        version: int | None = None,
        *,
        facts: bool = True,
        pending: str | None = None,
        synced: bool = False,
    ) -> EntryView:
        """One version of an entry (the current one by default)."""
        dataset = self.known(dataset)
        if not synced:
            pending = self.sync(dataset).pending.get(dataset)
        with self.store.session() as session:
            entry = self._entry_row(session, dataset)
            number = entry.version if version is None else version
            row = self._version_row(session, dataset, number)
            if row is None:
                raise CatalogueError(
                    f"catalogue entry {dataset} has no version {number} (versions 1-{entry.version})"
                )
            return EntryView(
                dataset=dataset,
                version=row.version,
                current_version=entry.version,
                published_version=entry.published_version,
                published_at=entry.published_at,
                published_by=entry.published_by,
                content=EntryContent.model_validate_json(row.content),
                edited=tuple(json.loads(row.edited)),
                change=row.change,
                note=row.note,
                author=row.author,
                created_at=row.created_at,
                pending=pending,
                facts=self.facts(dataset) if facts else None,
            )

    def published(self) -> list[EntryView]:
        """The published version of every published entry: what consumers see."""
        views = self.entries(facts=True)
        return [
            self.entry(v.dataset, v.published_version, synced=True, pending=v.pending)
            if v.published_version != v.version
            else v
            for v in views
            if v.published_version is not None
        ]

    def history(self, dataset: str) -> list[VersionInfo]:
        """Every version of an entry, oldest first."""
        dataset = self.known(dataset)
        self.sync(dataset)
        with self.store.session() as session:
            entry = self._entry_row(session, dataset)
            rows = session.scalars(
                select(CatalogueVersion)
                .where(CatalogueVersion.dataset == dataset)
                .order_by(CatalogueVersion.version)
            )
            return [
                VersionInfo(
                    version=r.version,
                    change=r.change,
                    note=r.note,
                    author=r.author,
                    created_at=r.created_at,
                    contract_version=r.contract_version,
                    published=r.version == entry.published_version,
                )
                for r in rows
            ]

    def search(self, text: str) -> list[SearchHit]:
        """Entries whose names, code, abstracts, keywords or items (zh or en) contain ``text``."""
        needle = text.strip().casefold()
        if not needle:
            raise CatalogueError("search text is empty")
        hits = []
        for view in self.entries(facts=False):
            c = view.content
            places: list[tuple[str, str | None]] = [
                ("name", c.resource_name),
                ("name", c.resource_name_en),
                ("resource code", c.resource_code),
                ("provider", c.provider),
                ("abstract", c.abstract),
                ("abstract", c.abstract_en),
                ("classification", " ".join(filter(None, (c.class_name, c.item_name, c.catalogue_name)))),
            ]
            places += [("keyword", k) for k in c.keywords]
            places += [(f"item {i.column}", f"{i.name} {i.name_en} {i.column} {i.field}") for i in c.items]
            matched = tuple(
                dict.fromkeys(where for where, value in places if value and needle in value.casefold())
            )
            if matched:
                hits.append(SearchHit(view.dataset, c.resource_code, c.resource_name, matched))
        return hits

    def facts(self, dataset: str) -> Facts:
        """Current snapshot, rows, last successful batch and the achieved k of the unconditional view."""
        done = (BatchStatus.REGISTERED, BatchStatus.PUBLISHED)
        with self.store.session() as session:
            batch = session.scalars(
                select(Batch)
                .where(Batch.dataset == dataset, Batch.status.in_(done))
                .order_by(Batch.registered_at.desc(), Batch.id.desc())
                .limit(1)
            ).first()
        snapshot_id = rows = None
        if self.tables is not None and dataset in self.tables.datasets():
            snapshot = self.tables.load(dataset).current_snapshot()
            if snapshot is not None:
                snapshot_id = snapshot.snapshot_id
                total = snapshot.summary["total-records"] if snapshot.summary is not None else None
                rows = int(total) if total is not None else None
        return Facts(
            snapshot_id=snapshot_id,
            rows=rows,
            last_batch=batch.id if batch else None,
            last_batch_source=batch.source if batch else None,
            last_batch_at=batch.registered_at if batch else None,
            contract_version_of_data=batch.contract_version if batch else None,
            k_anonymity=batch.k_anonymity if batch else None,
            k_suppressed_rows=batch.k_suppressed_rows if batch else None,
        )
