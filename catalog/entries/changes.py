"""How a new contract version differs from the one an entry came from, and which version
bump that difference needs: added or relaxed columns need a minor version; dropped, renamed
or retyped columns (or new keys) need a major one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas.contract import Contract

if TYPE_CHECKING:
    from catalog.tables import SchemaChange


def version_tuple(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` as ``(1, 2, 3)``, to compare contract versions."""
    major, minor, patch = (int(p) for p in text.split("."))
    return major, minor, patch


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
        old, new = version_tuple(self.previous), version_tuple(self.version)
        if new[0] > old[0]:
            return "major"
        if new[:2] > old[:2]:
            return "minor"
        return "patch" if new > old else "none"


def contract_change(
    old_items: Sequence[Mapping[str, Any]], old_keys: Sequence[str], previous: str, new: Contract
) -> ContractChange:
    """Compare the columns an entry lists with a contract's published columns."""
    # catalog.tables loads pyiceberg and duckdb (seconds); only a new contract version needs it.
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
