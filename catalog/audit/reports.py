"""Reports over the access log: filters, counts per system and day, denied attempts and days
of unusual volume flagged against each system's median.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
)

from catalog.audit.chain import (
    public_entry,
)
from catalog.audit.documents import (
    stamp,
)
from catalog.audit.fields import OUTCOMES
from catalog.audit.verify import (
    Verification,
)
from catalog.metadata import (
    AccessEntry,
    utcnow,
)


@dataclass(frozen=True)
class Filters:
    """Which entries a report or export covers (every field optional)."""

    system: str | None = None
    dataset: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    action: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.system is not None:
            clauses.append(AccessEntry.system == self.system)
        if self.dataset is not None:
            clauses.append(AccessEntry.dataset == self.dataset)
        if self.since is not None:
            clauses.append(AccessEntry.at >= self.since)
        if self.until is not None:
            clauses.append(AccessEntry.at < self.until)
        if self.outcome is not None:
            if self.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
            clauses.append(AccessEntry.outcome == self.outcome)
        if self.action is not None:
            clauses.append(AccessEntry.action == self.action)
        return clauses

    def describe(self) -> dict[str, str]:
        shown = {
            "system": self.system,
            "dataset": self.dataset,
            "since": stamp(self.since) if self.since else None,
            "until": stamp(self.until) if self.until else None,
            "outcome": self.outcome,
            "action": self.action,
        }
        return {k: v for k, v in shown.items() if v is not None}


@dataclass(frozen=True)
class Group:
    day: str
    system: str | None
    dataset: str | None
    action: str
    calls: int
    rows: int
    denied: int


@dataclass(frozen=True)
class Tally:
    """Calls, rows and denied calls of one system, dataset, day, action or outcome."""

    name: str
    calls: int = 0
    rows: int = 0
    denied: int = 0


@dataclass(frozen=True)
class Unusual:
    """A system's day above ``factor`` times its median day."""

    system: str
    day: str
    metric: str
    value: int
    median: float
    factor: float


@dataclass
class Report:
    filters: Filters
    generated_at: datetime
    calls: int
    rows: int
    denied: int
    by_system: list[Tally]
    by_dataset: list[Tally]
    by_day: list[Tally]
    by_action: list[Tally]
    by_system_day: dict[str, dict[str, Tally]]
    denied_entries: list[dict[str, Any]]
    unusual: list[Unusual]
    unusual_factor: float
    unusual_min_days: int
    verification: Verification | None = field(default=None)

    @classmethod
    def build(
        cls,
        filters: Filters,
        groups: Sequence[Group],
        denied_entries: list[dict[str, Any]],
        *,
        factor: float,
        min_days: int,
    ) -> Report:
        def tally(key: Callable[[Group], str]) -> list[Tally]:
            sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for g in groups:
                s = sums[key(g)]
                s[0] += g.calls
                s[1] += g.rows
                s[2] += g.denied
            return [Tally(name, *values) for name, values in sums.items()]

        by_system_day: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        for g in groups:
            s = by_system_day[g.system or "-"][g.day]
            s[0] += g.calls
            s[1] += g.rows
            s[2] += g.denied
        unusual: list[Unusual] = []
        for system, days in by_system_day.items():
            if system == "-" or len(days) < min_days:
                continue
            for metric, index in (("calls", 0), ("rows", 1)):
                values = [v[index] for v in days.values() if v[index] > 0]
                if len(values) < min_days:
                    continue
                median = statistics.median(values)
                for day, v in sorted(days.items()):
                    if median > 0 and v[index] > factor * median:
                        unusual.append(Unusual(system, day, metric, v[index], float(median), factor))
        calls = sum(g.calls for g in groups)

        def ranked(tallies: list[Tally]) -> list[Tally]:
            return sorted(tallies, key=lambda t: (-t.calls, t.name))

        return cls(
            filters=filters,
            generated_at=utcnow(),
            calls=calls,
            rows=sum(g.rows for g in groups),
            denied=sum(g.denied for g in groups),
            by_system=ranked(tally(lambda g: g.system or "-")),
            by_dataset=ranked(tally(lambda g: g.dataset or "-")),
            by_day=sorted(tally(lambda g: g.day), key=lambda t: t.name),
            by_action=ranked(tally(lambda g: g.action)),
            by_system_day={
                s: {d: Tally(d, *v) for d, v in sorted(days.items())}
                for s, days in sorted(by_system_day.items())
            },
            denied_entries=denied_entries,
            unusual=sorted(unusual, key=lambda u: (u.day, u.system, u.metric)),
            unusual_factor=factor,
            unusual_min_days=min_days,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "filters": self.filters.describe(),
            "generated_at": stamp(self.generated_at),
            "calls": self.calls,
            "rows": self.rows,
            "denied": self.denied,
            "by_system": [t.__dict__ for t in self.by_system],
            "by_dataset": [t.__dict__ for t in self.by_dataset],
            "by_day": [t.__dict__ for t in self.by_day],
            "by_action": [t.__dict__ for t in self.by_action],
            "denied_entries": [public_entry(e) for e in self.denied_entries],
            "unusual": [u.__dict__ for u in self.unusual],
            "unusual_rule": {"factor": self.unusual_factor, "min_days": self.unusual_min_days},
        }
