"""Quality scorecards: completeness, validity, uniqueness and timeliness, per dataset and
per department, over time.

Everything comes from the hub metadata (``hub_batches`` and ``hub_violations``), the
contracts, and the quality profile each batch's Data Docs leave beside them:

- **completeness**: the share of field values present (not null, not the empty string)
  over every field of the contract, required and optional. The profile counts them per
  field; a batch without one (validated before profiles existed, or its Data Docs were
  not built) is judged on its required fields only, from its ``required`` violations,
  and says so (``basis``);
- **validity**: valid rows over rows in (the batch record's accounting);
- **uniqueness**: one minus the share of rows whose key occurs more than once in the
  batch (rule ``key.duplicate``);
- **timeliness**: the age of the dataset's last registered batch against its contract's
  update cycle: ``ok`` up to the cycle plus :data:`GRACE` of it, then ``late``; ``never``
  when nothing was registered yet.

Scores over several batches weigh each batch by its rows. Batches that never reached
validation (failed while extracting) have no quality to score and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from quality.errors import ReportError

if TYPE_CHECKING:
    from schemas.contract import Contract

CYCLE_PERIODS: dict[str, timedelta] = {
    "real_time": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "ten_days": timedelta(days=10),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "yearly": timedelta(days=366),
}
"""How often a dataset is due, by the contract's ``update_cycle`` (the catalogue guide's
cycles); "real time" is held to an hour, the finest schedule the hub's sources run on."""
GRACE = 0.5
"""A dataset is late once its last registration is older than its cycle plus half a cycle:
a daily source that ran yesterday morning is not late this afternoon, one that missed a
whole day is."""
TREND_BATCHES = 10
"""Batches per dataset (and days per department) shown as the trend, by default."""
REGISTERED = ("registered", "published")
"""Batch statuses whose rows reached the shared table."""
DUPLICATE_RULE = "key.duplicate"
REQUIRED_RULE = "required"


@dataclass(frozen=True)
class BatchScore:
    """The quality of one validated batch."""

    batch_id: str
    dataset: str
    source: str
    department_code: str
    department: str
    status: str
    started_at: datetime
    registered_at: datetime | None
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    duplicate_rows: int
    present: int
    """Field values present (the completeness numerator)."""
    cells: int
    """Field values expected: rows times the fields counted (the denominator)."""
    basis: str
    """``all fields`` (from the batch's profile) or ``required fields`` (from its violations)."""
    data_docs: str | None

    @property
    def completeness(self) -> float | None:
        return self.present / self.cells if self.cells else None

    @property
    def validity(self) -> float | None:
        return self.rows_valid / self.rows_in if self.rows_in else None

    @property
    def uniqueness(self) -> float | None:
        return 1 - self.duplicate_rows / self.rows_in if self.rows_in else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["registered_at"] = self.registered_at.isoformat() if self.registered_at else None
        data.update(completeness=self.completeness, validity=self.validity, uniqueness=self.uniqueness)
        return data


@dataclass(frozen=True)
class Score:
    """Row-weighted quality of several batches."""

    batches: int = 0
    rows_in: int = 0
    rows_valid: int = 0
    duplicate_rows: int = 0
    present: int = 0
    cells: int = 0

    @classmethod
    def of(cls, batches: Iterable[BatchScore]) -> Score:
        items = list(batches)
        return cls(
            batches=len(items),
            rows_in=sum(b.rows_in for b in items),
            rows_valid=sum(b.rows_valid for b in items),
            duplicate_rows=sum(b.duplicate_rows for b in items),
            present=sum(b.present for b in items),
            cells=sum(b.cells for b in items),
        )

    @property
    def completeness(self) -> float | None:
        return self.present / self.cells if self.cells else None

    @property
    def validity(self) -> float | None:
        return self.rows_valid / self.rows_in if self.rows_in else None

    @property
    def uniqueness(self) -> float | None:
        return 1 - self.duplicate_rows / self.rows_in if self.rows_in else None

    def to_json(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "rows_in": self.rows_in,
            "completeness": self.completeness,
            "validity": self.validity,
            "uniqueness": self.uniqueness,
        }


@dataclass(frozen=True)
class Timeliness:
    """How old the last registered batch is against the update cycle."""

    cycle: str
    status: str
    """``ok``, ``late`` or ``never``."""
    last_registered_at: datetime | None
    age: timedelta | None
    allowed: timedelta

    def to_json(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "status": self.status,
            "last_registered_at": self.last_registered_at.isoformat() if self.last_registered_at else None,
            "age_hours": round(self.age.total_seconds() / 3600, 1) if self.age is not None else None,
            "allowed_hours": round(self.allowed.total_seconds() / 3600, 1),
        }


STATUS_ORDER = {"ok": 0, "late": 1, "never": 2}
"""Timeliness from best to worst: a department is as late as its latest dataset."""


@dataclass(frozen=True)
class DatasetCard:
    dataset: str
    title_zh: str
    title_en: str
    department_code: str
    department: str
    score: Score
    timeliness: Timeliness
    trend: list[BatchScore]
    """The last batches, oldest first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "title": {"zh": self.title_zh, "en": self.title_en},
            "department": {"code": self.department_code, "name": self.department},
            **self.score.to_json(),
            "timeliness": self.timeliness.to_json(),
            "trend": [b.to_json() for b in self.trend],
        }


@dataclass(frozen=True)
class DayScore:
    day: date
    score: Score

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **self.score.to_json()}


@dataclass(frozen=True)
class DepartmentCard:
    department_code: str
    department: str
    datasets: list[str]
    score: Score
    timeliness: str
    """The worst timeliness of its datasets."""
    trend: list[DayScore]
    """The last days with batches, oldest first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "department": {"code": self.department_code, "name": self.department},
            "datasets": self.datasets,
            **self.score.to_json(),
            "timeliness": self.timeliness,
            "trend": [d.to_json() for d in self.trend],
        }


@dataclass(frozen=True)
class Scorecard:
    generated_at: datetime
    since: date | None
    datasets: list[DatasetCard]
    departments: list[DepartmentCard]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "datasets": [d.to_json() for d in self.datasets],
            "departments": [d.to_json() for d in self.departments],
            "notes": self.notes,
        }


def parse_since(value: str | None) -> date | None:
    """``--since`` as a date (ISO ``YYYY-MM-DD``)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"--since {value!r} is not a date (expected YYYY-MM-DD)") from None


def _cycle(contract: Contract) -> str:
    value = contract.update_cycle
    return str(getattr(value, "value", value))


def timeliness(contract: Contract, last_registered_at: datetime | None, now: datetime) -> Timeliness:
    """``ok`` / ``late`` / ``never`` for a dataset whose last registration was at that time."""
    cycle = _cycle(contract)
    period = CYCLE_PERIODS.get(cycle)
    if period is None:
        raise ReportError(
            f"dataset {contract.name}: update cycle {cycle!r} has no period "
            f"(known: {', '.join(CYCLE_PERIODS)})"
        )
    allowed = period * (1 + GRACE)
    if last_registered_at is None:
        return Timeliness(cycle, "never", None, None, allowed)
    age = max(now - last_registered_at, timedelta(0))
    return Timeliness(cycle, "ok" if age <= allowed else "late", last_registered_at, age, allowed)


def to_json_text(card: Scorecard) -> str:
    return json.dumps(card.to_json(), ensure_ascii=False, indent=2)
