"""``hub quality report`` and ``hub quality docs`` as a steward runs them."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from catalog.metadata import MetadataStore
from quality.validate import Validator
from schemas.contract import load_contract
from tests.support.commands import assert_clean_error, hub
from tests.support.samples import TODAY, good_record, to_table
from tests.support.scorecards import STANDARD, add_batch


def home_of(env: dict[str, str]) -> Path:
    return Path(env["HUB_HOME"])


def prepared(env: dict[str, str]) -> MetadataStore:
    """The hub home's metadata with two population batches, the second one with Data Docs."""
    home = home_of(env)
    home.mkdir(parents=True, exist_ok=True)
    store = MetadataStore(f"sqlite:///{home / 'hub.db'}")
    now = datetime.now().astimezone()
    add_batch(store, "population-1", violations=STANDARD, started=now - timedelta(days=1, hours=3))
    add_batch(store, "population-2", rows_in=40, rows_valid=40, started=now - timedelta(hours=3))
    population = load_contract("population")
    validator = Validator(population, today=TODAY)
    rng = random.Random(1)
    validator.validate(
        to_table(population, [good_record(rng, i) for i in range(40)]), batch_id="population-2"
    )
    validator.build_data_docs("population-2", home / "datadocs")
    return store


def test_report_on_a_new_hub_lists_every_dataset_as_never_registered(env: dict[str, str]) -> None:
    result = hub("quality", "report", env=env)
    assert result.returncode == 0, result.stderr
    for dataset in ("population", "legal_entity", "certificate"):
        assert dataset in result.stdout
    assert "never" in result.stdout
    page = home_of(env) / "datadocs" / "scorecard.html"
    assert str(page) in result.stdout.replace("\n", "")
    assert page.is_file()


def test_report_prints_scores_trend_and_writes_the_html(env: dict[str, str]) -> None:
    prepared(env)
    result = hub("quality", "report", "population", env=env)
    assert result.returncode == 0, result.stderr
    assert "95.00%" in result.stdout and "99.00%" in result.stdout  # validity, uniqueness of population-1
    assert "population-1" in result.stdout and "population-2" in result.stdout  # the trend
    assert "ok" in result.stdout and "公安厅" in result.stdout
    html = (home_of(env) / "datadocs" / "scorecard.html").read_text(encoding="utf-8")
    assert "<svg" in html and "population-2" in html and "Data Docs" in html


def test_report_as_json_and_to_another_file(env: dict[str, str], tmp_path: Path) -> None:
    prepared(env)
    out = tmp_path / "elsewhere" / "card.html"
    result = hub("quality", "report", "--json", "--html", str(out), "--since", "2000-01-01", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    population = next(d for d in data["datasets"] if d["dataset"] == "population")
    assert population["batches"] == 2 and population["rows_in"] == 1040
    assert population["timeliness"]["status"] == "ok"
    assert out.is_file() and not (home_of(env) / "datadocs" / "scorecard.html").exists()


def test_report_by_department(env: dict[str, str]) -> None:
    prepared(env)
    result = hub("quality", "report", "--department", "11100000000013338W", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert [d["dataset"] for d in json.loads(result.stdout)["datasets"]] == ["population"]


def test_report_errors_are_one_line(env: dict[str, str]) -> None:
    assert_clean_error(hub("quality", "report", "--since", "yesterday", env=env), 2, "--since 'yesterday'")
    assert_clean_error(hub("quality", "report", "people", env=env), 3, "people", "population")
    assert_clean_error(hub("quality", "report", "--department", "nobody", env=env), 2, "nobody")


def test_docs_prints_the_batch_page(env: dict[str, str]) -> None:
    prepared(env)
    result = hub("quality", "docs", "population-2", env=env)
    assert result.returncode == 0, result.stderr
    page = Path(result.stdout.strip())
    assert page.is_file() and page.suffix == ".html" and "population-2" in page.name
    assert page.is_relative_to(home_of(env) / "datadocs" / "population")


def test_docs_of_a_batch_without_them_or_unknown(env: dict[str, str]) -> None:
    prepared(env)
    assert_clean_error(hub("quality", "docs", "population-1", env=env), 7, "population-1", "no Data Docs")
    assert_clean_error(hub("quality", "docs", "population-x", env=env), 7, "population-x")
