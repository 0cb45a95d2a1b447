"""What a catalogue entry says: the compilation guide's core metadata generated from a
contract, the fields stewards may edit and how their text is read."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from catalog.entries.errors import (
    CatalogueError,
)
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

if TYPE_CHECKING:
    pass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


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


DERIVED_FIELDS = {
    "resource_code": "is the classification code and sequence code: set those",
    "publication_date": "is set by the first `hub catalog publish`",
}


@dataclass(frozen=True)
class Editable:
    """A field stewards may set, and how its text from the command line is read."""

    description: str
    kind: str = "text"  # text | list | methods | open


def parse_edit(name: str, text: str, *, where: str) -> Any:
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


def entry_content(values: Mapping[str, Any], *, where: str) -> EntryContent:
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


def version_tuple(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in text.split("."))
    return major, minor, patch


def all_contracts(folder: Path = CONTRACT_DIR) -> dict[str, Contract]:
    """Every contract in ``schemas/`` (or another folder of contract files), by dataset name."""
    if folder == CONTRACT_DIR:
        return {p.stem: load_contract(p.stem) for p in sorted(folder.glob("*.yaml"))}
    contracts = (load_contract_file(p) for p in sorted(folder.glob("*.yaml")))
    return {c.name: c for c in contracts}


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
