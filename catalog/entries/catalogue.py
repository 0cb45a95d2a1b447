"""The shared catalogue (政务数据目录): one entry per dataset, generated from its contract.

An entry carries the core metadata of the catalogue compilation guide and the Kafka message
schema (:mod:`catalog.entries.content`). Stewards edit it (``hub catalog edit``); every
change is a new version with who, when, why and the contract version it came from. A
steward's edit of a field the contract does not own outlives later contract versions.
Publishing (``hub catalog publish``) makes the current version the one consumers see.

:class:`Catalogue` is the whole service: storage (:mod:`catalog.entries.records`), following
the contracts (:mod:`catalog.entries.sync`) and reading (:mod:`catalog.entries.reading`)
come from its bases; stewards' edits and publishing are here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from catalog.entries.content import EntryContent, entry_content
from catalog.entries.editable import DERIVED_FIELDS, EDITABLE, parse_edit
from catalog.entries.errors import CatalogueError
from catalog.entries.generation import generate
from catalog.entries.reading import CatalogueReader
from catalog.entries.views import EntryView
from catalog.metadata import EntryStatus, utcnow
from catalog.sharing import require_steward


class Catalogue(CatalogueReader):
    """The catalogue entries in the hub metadata, kept in step with the contracts.

    ``contracts`` defaults to every contract in ``schemas/``; tests hand in others.
    ``tables`` (optional) gives each entry its live facts and lets a steward's sync evolve
    the shared tables.
    """

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
        by = require_steward(
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
        by = require_steward(
            self.store, by, current.content.provider_code, action="catalog.publish", dataset=dataset
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
