"""Quality scorecards computed from the hub metadata: each validated batch's figures from its
record, its violations and its Data Docs profile, then per dataset and per department (the
figures are defined in :mod:`catalog.entries.scores`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from catalog.entries.scores import (
    DUPLICATE_RULE,
    REQUIRED_RULE,
    STATUS_ORDER,
    TREND_BATCHES,
    BatchScore,
    DatasetCard,
    DayScore,
    DepartmentCard,
    Score,
    Scorecard,
    timeliness,
)
from catalog.metadata import Batch, Violation
from quality.datadocs import read_profile
from quality.errors import ReportError
from schemas.contract import CONTRACT_DIR, load_contract

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from schemas.contract import Contract

_CHUNK = 500
"""Batch ids per ``IN (...)`` query."""


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _rule_rows(store: MetadataStore, batch_ids: Sequence[str]) -> dict[str, dict[tuple[str, str], int]]:
    """batch -> (rule, field) -> distinct rows, for the rules the scorecard reads."""
    found: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    rows = func.count(func.distinct(Violation.row))
    for part in _chunks(batch_ids):
        query = (
            select(Violation.batch_id, Violation.rule, Violation.field, rows)
            .where(Violation.batch_id.in_(part), Violation.rule.in_((DUPLICATE_RULE, REQUIRED_RULE)))
            .group_by(Violation.batch_id, Violation.rule, Violation.field)
        )
        with store.session() as session:
            for batch_id, rule, name, count in session.execute(query):
                found[batch_id][(rule, name)] = int(count)
    return found


def _departments(settings_sources: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """source -> (department code, name) from the source files, for batches that lack them."""
    return {
        name: (source.department.code, source.department.name)
        for name, source in (settings_sources or {}).items()
    }


def batch_scores(
    store: MetadataStore,
    *,
    datadocs: Path | None,
    dataset: str | None = None,
    since: date | None = None,
    sources: dict[str, Any] | None = None,
) -> list[BatchScore]:
    """Every validated batch (of ``dataset``, started on or after ``since``), oldest first."""
    query = select(Batch).where(Batch.rows_in.is_not(None), Batch.rows_valid.is_not(None))
    if dataset is not None:
        query = query.where(Batch.dataset == dataset)
    if since is not None:
        query = query.where(Batch.started_at >= datetime.combine(since, datetime.min.time(), tzinfo=UTC))
    query = query.order_by(Batch.started_at, Batch.id)
    with store.session() as session:
        batches = list(session.scalars(query))
    rules = _rule_rows(store, [b.id for b in batches])
    by_source = _departments(sources)
    scores: list[BatchScore] = []
    for b in batches:
        contract = load_contract(b.dataset)
        code = getattr(b, "department_code", None) or by_source.get(b.source, ("", ""))[0]
        name = b.department or by_source.get(b.source, ("", ""))[1]
        code = code or contract.owner_department.code
        name = name or contract.owner_department.name
        found = rules.get(b.id, {})
        duplicates = sum(n for (rule, _), n in found.items() if rule == DUPLICATE_RULE)
        profile = read_profile(datadocs, b.dataset, b.id) if datadocs is not None else None
        rows_in = int(b.rows_in or 0)
        present, cells, basis = _completeness(contract, rows_in, profile, found)
        docs = getattr(b, "data_docs", None) or _docs_from_profile(datadocs, profile)
        scores.append(
            BatchScore(
                batch_id=b.id,
                dataset=b.dataset,
                source=b.source,
                department_code=code,
                department=name,
                status=str(getattr(b.status, "value", b.status)),
                started_at=b.started_at,
                registered_at=b.registered_at,
                rows_in=rows_in,
                rows_valid=int(b.rows_valid or 0),
                rows_quarantined=int(b.rows_quarantined or 0),
                duplicate_rows=duplicates,
                present=present,
                cells=cells,
                basis=basis,
                data_docs=docs,
            )
        )
    return scores


def _docs_from_profile(datadocs: Path | None, profile: dict[str, Any] | None) -> str | None:
    if datadocs is None or not profile or not profile.get("data_docs"):
        return None
    return str(Path(datadocs) / str(profile["data_docs"]))


def _completeness(
    contract: Contract,
    rows_in: int,
    profile: dict[str, Any] | None,
    rules: dict[tuple[str, str], int],
) -> tuple[int, int, str]:
    """(present, cells, basis) of one batch."""
    names = [f.name for f in contract.fields]
    counted = (profile or {}).get("fields", {})
    if (
        profile is not None
        and int(profile.get("rows_in", -1)) == rows_in
        and all(n in counted for n in names)
    ):
        present = sum(min(int(counted[n]["present"]), rows_in) for n in names)
        return present, rows_in * len(names), "all fields"
    required = [f.name for f in contract.fields if f.required]
    missing = sum(min(rules.get((REQUIRED_RULE, n), 0), rows_in) for n in required)
    return rows_in * len(required) - missing, rows_in * len(required), "required fields"


def _contracts(names: Iterable[str]) -> dict[str, Contract]:
    return {name: load_contract(name) for name in sorted(set(names))}


def _all_datasets() -> list[str]:
    return sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))


def scorecard(
    store: MetadataStore,
    *,
    datadocs: Path | None,
    dataset: str | None = None,
    department: str | None = None,
    since: date | None = None,
    last: int = TREND_BATCHES,
    sources: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Scorecard:
    """The scorecard of one dataset or all, optionally of one department (code or name)."""
    now = now or datetime.now(UTC)
    names = [dataset] if dataset else _all_datasets()
    contracts = _contracts(names)  # an unknown dataset fails here, naming the known ones
    scores = batch_scores(store, datadocs=datadocs, dataset=dataset, since=since, sources=sources)
    if department:
        scores = [s for s in scores if department in (s.department_code, s.department)]
        owned = {s.dataset for s in scores} | {
            n
            for n, c in contracts.items()
            if department in (c.owner_department.code, c.owner_department.name)
        }
        if not owned:
            raise ReportError(f"no dataset of department {department!r} has batches or a contract")
        contracts = {n: c for n, c in contracts.items() if n in owned}
    last_registered = _last_registered(store, list(contracts))
    by_dataset: dict[str, list[BatchScore]] = defaultdict(list)
    for s in scores:
        by_dataset[s.dataset].append(s)
    cards = []
    for name, contract in contracts.items():
        mine = by_dataset.get(name, [])
        code, dept = (
            (mine[-1].department_code, mine[-1].department)
            if mine
            else (contract.owner_department.code, contract.owner_department.name)
        )
        cards.append(
            DatasetCard(
                dataset=name,
                title_zh=contract.title.zh,
                title_en=contract.title.en,
                department_code=code,
                department=dept,
                score=Score.of(mine),
                timeliness=timeliness(contract, last_registered.get(name), now),
                trend=mine[-last:] if last > 0 else [],
            )
        )
    notes = []
    if any(s.basis != "all fields" for s in scores):
        notes.append("completeness of batches without a Data Docs profile counts their required fields only")
    return Scorecard(now, since, cards, _department_cards(cards, scores, last), notes)


def _last_registered(store: MetadataStore, datasets: list[str]) -> dict[str, datetime]:
    """Dataset -> when its latest registered batch was registered (whatever ``since`` says)."""
    if not datasets:
        return {}
    query = (
        select(Batch.dataset, func.max(Batch.registered_at))
        .where(Batch.dataset.in_(datasets), Batch.registered_at.is_not(None))
        .group_by(Batch.dataset)
    )
    with store.session() as session:
        rows = list(session.execute(query))
    found: dict[str, datetime] = {}
    for name, when in rows:
        if when is not None:
            found[name] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return found


def _department_cards(cards: list[DatasetCard], scores: list[BatchScore], last: int) -> list[DepartmentCard]:
    groups: dict[str, list[DatasetCard]] = defaultdict(list)
    names: dict[str, str] = {}
    for card in cards:
        groups[card.department_code].append(card)
        names[card.department_code] = card.department
    result = []
    for code, members in sorted(groups.items()):
        mine = [s for s in scores if s.department_code == code]
        days: dict[date, list[BatchScore]] = defaultdict(list)
        for s in mine:
            days[s.started_at.astimezone(UTC).date()].append(s)
        trend = [DayScore(day, Score.of(days[day])) for day in sorted(days)][-last:] if last > 0 else []
        worst = max((c.timeliness.status for c in members), key=lambda s: STATUS_ORDER[s])
        result.append(
            DepartmentCard(code, names[code], [c.dataset for c in members], Score.of(mine), worst, trend)
        )
    return result
