"""Batch records in a metadata store, for the scorecard tests and the quality commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import catalog.entries as reports
from catalog.metadata import MetadataStore, Violation
from schemas.contract import load_contract

STANDARD = {
    ("key.duplicate", "id_number"): range(1, 11),
    ("required", "name"): range(20, 25),
    ("required", "updated_at"): range(30, 32),
    ("gb11643.check_digit", "id_number"): range(40, 73),
}
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
POLICE = ("11100000000013338W", "公安厅")
MARKET = ("11100000000013127D", "市场监督管理局")


def add_batch(
    store: MetadataStore,
    batch_id: str,
    *,
    dataset: str = "population",
    rows_in: int = 1000,
    rows_valid: int | None = 950,
    started: datetime = NOW - timedelta(hours=30),
    registered: bool = True,
    department: tuple[str, str] = POLICE,
    violations: dict[tuple[str, str], range] | None = None,
) -> None:
    """A batch record with its accounting and the violations the scorecard reads."""
    contract = load_contract(dataset)
    store.start_batch(batch_id, dataset=dataset, source=dataset, contract_version=contract.version)
    fields: dict[str, object] = {
        "rows_in": rows_in,
        "rows_valid": rows_valid,
        "rows_quarantined": None if rows_valid is None else rows_in - rows_valid,
        "started_at": started,
        "department": department[1],
        "status": "registered" if registered else ("validated" if rows_valid is not None else "failed"),
    }
    if registered:
        fields["registered_at"] = started + timedelta(minutes=5)
    if hasattr(store.get_batch(batch_id), "department_code"):
        fields["department_code"] = department[0]
    store.update_batch(batch_id, **fields)
    with store.session() as session:
        for (rule, field), rows in (violations or {}).items():
            for row in rows:
                session.add(
                    Violation(
                        batch_id=batch_id, row=row, field=field, rule=rule, message_zh="z", message_en="e"
                    )
                )


def card_of(card: reports.Scorecard, dataset: str) -> reports.DatasetCard:
    return next(d for d in card.datasets if d.dataset == dataset)
