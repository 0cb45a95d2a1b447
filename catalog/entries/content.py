"""What a catalogue entry says: its information items and the core metadata of the catalogue
compilation guide (classification, resource name and code, provider, abstract, format,
share type with its condition or legal basis, share methods, open attribute, update cycle,
publication date, related resources) and the Kafka message schema.

One :class:`EntryContent` is one version of an entry, stored as JSON and exported as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from catalog.entries.errors import CatalogueError
from schemas.contract import RESOURCE_CODE_PATTERN, OpenAttribute, ShareMethod, UpdateCycle


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
        if self.resource_code is not None and self.resource_code != resource_code(self.model_dump()):
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


def resource_code(values: Mapping[str, Any]) -> str | None:
    """The resource code (信息资源代码): classification code ``/`` sequence code, once all are set."""
    parts = [values.get(n) for n in ("class_code", "item_code", "catalogue_code", "sequence_code")]
    if not all(parts):
        return None
    return f"{parts[0]}{parts[1]}{parts[2]}{values.get('sub_item_code') or ''}/{parts[3]}"


def entry_content(values: Mapping[str, Any], *, where: str) -> EntryContent:
    """``values`` as an entry's content with its resource code; a refusal names every problem."""
    values = {**values, "resource_code": resource_code(values)}
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
