"""The fields of an entry stewards edit (``hub catalog edit --set FIELD=VALUE``), and how the
text they type is read. Everything else comes from the contract or from publishing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from catalog.entries.errors import CatalogueError
from schemas.contract import OpenAttribute, ShareMethod

DERIVED_FIELDS = {
    "resource_code": "is the classification code and sequence code: set those",
    "publication_date": "is set by the first `hub catalog publish`",
}
"""Fields no one sets directly, with what to do instead."""


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


def parse_edit(name: str, text: str, *, where: str) -> Any:
    """The value of editable field ``name`` from the text typed for it (lists split on , ，、)."""
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
