"""An entry generated from its contract, before steward edits, and the contracts it comes
from. The contract's digest tells a changed contract from one the catalogue already took in,
so that a change made without a new version is caught.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from catalog.entries.content import InformationItem
from schemas.contract import CONTRACT_DIR, Contract, ShareLevel, load_contract, load_contract_file

DATA_TYPES = {
    "string": ("C", "字符型"),
    "int32": ("I", "整型"),
    "int64": ("I", "整型"),
    "decimal128(20, 4)": ("N", "数值型"),
    "date32[day]": ("D", "日期型"),
    "timestamp[us]": ("T", "日期时间型"),
}
"""Data types of information items (信息项数据类型), by the Arrow type consumers receive."""


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
        code, code_name = DATA_TYPES.get(str(published.type), ("C", "字符型"))
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


def all_contracts(folder: Path = CONTRACT_DIR) -> dict[str, Contract]:
    """Every contract in ``schemas/`` (or another folder of contract files), by dataset name."""
    if folder == CONTRACT_DIR:
        return {p.stem: load_contract(p.stem) for p in sorted(folder.glob("*.yaml"))}
    contracts = (load_contract_file(p) for p in sorted(folder.glob("*.yaml")))
    return {c.name: c for c in contracts}
