"""Coverage and freshness (接入率 and 更新及时率): which departments are connected, and
whether each dataset's data is as fresh as its update cycle promises.

A department is *connected* when one of its source files (``connectors/sources/``) has
registered a batch. The connection rate is connected departments over departments that
provide a catalogue entry, the figure provincial platforms report. A dataset is *fresh*
while its last successful batch is younger than its update cycle plus a quarter of it (a
daily dataset is stale after 30 hours: a run that starts on time and takes a while is not
late), *stale* after that, *never* without any registered batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from catalog.metadata import Batch, BatchStatus, utcnow
from schemas.contract import UpdateCycle

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from connectors.config import SourceConfig

CYCLES: dict[UpdateCycle, timedelta] = {
    UpdateCycle.REAL_TIME: timedelta(hours=1),
    UpdateCycle.DAILY: timedelta(days=1),
    UpdateCycle.WEEKLY: timedelta(days=7),
    UpdateCycle.TEN_DAYS: timedelta(days=10),
    UpdateCycle.MONTHLY: timedelta(days=31),
    UpdateCycle.QUARTERLY: timedelta(days=92),
    UpdateCycle.YEARLY: timedelta(days=366),
}
"""Longest gap each update cycle allows between two successful batches. ``real_time``
datasets arrive in batches here too; an hour is the longest a near-real-time feed may
pause before the platform reports it."""
GRACE = 0.25
"""Share of the cycle a batch may be late before the dataset counts as stale."""


def allowed_age(cycle: UpdateCycle) -> timedelta:
    return CYCLES[cycle] * (1 + GRACE)


@dataclass(frozen=True)
class DepartmentStatus:
    code: str
    name: str
    sources: tuple[str, ...]
    datasets: tuple[str, ...]
    provides_entry: bool
    last_success: datetime | None

    @property
    def connected(self) -> bool:
        return self.last_success is not None


@dataclass(frozen=True)
class DatasetStatus:
    dataset: str
    provider: str
    provider_code: str
    update_cycle: UpdateCycle
    sources: tuple[str, ...]
    last_batch: str | None
    last_success: datetime | None
    age: timedelta | None
    state: str
    """``fresh``, ``stale`` or ``never``."""


@dataclass(frozen=True)
class Status:
    at: datetime
    departments: tuple[DepartmentStatus, ...]
    datasets: tuple[DatasetStatus, ...]

    @property
    def providers(self) -> list[DepartmentStatus]:
        return [d for d in self.departments if d.provides_entry]

    @property
    def connection_rate(self) -> float | None:
        providers = self.providers
        if not providers:
            return None
        return sum(d.connected for d in providers) / len(providers)

    @property
    def stale(self) -> list[DatasetStatus]:
        return [d for d in self.datasets if d.state != "fresh"]

    def to_json(self) -> dict[str, Any]:
        providers = self.providers
        return {
            "at": self.at.isoformat(),
            "connection_rate": self.connection_rate,
            "departments_connected": sum(d.connected for d in providers),
            "departments_with_entries": len(providers),
            "datasets_fresh": sum(d.state == "fresh" for d in self.datasets),
            "datasets_stale": sum(d.state == "stale" for d in self.datasets),
            "datasets_never": sum(d.state == "never" for d in self.datasets),
            "departments": [
                {
                    "code": d.code,
                    "name": d.name,
                    "sources": list(d.sources),
                    "datasets": list(d.datasets),
                    "provides_entry": d.provides_entry,
                    "connected": d.connected,
                    "last_successful_batch_at": d.last_success.isoformat() if d.last_success else None,
                }
                for d in self.departments
            ],
            "datasets": [
                {
                    "dataset": d.dataset,
                    "provider": d.provider,
                    "provider_code": d.provider_code,
                    "update_cycle": d.update_cycle.value,
                    "sources": list(d.sources),
                    "last_successful_batch": d.last_batch,
                    "last_successful_batch_at": d.last_success.isoformat() if d.last_success else None,
                    "age_hours": round(d.age.total_seconds() / 3600, 1) if d.age is not None else None,
                    "allowed_age_hours": allowed_age(d.update_cycle).total_seconds() / 3600,
                    "state": d.state,
                }
                for d in self.datasets
            ],
        }


@dataclass(frozen=True)
class Provider:
    """What coverage needs of a catalogue entry."""

    dataset: str
    name: str
    code: str
    update_cycle: UpdateCycle


def status(
    store: MetadataStore,
    sources: Mapping[str, SourceConfig],
    providers: Iterable[Provider],
    *,
    now: datetime | None = None,
) -> Status:
    """Coverage of the departments and freshness of the datasets, as of ``now``."""
    now = now or utcnow()
    done = (BatchStatus.REGISTERED, BatchStatus.PUBLISHED)
    with store.session() as session:
        by_source = dict(
            session.execute(
                select(Batch.source, func.max(Batch.registered_at))
                .where(Batch.status.in_(done))
                .group_by(Batch.source)
            ).all()
        )
        latest: dict[str, tuple[str, datetime]] = {}
        for batch_id, dataset, at in session.execute(
            select(Batch.id, Batch.dataset, Batch.registered_at)
            .where(Batch.status.in_(done), Batch.registered_at.is_not(None))
            .order_by(Batch.registered_at)
        ):
            if at is not None:
                latest[dataset] = (batch_id, at)
    # Timestamps come back timezone-aware from UTCDateTime; max() through SQL may not.
    by_source = {k: _aware(v) for k, v in by_source.items() if v is not None}
    entries = list(providers)
    provider_codes = {p.code for p in entries}
    departments: dict[str, dict[str, Any]] = {}
    for source in sources.values():
        d = departments.setdefault(
            source.department.code,
            {"name": source.department.name, "sources": [], "datasets": set(), "last": None},
        )
        d["sources"].append(source.name)
        d["datasets"].add(source.dataset)
        at = by_source.get(source.name)
        if at is not None and (d["last"] is None or at > d["last"]):
            d["last"] = at
    for p in entries:
        departments.setdefault(p.code, {"name": p.name, "sources": [], "datasets": set(), "last": None})
        departments[p.code]["datasets"].add(p.dataset)
    dept_status = tuple(
        DepartmentStatus(
            code=code,
            name=d["name"],
            sources=tuple(sorted(d["sources"])),
            datasets=tuple(sorted(d["datasets"])),
            provides_entry=code in provider_codes,
            last_success=d["last"],
        )
        for code, d in sorted(departments.items(), key=lambda kv: kv[1]["name"])
    )
    datasets = []
    for p in sorted(entries, key=lambda e: e.dataset):
        found = latest.get(p.dataset)
        at = _aware(found[1]) if found else None
        age = now - at if at is not None else None
        state = "never" if age is None else "fresh" if age <= allowed_age(p.update_cycle) else "stale"
        datasets.append(
            DatasetStatus(
                dataset=p.dataset,
                provider=p.name,
                provider_code=p.code,
                update_cycle=p.update_cycle,
                sources=tuple(sorted(s.name for s in sources.values() if s.dataset == p.dataset)),
                last_batch=found[0] if found else None,
                last_success=at,
                age=age,
                state=state,
            )
        )
    return Status(now, dept_status, tuple(datasets))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
