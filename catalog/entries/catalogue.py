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

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.metadata import Batch, BatchStatus, CatalogueEntry, CatalogueVersion, EntryStatus, utcnow
from schemas.contract import (
    CONTRACT_DIR,
    RESOURCE_CODE_PATTERN,
    Contract,
    OpenAttribute,
    ShareLevel,
    ShareMethod,
    UpdateCycle,
    load_contract,
    load_contract_file,
)
from schemas.errors import AccessDeniedError, ContractError, TransientError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.tables import SchemaChange, SharedTables

SYSTEM_AUTHOR = "hub"
"""Author of versions the hub makes itself (generated from a contract)."""


class CatalogueError(ContractError):
    """A catalogue entry cannot be found, edited or published as asked."""


class UnknownDatasetError(CatalogueError):
    """No contract and no catalogue entry has this name."""


class ContractChangeRefusedError(CatalogueError):
    """A new contract version would take columns away that consumers rely on."""


class ConcurrentEditError(TransientError):
    """Another change to the same entry was saved first."""


# -- tables -------------------------------------------------------------------------------


# -- content ------------------------------------------------------------------------------

_DATA_TYPES = {
    "string": ("C", "字符型"),
    "int32": ("I", "整型"),
    "int64": ("I", "整型"),
    "decimal128(20, 4)": ("N", "数值型"),
    "date32[day]": ("D", "日期型"),
    "timestamp[us]": ("T", "日期时间型"),
}
"""Data types of information items (信息项数据类型), by the Arrow type consumers receive."""


class InformationItem(BaseModel):
    """One information item (信息项): a published column as consumers receive it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    name_en: str
    field: str
    column: str
    data_type: str
    data_type_name: str
    type: str
    published_type: str
    required: bool
    key: bool
    sensitivity: str
    masks: dict[str, str]


class EntryContent(BaseModel):
    """What one version of an entry says (stored as JSON, exported as is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str
    resource_name: str
    resource_name_en: str
    resource_code: str | None = None
    class_code: str | None = Field(default=None, pattern=r"^[0-9]$")
    class_name: str | None = None
    item_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    item_name: str | None = None
    catalogue_code: str | None = Field(default=None, pattern=r"^[0-9]{3}$")
    catalogue_name: str | None = None
    sub_item_code: str | None = Field(default=None, pattern=r"^[0-9A-Z]{1,32}$")
    sub_item_name: str | None = None
    sequence_code: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")
    provider: str
    provider_code: str
    abstract: str | None = None
    abstract_en: str | None = None
    format: str | None = None
    items: tuple[InformationItem, ...]
    keys: tuple[str, ...]
    share_type: str
    share_condition: str | None = None
    legal_basis: str | None = None
    share_methods: tuple[ShareMethod, ...] = ()
    open_attribute: OpenAttribute = OpenAttribute.CLOSED
    open_condition: str | None = None
    update_cycle: UpdateCycle
    publication_date: date | None = None
    related_codes: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    k_threshold: int | None = None
    contract_version: str
    message_schema: dict[str, Any]

    @model_validator(mode="after")
    def _consistent(self) -> EntryContent:
        problems = []
        if self.share_type == "有条件共享" and not self.share_condition:
            problems.append("有条件共享 (conditional) needs share_condition")
        if self.share_type == "不予共享" and not self.legal_basis:
            problems.append("不予共享 (not shared) needs legal_basis")
        if self.open_attribute is OpenAttribute.CONDITIONAL and not self.open_condition:
            problems.append("有条件开放 (conditionally open) needs open_condition")
        problems += [
            f"related code {c!r} is not a resource code (e.g. 101001/000001)"
            for c in self.related_codes
            if not re.match(RESOURCE_CODE_PATTERN, c)
        ]
        if self.resource_code is not None and self.resource_code != _resource_code(self.model_dump()):
            problems.append(
                f"resource code {self.resource_code!r} is not the classification code and sequence code"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def missing_for_publication(self) -> list[str]:
        """Fields an entry must have before consumers see it."""
        needed = ("class_code", "item_code", "catalogue_code", "sequence_code", "abstract", "format")
        missing = [name for name in needed if not getattr(self, name)]
        return missing + ([] if self.share_methods else ["share_methods"])


def _resource_code(values: Mapping[str, Any]) -> str | None:
    parts = [values.get(n) for n in ("class_code", "item_code", "catalogue_code", "sequence_code")]
    if not all(parts):
        return None
    return f"{parts[0]}{parts[1]}{parts[2]}{values.get('sub_item_code') or ''}/{parts[3]}"


_DERIVED = {
    "resource_code": "is the classification code and sequence code: set those",
    "publication_date": "is set by the first `hub catalog publish`",
}


@dataclass(frozen=True)
class Editable:
    """A field stewards may set, and how its text from the command line is read."""

    description: str
    kind: str = "text"  # text | list | methods | open


EDITABLE: dict[str, Editable] = {
    "class_code": Editable("类: classification class code (1 digit)"),
    "class_name": Editable("类: classification class name"),
    "item_code": Editable("项: classification item code (2 digits)"),
    "item_name": Editable("项: classification item name"),
    "catalogue_code": Editable("目: classification catalogue code (3 digits)"),
    "catalogue_name": Editable("目: classification catalogue name"),
    "sub_item_code": Editable("细目: sub-item code (digits and capital letters, may be empty)"),
    "sub_item_name": Editable("细目: sub-item name"),
    "sequence_code": Editable("顺序码: sequence code (digits)"),
    "abstract": Editable("信息资源摘要 (Chinese)"),
    "abstract_en": Editable("abstract in English"),
    "format": Editable("信息资源格式, e.g. 数据库"),
    "share_condition": Editable("共享条件: required for 有条件共享"),
    "legal_basis": Editable("不予共享的法律依据: required for 不予共享"),
    "share_methods": Editable(
        "共享方式, comma-separated: " + ", ".join(f"{m.value} ({m.zh})" for m in ShareMethod), "methods"
    ),
    "open_attribute": Editable("开放属性: " + ", ".join(o.value for o in OpenAttribute), "open"),
    "open_condition": Editable("开放条件: required for 有条件开放"),
    "related_codes": Editable("关联资源代码, comma-separated resource codes", "list"),
    "keywords": Editable("keywords, comma-separated", "list"),
}
"""Fields stewards edit. Everything else comes from the contract (name, provider, items,
share type, update cycle, keys, message schema) or from publishing (publication date)."""


def _parse(name: str, text: str, *, where: str) -> Any:
    spec = EDITABLE[name]
    text = text.strip()
    if spec.kind == "text":
        return text or None
    items = [part.strip() for part in re.split(r"[,，、]", text) if part.strip()]
    if spec.kind == "list":
        return items
    if spec.kind == "methods":
        by_label = {m.zh: m for m in ShareMethod} | {m.value: m for m in ShareMethod}
        unknown = [i for i in items if i not in by_label]
        if unknown:
            known = ", ".join(f"{m.value} ({m.zh})" for m in ShareMethod)
            raise CatalogueError(
                f"{where}: share_methods: unknown method(s) {', '.join(unknown)}; known: {known}"
            )
        return [by_label[i].value for i in items]
    aliases = {
        "open": OpenAttribute.OPEN,
        "conditional": OpenAttribute.CONDITIONAL,
        "closed": OpenAttribute.CLOSED,
    }
    value = aliases.get(text, text)
    if value not in {o.value for o in OpenAttribute}:
        raise CatalogueError(
            f"{where}: open_attribute: {text!r} is not one of {', '.join(o.value for o in OpenAttribute)} "
            "(or open, conditional, closed)"
        )
    return str(value)


def contract_digest(contract: Contract) -> str:
    """A fingerprint of the contract's content: a change without a new version is caught."""
    text = json.dumps(contract.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate(contract: Contract) -> dict[str, Any]:
    """The entry a contract gives, before steward edits (as JSON-ready values)."""
    schema = contract.published_schema()
    items = []
    for f in contract.fields:
        published = schema.field(f.published_name)
        code, code_name = _DATA_TYPES.get(str(published.type), ("C", "字符型"))
        items.append(
            InformationItem(
                name=f.description.zh,
                name_en=f.description.en,
                field=f.name,
                column=f.published_name,
                data_type=code,
                data_type_name=code_name,
                type=f.type.value,
                published_type=str(published.type),
                required=f.required,
                key=f.name in contract.keys,
                sensitivity=f.sensitivity.value,
                masks={level.value: f.mask.at(level).rule.value for level in ShareLevel},
            ).model_dump(mode="json")
        )
    info = contract.catalogue
    values: dict[str, Any] = {
        "dataset": contract.name,
        "resource_name": contract.title.zh,
        "resource_name_en": contract.title.en,
        "provider": contract.owner_department.name,
        "provider_code": contract.owner_department.code,
        "items": items,
        "keys": list(contract.published_keys),
        "share_type": contract.share_attribute,
        "share_condition": contract.share_condition,
        "legal_basis": contract.legal_basis,
        "update_cycle": contract.update_cycle.value,
        "quasi_identifiers": list(contract.published_quasi_identifiers),
        "k_threshold": contract.k_anonymity if contract.quasi_identifiers else None,
        "contract_version": contract.version,
        "message_schema": contract.message_schema(),
    }
    if info is not None:
        c = info.classification
        values |= {
            "class_code": c.class_.code,
            "class_name": c.class_.name,
            "item_code": c.item.code,
            "item_name": c.item.name,
            "catalogue_code": c.catalogue.code,
            "catalogue_name": c.catalogue.name,
            "sub_item_code": c.sub_item.code if c.sub_item else None,
            "sub_item_name": c.sub_item.name if c.sub_item else None,
            "sequence_code": info.sequence,
            "abstract": info.abstract.zh,
            "abstract_en": info.abstract.en,
            "format": info.format,
            "share_methods": [m.value for m in info.share_methods],
            "open_attribute": info.open_attribute.value,
            "open_condition": info.open_condition,
            "related_codes": list(info.related),
            "keywords": list(info.keywords),
        }
    return values


def _content(values: Mapping[str, Any], *, where: str) -> EntryContent:
    values = {**values, "resource_code": _resource_code(values)}
    try:
        return EntryContent.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(str(p) for p in e["loc"])
            + ": " * bool(e["loc"])
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise CatalogueError(f"{where}: {problems}") from None


def _version_tuple(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in text.split("."))
    return major, minor, patch


def all_contracts(folder: Path = CONTRACT_DIR) -> dict[str, Contract]:
    """Every contract in ``schemas/`` (or another folder of contract files), by dataset name."""
    if folder == CONTRACT_DIR:
        return {p.stem: load_contract(p.stem) for p in sorted(folder.glob("*.yaml"))}
    contracts = (load_contract_file(p) for p in sorted(folder.glob("*.yaml")))
    return {c.name: c for c in contracts}


# -- views --------------------------------------------------------------------------------


class GrantLike(Protocol):
    """What the catalogue needs of a grant (``catalog.sharing.grants.GrantRef`` fits)."""

    @property
    def id(self) -> int: ...
    @property
    def system(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def columns(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Facts:
    """What the hub knows about the dataset's data now (not versioned; read when shown)."""

    snapshot_id: int | None = None
    rows: int | None = None
    last_batch: str | None = None
    last_batch_source: str | None = None
    last_batch_at: datetime | None = None
    contract_version_of_data: str | None = None
    k_anonymity: int | None = None
    k_suppressed_rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "rows": self.rows,
            "last_successful_batch": self.last_batch,
            "last_successful_batch_source": self.last_batch_source,
            "last_successful_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
            "data_contract_version": self.contract_version_of_data,
            "k_anonymity": self.k_anonymity,
            "k_suppressed_rows": self.k_suppressed_rows,
        }


@dataclass(frozen=True)
class EntryView:
    """One version of an entry with the entry's state."""

    dataset: str
    version: int
    current_version: int
    published_version: int | None
    published_at: datetime | None
    published_by: str | None
    content: EntryContent
    edited: tuple[str, ...]
    change: str
    note: str
    author: str
    created_at: datetime
    pending: str | None = None
    facts: Facts | None = None

    @property
    def status(self) -> str:
        """``draft``, ``published``, or ``published, draft changes`` (edited since publishing)."""
        if self.published_version is None:
            return EntryStatus.DRAFT.value
        if self.published_version == self.current_version:
            return EntryStatus.PUBLISHED.value
        return "published, draft changes"

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "version": self.version,
            "current_version": self.current_version,
            "published_version": self.published_version,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "published_by": self.published_by,
            "change": self.change,
            "note": self.note,
            "author": self.author,
            "changed_at": self.created_at.isoformat(),
            "steward_edited": list(self.edited),
            "pending_contract": self.pending,
            "content": self.content.model_dump(mode="json"),
            "facts": self.facts.to_json() if self.facts else None,
        }


@dataclass(frozen=True)
class VersionInfo:
    version: int
    change: str
    note: str
    author: str
    created_at: datetime
    contract_version: str
    published: bool


@dataclass(frozen=True)
class SearchHit:
    dataset: str
    resource_code: str | None
    resource_name: str
    matched: tuple[str, ...]


@dataclass
class SyncReport:
    """What a sync did per dataset, and what it could not take in (with the reason)."""

    done: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractChange:
    """How a new contract version differs from the one the entry came from."""

    previous: str
    version: str
    columns: SchemaChange
    renames: dict[str, str]

    @property
    def needed_bump(self) -> str:
        if self.columns.breaking:
            return "major"
        if self.columns.added or self.columns.relaxed or self.columns.reordered:
            return "minor"
        return "patch"

    @property
    def bump(self) -> str:
        old, new = _version_tuple(self.previous), _version_tuple(self.version)
        if new[0] > old[0]:
            return "major"
        if new[:2] > old[:2]:
            return "minor"
        return "patch" if new > old else "none"


def contract_change(
    old_items: Sequence[Mapping[str, Any]], old_keys: Sequence[str], previous: str, new: Contract
) -> ContractChange:
    """Compare the columns an entry lists with a contract's published columns."""
    from catalog.tables import SchemaChange

    schema = new.published_schema()
    new_by_field = {f.name: f.published_name for f in new.fields}
    have = {item["column"]: item for item in old_items}
    want = {f.name: str(f.type) for f in schema if f.name != "_batch_id"}
    renames = {
        item["column"]: new_by_field[item["field"]]
        for item in old_items
        if item["field"] in new_by_field
        and new_by_field[item["field"]] != item["column"]
        and new_by_field[item["field"]] not in have
    }
    current = {renames.get(c, c): item for c, item in have.items()}
    retyped = tuple(
        (name, current[name]["published_type"], kind)
        for name, kind in want.items()
        if name in current and current[name]["published_type"] != kind
    )
    required = {f.published_name: f.required for f in new.fields}
    relaxed = tuple(
        name for name in want if name in current and current[name]["required"] and not required[name]
    )
    new_keys = tuple(sorted(new.published_keys))
    moved_keys = tuple(sorted(renames.get(k, k) for k in old_keys))
    order = [renames.get(c, c) for c in have if renames.get(c, c) in want]
    added = tuple(n for n in want if n not in current)
    dropped = tuple(c for c in have if c not in want and c not in renames)
    columns = SchemaChange(
        added=added,
        dropped=dropped,
        renamed=tuple(renames.items()),
        retyped=retyped,
        relaxed=relaxed,
        key=None if moved_keys == new_keys else (tuple(sorted(old_keys)), new_keys),
        reordered=not added and not dropped and order != [n for n in want if n in current],
    )
    return ContractChange(previous=previous, version=new.version, columns=columns, renames=renames)


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
            content = _content(values, where=f"catalogue entry of {contract.name}")
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
        if _version_tuple(contract.version) < _version_tuple(latest.contract_version):
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
        content = _content(values, where=f"catalogue entry of {contract.name} from {where}")
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
            owned = sorted(set(unknown) & set(EntryContent.model_fields) - set(_DERIVED))
            hints = [f"{name} {_DERIVED[name]}" for name in unknown if name in _DERIVED]
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
            name: _parse(name, text, where=f"catalogue entry {dataset}") for name, text in changes.items()
        }
        generated = generate(self._contract_of(dataset, current.version)) if reset else values
        for name in reset:
            values[name] = generated.get(name)
        values |= parsed
        edited = tuple(sorted((set(current.edited) | set(parsed)) - set(reset)))
        content = _content(values, where=f"catalogue entry {dataset} (edit by {by} refused)")
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
            action="catalog.deliveries.publish",
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
        content = _content(values, where=f"catalogue entry {dataset}")
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
