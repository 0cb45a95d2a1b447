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

import html
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quality.datadocs import read_profile
from quality.errors import ReportError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
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
_CHUNK = 500


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


_STATUS_ORDER = {"ok": 0, "late": 1, "never": 2}


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


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _rule_rows(store: MetadataStore, batch_ids: Sequence[str]) -> dict[str, dict[tuple[str, str], int]]:
    """batch -> (rule, field) -> distinct rows, for the rules the scorecard reads."""
    from sqlalchemy import func, select

    from catalog.metadata import Violation

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
    from sqlalchemy import select

    from catalog.metadata import Batch
    from schemas.contract import load_contract

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
    from schemas.contract import load_contract

    return {name: load_contract(name) for name in sorted(set(names))}


def _all_datasets() -> list[str]:
    from schemas.contract import CONTRACT_DIR

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
    from sqlalchemy import func, select

    from catalog.metadata import Batch

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
        worst = max((c.timeliness.status for c in members), key=lambda s: _STATUS_ORDER[s])
        result.append(
            DepartmentCard(code, names[code], [c.dataset for c in members], Score.of(mine), worst, trend)
        )
    return result


def to_json_text(card: Scorecard) -> str:
    return json.dumps(card.to_json(), ensure_ascii=False, indent=2)


# --- HTML -----------------------------------------------------------------------------

_METRICS = (
    ("completeness", "完整性", "#2563eb"),
    ("validity", "有效性", "#16a34a"),
    ("uniqueness", "唯一性", "#9333ea"),
)
_STATUS_TEXT = {"ok": "按时 / on time", "late": "逾期 / late", "never": "无数据 / never registered"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _chart(points: list[tuple[str, dict[str, float | None]]], title: str) -> str:
    """An inline SVG line chart of the three shares over ``points`` (label, values)."""
    width, height, left, right, top, bottom = 640, 220, 56, 16, 28, 36
    if not points:
        return f'<p class="empty">{_e(title)}: 无批次 / no batches</p>'
    values = [v for _, m in points for v in m.values() if v is not None]
    low = min(values, default=1.0)
    floor = max(0.0, min(0.99, (int(low * 100) - 1) / 100)) if values else 0.9
    span = 1.0 - floor or 0.01
    inner_w, inner_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (inner_w * i / (len(points) - 1) if len(points) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return top + inner_h * (1.0 - (v - floor) / span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#ddd"/>',
    ]
    for k in range(5):
        v = floor + span * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v * 100:.1f}%</text>'
        )
    step = max(1, len(points) // 6)
    for i, (label, _) in enumerate(points):
        if i % step == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                f"{_e(label)}</text>"
            )
    for key, zh, colour in _METRICS:
        known = [
            (i, label, value) for i, (label, m) in enumerate(points) if (value := m.get(key)) is not None
        ]
        if len(known) > 1:
            path = " ".join(f"{x(i):.1f},{y(value):.1f}" for i, _, value in known)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, label, value in known:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(label)} {zh} {key}: {_pct(value)}</title></circle>"
            )
    for j, (key, zh, colour) in enumerate(_METRICS):
        parts.append(
            f'<rect x="{left + j * 150}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + j * 150 + 14}" y="15" font-size="12">{zh} {key}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _link(target: str | None, page: Path) -> str:
    if not target:
        return ""
    relative = os.path.relpath(target, page.parent)
    return f'<a href="{_e(Path(relative).as_posix())}">Data Docs</a>'


def _metrics(item: BatchScore | Score) -> dict[str, float | None]:
    return {key: getattr(item, key) for key, _, _ in _METRICS}


_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f4f6}
td.l,th.l{text-align:left}.ok{color:#15803d}.late{color:#b91c1c;font-weight:bold}.never{color:#6b7280}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}svg{max-width:680px;width:100%;height:auto}.note{color:#6b7280}
"""


def render_html(card: Scorecard, page: Path) -> Path:
    """Write the scorecard as one self-contained HTML page (inline CSS and SVG, no network)."""
    page = Path(page)
    out: list[str] = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>数据质量评分卡 / Data quality scorecard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>数据质量评分卡 / Data quality scorecard</h1>",
        f'<p class="note">生成于 / generated {_e(card.generated_at.strftime("%Y-%m-%d %H:%M UTC"))}'
        + (f" · 自 / since {_e(card.since.isoformat())}" if card.since else "")
        + "</p>",
    ]
    out += [f'<p class="note">{_e(n)}</p>' for n in card.notes]
    out.append("<h2>按部门 / By department</h2>")
    out.append(
        '<table><tr><th class="l">部门 department</th><th class="l">数据集 datasets</th><th>批次 batches</th>'
        "<th>行 rows</th><th>完整性 completeness</th><th>有效性 validity</th><th>唯一性 uniqueness</th>"
        '<th class="l">及时性 timeliness</th></tr>'
    )
    for d in card.departments:
        out.append(
            f'<tr><td class="l">{_e(d.department)}<br><small>{_e(d.department_code)}</small></td>'
            f'<td class="l">{_e(", ".join(d.datasets))}</td><td>{d.score.batches}</td>'
            f"<td>{d.score.rows_in:,}</td><td>{_pct(d.score.completeness)}</td>"
            f"<td>{_pct(d.score.validity)}</td><td>{_pct(d.score.uniqueness)}</td>"
            f'<td class="l {d.timeliness}">{_e(_STATUS_TEXT[d.timeliness])}</td></tr>'
        )
    out.append("</table>")
    for d in card.departments:
        points = [(day.day.strftime("%m-%d"), _metrics(day.score)) for day in d.trend]
        out.append(f"<h3>{_e(d.department)} · 按日趋势 / daily trend</h3>")
        out.append(_chart(points, f"{d.department} daily trend"))
    out.append("<h2>按数据集 / By dataset</h2>")
    for ds in card.datasets:
        t = ds.timeliness
        age = f"{t.age.total_seconds() / 3600:.1f} h" if t.age is not None else "–"
        out.append(f"<h3>{_e(ds.title_zh)} / {_e(ds.title_en)} <small>({_e(ds.dataset)})</small></h3>")
        out.append(
            '<div class="cards">'
            f"<div class=card>完整性 completeness<b>{_pct(ds.score.completeness)}</b></div>"
            f"<div class=card>有效性 validity<b>{_pct(ds.score.validity)}</b></div>"
            f"<div class=card>唯一性 uniqueness<b>{_pct(ds.score.uniqueness)}</b></div>"
            f'<div class=card>及时性 timeliness<b class="{t.status}">{_e(_STATUS_TEXT[t.status])}</b>'
            f"<small>{_e(t.cycle)} · age {age} · allowed {t.allowed.total_seconds() / 3600:.0f} h</small></div>"
            f"<div class=card>批次 batches<b>{ds.score.batches}</b><small>{ds.score.rows_in:,} rows</small>"
            "</div></div>"
        )
        points = [(b.started_at.strftime("%m-%d %H:%M"), _metrics(b)) for b in ds.trend]
        out.append(_chart(points, f"{ds.dataset} trend"))
        if ds.trend:
            out.append(
                '<table><tr><th class="l">批次 batch</th><th class="l">状态 status</th><th>开始 started</th>'
                "<th>行 rows</th><th>隔离 quarantined</th><th>完整性</th><th>有效性</th><th>唯一性</th>"
                '<th class="l">依据 basis</th><th class="l"></th></tr>'
            )
            for b in reversed(ds.trend):
                out.append(
                    f'<tr><td class="l">{_e(b.batch_id)}</td><td class="l">{_e(b.status)}</td>'
                    f"<td>{_e(b.started_at.strftime('%Y-%m-%d %H:%M'))}</td><td>{b.rows_in:,}</td>"
                    f"<td>{b.rows_quarantined:,}</td><td>{_pct(b.completeness)}</td>"
                    f"<td>{_pct(b.validity)}</td><td>{_pct(b.uniqueness)}</td>"
                    f'<td class="l">{_e(b.basis)}</td><td class="l">{_link(b.data_docs, page)}</td></tr>'
                )
            out.append("</table>")
    out.append("</body></html>")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(out), encoding="utf-8")
    return page
