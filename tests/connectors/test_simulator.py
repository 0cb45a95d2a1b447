"""The population simulator, checked against python-stdnum as the oracle."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent

from connectors.errors import SourceUnreachableError
from connectors.simulator.names import COMPOUND_SURNAMES, MOBILE_PREFIXES
from connectors.simulator.population import DEFECT_KINDS, DefectRates, fill, generate
from schemas.contract import load_contract
from schemas.errors import TransientError

AS_OF = dt.datetime(2025, 6, 1)
RATES = DefectRates(
    bad_check_digit=0.01, impossible_date=0.015, gender_mismatch=0.02, missing_name=0.005, duplicate_id=0.01
)
N = 12_345


def classify(table: pa.Table) -> tuple[Counter[str], int]:
    """Defect kind of every row, found from the data alone, and the rows to quarantine.

    A row to quarantine fails stdnum, disagrees with its own number (gender, birth date),
    lacks a name, or shares its number with a row of different content.
    """
    rows = table.to_pylist()
    by_id = Counter(r["id_number"] for r in rows)
    kinds: Counter[str] = Counter()
    quarantined = 0
    for r in rows:
        number = r["id_number"]
        try:
            ric.validate(number)
        except InvalidChecksum:
            kinds["bad_check_digit"] += 1
            quarantined += 1
            continue
        except InvalidComponent:
            assert number[-1] == ric.calc_check_digit(number), "impossible dates keep a correct check"
            with pytest.raises(InvalidComponent):
                ric.get_birth_date(number)
            kinds["impossible_date"] += 1
            quarantined += 1
            continue
        assert ric.get_birth_date(number) == r["birth_date"]
        assert r["division_code"] == number[:6]
        if by_id[number] > 1:
            kinds["shared_id"] += 1
            quarantined += 1
        elif (int(number[16]) % 2 == 1) != (r["gender"] == "1"):
            kinds["gender_mismatch"] += 1
            quarantined += 1
        elif r["name"] is None:
            kinds["missing_name"] += 1
            quarantined += 1
        else:
            kinds["clean"] += 1
    return kinds, quarantined


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return pa.Table.from_batches(generate(N, seed=7, rates=RATES, chunk_rows=4_000, as_of=AS_OF))


def test_batches_have_the_contract_schema_and_chunk_size() -> None:
    batches = list(generate(2_500, seed=1, chunk_rows=1_000, as_of=AS_OF))
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    for batch in batches:
        assert batch.schema.equals(load_contract("population").arrow_schema(), check_metadata=True)


def test_defects_are_exact_disjoint_and_fail_stdnum_as_they_should(sample: pa.Table) -> None:
    expected = RATES.counts(N)
    kinds, quarantined = classify(sample)
    assert kinds["bad_check_digit"] == expected["bad_check_digit"] == 123
    assert kinds["impossible_date"] == expected["impossible_date"]
    assert kinds["gender_mismatch"] == expected["gender_mismatch"]
    assert kinds["missing_name"] == expected["missing_name"]
    assert kinds["shared_id"] == 2 * expected["duplicate_id"]
    assert kinds["clean"] == N - sum(expected.values()) - expected["duplicate_id"]
    assert set(expected) == set(DEFECT_KINDS)
    assert quarantined == sum(expected.values()) + expected["duplicate_id"]


def test_duplicates_are_different_people_with_a_consistent_number(sample: pa.Table) -> None:
    rows = sample.to_pylist()
    groups: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        groups.setdefault(r["id_number"], []).append(r)
    shared = [g for g in groups.values() if len(g) > 1]
    assert len(shared) == RATES.counts(N)["duplicate_id"]
    for first, second in shared:
        assert len({first["name"], second["name"]}) == 2
        assert first["name"] is not None and second["name"] is not None
        assert (first["birth_date"], first["gender"]) == (second["birth_date"], second["gender"])


def test_values_look_like_a_registry(sample: pa.Table) -> None:
    rows = sample.to_pylist()
    assert all(dt.date(1930, 1, 1) <= r["birth_date"] <= dt.date(2024, 12, 31) for r in rows)
    assert all(AS_OF - dt.timedelta(days=366) <= r["updated_at"] < AS_OF for r in rows)
    assert all(len(r["mobile"]) == 11 and int(r["mobile"][:3]) in MOBILE_PREFIXES for r in rows)
    assert {r["gender"] for r in rows} == {"1", "2"}
    assert {r["registration_status"] for r in rows} <= {"1", "2", "3", "4"}
    status = Counter(r["registration_status"] for r in rows)
    assert status["1"] > 0.9 * N
    ethnicity = Counter(r["ethnicity"] for r in rows)
    assert ethnicity["01"] > 0.85 * N
    assert set(ethnicity) <= set(load_contract("population").field("ethnicity").values or ())
    names = [r["name"] for r in rows if r["name"] is not None]
    assert all(2 <= len(n) <= 4 for n in names)
    assert any(n[:2] in COMPOUND_SURNAMES for n in names)
    assert all(r["address"].startswith(_province(r["division_code"])) for r in rows)
    assert all(r["address"].endswith(("号", "室")) for r in rows)


def _province(code: str) -> str:
    from stdnum import numdb

    return numdb.get("cn/loc").info(code)[0][1]["province"]


def test_same_seed_same_records_other_seed_other_records() -> None:
    first = pa.Table.from_batches(generate(3_000, seed=5, rates=RATES, chunk_rows=1_000, as_of=AS_OF))
    again = pa.Table.from_batches(generate(3_000, seed=5, rates=RATES, chunk_rows=1_000, as_of=AS_OF))
    other = pa.Table.from_batches(generate(3_000, seed=6, rates=RATES, chunk_rows=1_000, as_of=AS_OF))
    assert first.equals(again)
    assert not first.column("id_number").equals(other.column("id_number"))


def test_counts_stay_exact_when_chunks_do_not_divide_the_rows() -> None:
    rates = DefectRates(0.003, 0.003, 0.003, 0.003, 0.003)
    table = pa.Table.from_batches(generate(10_001, seed=3, rates=rates, chunk_rows=999, as_of=AS_OF))
    kinds, _ = classify(table)
    assert kinds["bad_check_digit"] == rates.counts(10_001)["bad_check_digit"] == 30
    assert kinds["shared_id"] == 60


def test_no_defects_means_every_row_is_valid() -> None:
    rates = DefectRates(0, 0, 0, 0, 0)
    table = pa.Table.from_batches(generate(5_000, seed=11, rates=rates, chunk_rows=2_000, as_of=AS_OF))
    kinds, quarantined = classify(table)
    assert quarantined == 0
    assert kinds["clean"] == 5_000


@pytest.mark.parametrize(
    "rates",
    [dict(bad_check_digit=-0.1), dict(missing_name=1.5), dict(duplicate_id=0.2, gender_mismatch=0.2)],
)
def test_impossible_rates_are_refused(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="defect rate"):
        DefectRates(**rates)


def test_fill_sqlite_and_read_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seen: list[int] = []
    report = fill(url, 4_321, seed=2, rates=RATES, progress=seen.append, chunk_rows=1_000)
    assert report.rows == 4_321
    assert report.defects == RATES.counts(4_321)
    assert report.expected_quarantined == sum(report.defects.values()) + report.defects["duplicate_id"]
    assert seen == [1_000, 2_000, 3_000, 4_000, 4_321]
    with sqlite3.connect(tmp_path / "registry.db") as db:
        assert db.execute("SELECT count(*) FROM population_registry").fetchone() == (4_321,)
        nulls = db.execute("SELECT count(*) FROM population_registry WHERE name IS NULL").fetchone()
        assert nulls == (report.defects["missing_name"],)
        distinct = db.execute("SELECT count(DISTINCT id_number) FROM population_registry").fetchone()
        assert distinct == (4_321 - report.defects["duplicate_id"],)
        index = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert index == [("ix_population_registry_id_number",)]

    fill(url, 100, seed=2)
    fill(url, 50, seed=3, replace=False)
    with sqlite3.connect(tmp_path / "registry.db") as db:
        assert db.execute("SELECT count(*) FROM population_registry").fetchone() == (150,)


def test_fill_unreachable_names_the_url_without_password() -> None:
    url = "postgresql+psycopg://registry:s3cr3t-pw@127.0.0.1:1/registry"
    with pytest.raises(SourceUnreachableError) as caught:
        fill(url, 10)
    assert isinstance(caught.value, TransientError)
    assert "s3cr3t-pw" not in str(caught.value)
    assert "registry:***@127.0.0.1:1/registry" in str(caught.value)


def test_fill_creates_the_folder_of_a_new_sqlite_file(tmp_path: Path) -> None:
    report = fill(f"sqlite:///{tmp_path / 'new' / 'registry.db'}", 10)
    assert report.rows == 10 and (tmp_path / "new" / "registry.db").is_file()


def test_fill_into_an_unwritable_place_is_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SourceUnreachableError, match="file"):
        fill(f"sqlite:///{blocker / 'registry.db'}", 10)


def test_uniform_rates_and_the_report_summary(tmp_path: Path) -> None:
    rates = DefectRates.uniform(0.01)
    assert rates.counts(1_000) == dict.fromkeys(DEFECT_KINDS, 10)
    report = fill(f"sqlite:///{tmp_path / 'r.db'}", 1_000, table="registry", rates=rates)
    summary = report.summary()
    assert "1,000 rows into registry" in summary
    assert "duplicate_id 10" in summary and "expected quarantined: 60" in summary
