"""A dataset's sharing terms from its contract: share level, the columns a request may ask
for, the legal basis of a refusal; and the China date deadlines are counted from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from catalog.metadata import (
    utcnow,
)
from catalog.sharing.identities import (
    CST,
    SharingError,
)
from schemas import contract as contracts
from schemas.contract import MaskRule, load_contract


@dataclass(frozen=True)
class DatasetTerms:
    """What a dataset's contract says about sharing it."""

    dataset: str
    share_attribute: str
    level: str | None
    """``unconditional`` or ``conditional``; none for 不予共享."""
    condition: str | None
    legal_basis: str | None
    owner: str
    owner_name: str
    columns: tuple[str, ...]
    """Published columns a grant at ``level`` may include (those the level does not null)."""
    published: dict[str, str] = field(default_factory=dict)
    """Contract field name -> published column name, to point a request at the right name."""


def today_cst(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(CST).date()


_LEVELS = {"无条件共享": "unconditional", "有条件共享": "conditional", "不予共享": None}


def known_datasets() -> list[str]:
    """Datasets with a contract (read from the contract folder at each call)."""
    return sorted(p.stem for p in contracts.CONTRACT_DIR.glob("*.yaml"))


def dataset_terms(dataset: str) -> DatasetTerms:
    """What the dataset's contract says about sharing it, or a refusal naming the known ones."""
    if dataset not in known_datasets():
        raise SharingError(f"no dataset {dataset!r} (known: {', '.join(known_datasets()) or 'none'})")
    contract = load_contract(dataset)
    level = _LEVELS[contract.share_attribute]
    columns = tuple(
        f.published_name for f in contract.fields if level and f.mask.at(level).rule is not MaskRule.NULL
    )
    return DatasetTerms(
        dataset=dataset,
        share_attribute=contract.share_attribute,
        level=level,
        condition=contract.share_condition,
        legal_basis=contract.legal_basis,
        owner=contract.owner_department.code,
        owner_name=contract.owner_department.name,
        columns=columns,
        published={f.name: f.published_name for f in contract.fields if f.name != f.published_name},
    )


def column_problems(terms: DatasetTerms, asked: Sequence[str]) -> list[str]:
    unknown = [c for c in asked if c not in terms.columns]
    if not unknown:
        return []
    hints = [f"{c!r} is published as {terms.published[c]!r}" for c in unknown if c in terms.published]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return [
        f"dataset {terms.dataset} has no column {', '.join(repr(c) for c in unknown)} shared at the "
        f"{terms.level} level{hint}; allowed: {', '.join(terms.columns)}"
    ]
