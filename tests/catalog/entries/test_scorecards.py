"""Scorecards from the hub metadata: exact figures, timeliness against the update cycle, HTML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest

import catalog.entries as reports
from catalog.metadata import MetadataStore, Violation
from quality.datadocs import profile_path
from schemas.contract import load_contract
from schemas.errors import ConfigurationError, ContractError
from tests.support.scorecards import MARKET, NOW, POLICE, STANDARD, add_batch, card_of


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{tmp_path / 'hub.db'}")


def test_figures_of_one_batch_from_its_violations(store: MetadataStore, tmp_path: Path) -> None:
    add_batch(store, "p-1", violations=STANDARD)
    with store.session() as session:  # a second rule on a duplicated row counts the row once
        session.add(
            Violation(
                batch_id="p-1", row=1, field="id_number", rule="key.duplicate", message_zh="", message_en=""
            )
        )
    card = reports.scorecard(store, datadocs=tmp_path / "datadocs", dataset="population", now=NOW)
    (score,) = card_of(card, "population").trend
    assert score.basis == "required fields"
    required = [f for f in load_contract("population").fields if f.required]
    assert (score.present, score.cells) == (1000 * len(required) - 7, 1000 * len(required))
    assert score.validity == pytest.approx(0.95)
    assert score.uniqueness == pytest.approx(0.99)
    assert card.notes  # says that completeness counted required fields only


def test_completeness_counts_every_field_when_the_profile_is_there(
    store: MetadataStore, tmp_path: Path
) -> None:
    root = tmp_path / "datadocs"
    add_batch(store, "p-1", violations=STANDARD)
    contract = load_contract("population")
    present = {f.name: {"present": 1000} for f in contract.fields}
    present["mobile"] = {"present": 600}
    present["address"] = {"present": 900}
    path = profile_path(root, "population", "p-1")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rows_in": 1000, "fields": present, "data_docs": "population/x.html"}))
    card = reports.scorecard(store, datadocs=root, dataset="population", now=NOW)
    (score,) = card_of(card, "population").trend
    assert score.basis == "all fields"
    assert score.completeness == pytest.approx(
        (1000 * len(contract.fields) - 500) / (1000 * len(contract.fields))
    )
    assert score.data_docs == str(root / "population/x.html")
    assert not card.notes


def test_a_profile_of_other_rows_is_not_trusted(store: MetadataStore, tmp_path: Path) -> None:
    root = tmp_path / "datadocs"
    add_batch(store, "p-1")
    path = profile_path(root, "population", "p-1")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rows_in": 999, "fields": {}}))
    card = reports.scorecard(store, datadocs=root, dataset="population", now=NOW)
    assert card_of(card, "population").trend[0].basis == "required fields"


def test_scores_weigh_batches_by_rows(store: MetadataStore, tmp_path: Path) -> None:
    add_batch(store, "p-1", rows_in=1000, rows_valid=900, started=NOW - timedelta(days=2))
    add_batch(store, "p-2", rows_in=3000, rows_valid=3000, started=NOW - timedelta(days=1))
    add_batch(store, "p-0", rows_in=500, rows_valid=None, registered=False, started=NOW - timedelta(days=3))
    card = card_of(reports.scorecard(store, datadocs=None, dataset="population", now=NOW), "population")
    assert card.score.batches == 2 and card.score.rows_in == 4000  # p-0 never reached validation
    assert card.score.validity == pytest.approx(3900 / 4000)
    assert [b.batch_id for b in card.trend] == ["p-1", "p-2"]  # oldest first


@pytest.mark.parametrize(
    ("age", "status"),
    [(timedelta(hours=2), "ok"), (timedelta(hours=36), "ok"), (timedelta(hours=37), "late")],
)
def test_timeliness_against_a_daily_cycle(age: timedelta, status: str) -> None:
    result = reports.timeliness(load_contract("population"), NOW - age, NOW)
    assert result.status == status and result.cycle == "daily"
    assert result.allowed == timedelta(hours=36)


def test_timeliness_of_every_cycle_and_of_a_dataset_never_registered(store: MetadataStore) -> None:
    contract = load_contract("population")
    assert reports.timeliness(contract, None, NOW).status == "never"
    assert set(reports.CYCLE_PERIODS) >= {
        "real_time",
        "daily",
        "weekly",
        "ten_days",
        "monthly",
        "quarterly",
        "yearly",
    }
    add_batch(store, "p-1", started=NOW - timedelta(days=5))
    card = reports.scorecard(store, datadocs=None, now=NOW)
    assert card_of(card, "population").timeliness.status == "late"
    assert card_of(card, "legal_entity").timeliness.status == "never"


def test_since_keeps_timeliness_of_the_last_registration(store: MetadataStore) -> None:
    add_batch(store, "p-1", started=NOW - timedelta(hours=20))
    card = reports.scorecard(store, datadocs=None, dataset="population", since=date(2025, 6, 11), now=NOW)
    population = card_of(card, "population")
    assert population.score.batches == 0
    assert population.timeliness.status == "ok"


def test_by_department_and_the_department_filter(store: MetadataStore) -> None:
    add_batch(store, "p-1", rows_in=1000, rows_valid=990)
    add_batch(store, "l-1", dataset="legal_entity", rows_in=200, rows_valid=180, department=MARKET)
    card = reports.scorecard(store, datadocs=None, now=NOW)
    departments = {d.department: d for d in card.departments}
    assert departments["公安厅"].score.validity == pytest.approx(0.99)
    assert departments["市场监督管理局"].datasets == ["legal_entity"]
    assert departments["市场监督管理局"].trend[-1].score.rows_in == 200
    only = reports.scorecard(store, datadocs=None, department=MARKET[0], now=NOW)
    assert [d.dataset for d in only.datasets] == ["legal_entity"]
    by_name = reports.scorecard(store, datadocs=None, department="公安厅", now=NOW)
    assert [d.dataset for d in by_name.datasets] == ["population"]
    with pytest.raises(ConfigurationError, match="no dataset of department 'nobody'"):
        reports.scorecard(store, datadocs=None, department="nobody", now=NOW)


def test_trend_is_the_last_batches(store: MetadataStore) -> None:
    for n in range(5):
        add_batch(store, f"p-{n}", started=NOW - timedelta(days=5 - n))
    card = reports.scorecard(store, datadocs=None, dataset="population", last=3, now=NOW)
    assert [b.batch_id for b in card_of(card, "population").trend] == ["p-2", "p-3", "p-4"]
    assert card_of(card, "population").score.batches == 5


def test_bad_input_is_named() -> None:
    with pytest.raises(ConfigurationError, match="--since '2025-13-01' is not a date"):
        reports.parse_since("2025-13-01")
    assert reports.parse_since(None) is None


def test_unknown_dataset_is_a_contract_error(store: MetadataStore) -> None:
    with pytest.raises(ContractError, match="people"):
        reports.scorecard(store, datadocs=None, dataset="people", now=NOW)


def test_json_has_every_figure(store: MetadataStore) -> None:
    add_batch(store, "p-1", violations=STANDARD)
    data = json.loads(reports.to_json_text(reports.scorecard(store, datadocs=None, now=NOW)))
    population = next(d for d in data["datasets"] if d["dataset"] == "population")
    assert population["validity"] == pytest.approx(0.95) and population["uniqueness"] == pytest.approx(0.99)
    assert population["timeliness"]["status"] == "ok" and population["timeliness"]["allowed_hours"] == 36
    assert population["trend"][0]["batch_id"] == "p-1"
    assert {d["department"]["code"] for d in data["departments"]} >= {POLICE[0]}


def test_html_is_self_contained_with_a_chart_per_dataset(store: MetadataStore, tmp_path: Path) -> None:
    for n in range(3):
        add_batch(store, f"p-{n}", rows_valid=900 + 30 * n, started=NOW - timedelta(days=3 - n))
    add_batch(store, "l-1", dataset="legal_entity", department=("X1", "<script>alert(1)</script>"))
    page = reports.render_html(
        reports.scorecard(store, datadocs=None, now=NOW), tmp_path / "out" / "card.html"
    )
    content = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", content)  # nothing from the network
    assert "<script>alert(1)</script>" not in content and "&lt;script&gt;" in content
    svgs = re.findall(r"<svg.*?</svg>", content, flags=re.S)
    assert len(svgs) >= 3  # every department's and dataset's trend
    for svg in svgs:
        ET.fromstring(svg)
    assert content.count("<polyline") >= 3  # completeness, validity and uniqueness of population
    assert (
        "人口基础信息" in content and "按时 / on time" in content and "无数据 / never registered" in content
    )


def test_html_links_each_batch_to_its_data_docs(store: MetadataStore, tmp_path: Path) -> None:
    root = tmp_path / "datadocs"
    add_batch(store, "p-1")
    contract = load_contract("population")
    path = profile_path(root, "population", "p-1")
    path.parent.mkdir(parents=True)
    fields = {f.name: {"present": 1000} for f in contract.fields}
    path.write_text(
        json.dumps({"rows_in": 1000, "fields": fields, "data_docs": "population/validations/p-1.html"})
    )
    page = reports.render_html(reports.scorecard(store, datadocs=root, now=NOW), root / "scorecard.html")
    assert 'href="population/validations/p-1.html"' in page.read_text(encoding="utf-8")
