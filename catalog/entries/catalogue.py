"""The shared catalogue (政务数据目录): one entry per dataset, generated from its contract.

An entry carries the core metadata of the catalogue compilation guide (classification,
resource name and code, provider, abstract, format, information items, share type with its
condition or legal basis, share methods, open attribute, update cycle, publication date,
related resources) and the Kafka message schema. Stewards edit it (``hub catalog edit``);
every change is a new version with who, when, why and the contract version it came from.
A steward's edit of a field the contract does not own outlives later contract versions.
Publishing (``hub catalog publish``) makes the current version the one consumers see.

Entries follow their contracts: a new contract version regenerates the entry when it only
adds columns or changes metadata; one that drops, renames or retypes a column needs a major
version and no active grant still including that column, and is taken in by a steward
(``hub catalog sync``), which also evolves the shared table (:mod:`catalog.tables.iceberg`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.entries.changes import contract_change
from catalog.entries.content import (
    DERIVED_FIELDS,
    EDITABLE,
    EntryContent,
    all_contracts,
    contract_digest,
    entry_content,
    generate,
    parse_edit,
    version_tuple,
)
from catalog.entries.errors import (
    CatalogueError,
    ConcurrentEditError,
    ContractChangeRefusedError,
    UnknownDatasetError,
)
from catalog.entries.views import EntryView, Facts, GrantLike, SearchHit, SyncReport, VersionInfo
from catalog.metadata import Batch, BatchStatus, CatalogueEntry, CatalogueVersion, EntryStatus, utcnow
from schemas.contract import (
    Contract,
)
from schemas.errors import AccessDeniedError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.tables import SharedTables

SYSTEM_AUTHOR = "hub"
"""Author of versions the hub makes itself (generated from a contract)."""


# -- tables -------------------------------------------------------------------------------


# -- content ------------------------------------------------------------------------------


# -- views --------------------------------------------------------------------------------


# -- the catalogue ------------------------------------------------------------------------


class Catalogue:
    """The catalogue entries in the hub metadata, kept in step with the contracts.

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

    # -- keeping up with contracts -----------------------------------------------------------

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
                    acting = _require_steward(
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
            grants = _grants_including(self.store, contract.name, lost)
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

    # -- reading ---------------------------------------------------------------------------

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

    # -- stewards' changes -------------------------------------------------------------------

    def edit(
        self,
        dataset: str,
        changes: Mapping[str, str],
        *,
        by: str,
        note: str,
        reset: Iterable[str] = (),
    ) -> EntryView:
        """Set catalogue fields (text from the command line) as a new version.

        ``reset`` fields go back to the contract's value and follow it again.
        """
        dataset = self.known(dataset)
        reset = tuple(reset)
        unknown = sorted((set(changes) | set(reset)) - set(EDITABLE))
        if unknown:
            owned = sorted(set(unknown) & set(EntryContent.model_fields) - set(DERIVED_FIELDS))
            hints = [f"{name} {DERIVED_FIELDS[name]}" for name in unknown if name in DERIVED_FIELDS]
            if owned:
                hints.append(
                    f"{', '.join(owned)} come(s) from the contract (change schemas/{dataset}.yaml and its version)"
                )
            hint = "".join(f"; {h}" for h in hints)
            raise CatalogueError(
                f"catalogue entry {dataset}: {', '.join(unknown)} is not a catalogue field stewards edit{hint}. "
                f"Editable: {', '.join(EDITABLE)}"
            )
        if not note.strip():
            raise CatalogueError(f"catalogue entry {dataset}: say why with --note")
        if not changes and not reset:
            raise CatalogueError(f"catalogue entry {dataset}: nothing to change (use --set FIELD=VALUE)")
        pending = self.sync(dataset).pending.get(dataset)
        current = self.entry(dataset, facts=False, synced=True, pending=pending)
        by = _require_steward(
            self.store, by, current.content.provider_code, action="catalog.edit", dataset=dataset
        )
        values = current.content.model_dump(mode="json")
        parsed = {
            name: parse_edit(name, text, where=f"catalogue entry {dataset}") for name, text in changes.items()
        }
        generated = generate(self._contract_of(dataset, current.version)) if reset else values
        for name in reset:
            values[name] = generated.get(name)
        values |= parsed
        edited = tuple(sorted((set(current.edited) | set(parsed)) - set(reset)))
        content = entry_content(values, where=f"catalogue entry {dataset} (edit by {by} refused)")
        contract = self.contracts.get(dataset)
        self._save(
            contract,
            content,
            edited=edited,
            change="edited",
            note=note.strip(),
            author=by,
            digest=None,
            expected_version=current.current_version,
            dataset=dataset,
        )
        return self.entry(dataset, synced=True, pending=pending)

    def publish(self, dataset: str, *, by: str, note: str | None = None) -> EntryView:
        """Make the current version the one consumers see; the first publication dates the entry."""
        dataset = self.known(dataset)
        pending = self.sync(dataset).pending.get(dataset)
        current = self.entry(dataset, facts=False, synced=True, pending=pending)
        by = _require_steward(
            self.store,
            by,
            current.content.provider_code,
            action="catalog.publish",
            dataset=dataset,
        )
        if pending:
            raise CatalogueError(f"catalogue entry {dataset} is not published: {pending}")
        missing = current.content.missing_for_publication()
        if missing:
            raise CatalogueError(
                f"catalogue entry {dataset} is not published: {', '.join(missing)} missing; set them with "
                f"`hub catalog edit {dataset} --set FIELD=VALUE --note ... --as NAME`"
            )
        if current.published_version == current.current_version:
            return current
        values = current.content.model_dump(mode="json")
        values["publication_date"] = values.get("publication_date") or utcnow().date().isoformat()
        content = entry_content(values, where=f"catalogue entry {dataset}")
        version = self._save(
            self.contracts.get(dataset),
            content,
            edited=current.edited,
            change="published",
            note=(note or "").strip() or f"published by {by}",
            author=by,
            digest=None,
            expected_version=current.current_version,
            dataset=dataset,
        )
        now = utcnow()
        with self.store.session() as session:
            entry = self._entry_row(session, dataset)
            entry.published_version, entry.status = version, EntryStatus.PUBLISHED
            entry.published_at, entry.published_by = now, by
        return self.entry(dataset, synced=True)

    # -- storage -----------------------------------------------------------------------------

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

    def known(self, dataset: str) -> str:
        """The dataset name if it has a contract or an entry, else a refusal naming the known ones."""
        if dataset in self.contracts:
            return dataset
        with self.store.session() as session:
            if session.get(CatalogueEntry, dataset) is not None:
                return dataset
        raise UnknownDatasetError(self._unknown_message(dataset))

    def _unknown_message(self, dataset: str) -> str:
        with self.store.session() as session:
            stored = set(session.scalars(select(CatalogueEntry.dataset)))
        known = ", ".join(sorted(stored | set(self.contracts))) or "none"
        return f"no catalogue entry for dataset {dataset!r} (known: {known})"


def _require_steward(
    store: MetadataStore, name: str, department_code: str | None = None, *, action: str, dataset: str | None
) -> str:
    """The steward's name; a refusal (not a steward, or of another department) is recorded."""
    from catalog.sharing import require_steward

    return require_steward(store, name, department_code, action=action, dataset=dataset)


def _grants_including(store: MetadataStore, dataset: str, columns: Iterable[str]) -> list[GrantLike]:
    from catalog.sharing import grants_including

    return list(grants_including(store, dataset, columns))


__all__ = [
    "EDITABLE",
    "Catalogue",
    "CatalogueEntry",
    "CatalogueError",
    "CatalogueVersion",
    "ConcurrentEditError",
    "ContractChangeRefusedError",
    "EntryContent",
    "EntryView",
    "Facts",
    "UnknownDatasetError",
    "contract_change",
    "generate",
]
