"""The shared world: its identifier code against python-stdnum, its persons, day-2 population changes."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from stdnum.cn import ric, uscc

from connectors.simulator import arrays, population
from connectors.simulator import world as w
from tests.support.codes import org_code_ok

AS_OF = dt.datetime(2025, 6, 1)
RATES = population.DefectRates.uniform(0.01)


@pytest.mark.parametrize(
    "code", ["91110000600037341L", "9144030071526726XG", "91310115MA1K3BTP2B", "121200004013590816"]
)
def test_published_codes_rebuild_from_their_parts(code: str) -> None:
    assert org_code_ok(code[8:17])
    parts = np.frombuffer(code.encode(), dtype=np.uint8)[None, :]
    rebuilt = arrays.uscc_matrix(parts[:, :2], np.array([int(code[2:8])]), parts[:, 8:16])
    assert bytes(rebuilt[0]).decode() == code


def test_generated_codes_pass_stdnum_and_each_breaker_fails_only_its_rule() -> None:
    rng = np.random.default_rng(1)
    n = 2_000
    index = np.arange(n)
    body = arrays.base_chars(arrays.permuted(index, 31**8, 5, 19_088_743), 8, arrays.USCC_ALPHABET)
    prefix = np.frombuffer(b"91", dtype=np.uint8)[None, :].repeat(n, axis=0)
    codes = arrays.uscc_matrix(prefix, np.full(n, 330106), body)
    text = arrays.strings(codes).to_pylist()
    assert len(set(text)) == n
    assert all(uscc.is_valid(c) and org_code_ok(c[8:17]) for c in text)

    bad_check = codes.copy()
    arrays.break_uscc_check(rng, bad_check)
    assert not any(uscc.is_valid(c) for c in arrays.strings(bad_check).to_pylist())
    bad_org = codes.copy()
    arrays.break_org_check(rng, bad_org)
    assert all(uscc.is_valid(c) and not org_code_ok(c[8:17]) for c in arrays.strings(bad_org).to_pylist())


def test_government_codes_are_valid_and_fixed_by_county_and_office() -> None:
    codes = arrays.strings(
        arrays.government_uscc(np.array([330106, 330106, 110105]), np.array([0, 1, 0]))
    ).to_pylist()
    assert all(uscc.is_valid(c) and org_code_ok(c[8:17]) and c.startswith("11") for c in codes)
    assert len(set(codes)) == 3 and codes[0][2:8] == "330106"
    assert arrays.strings(arrays.government_uscc(np.array([330106]), np.array([0]))).to_pylist() == codes[:1]


def test_permuted_is_a_bijection_and_refuses_a_shared_factor() -> None:
    values = arrays.permuted(np.arange(10_000), 10_000, 3, 6_181)
    assert np.array_equal(np.sort(values), np.arange(10_000))
    with pytest.raises(ValueError, match="factor"):
        arrays.permuted(np.arange(3), 100, 0, 10)


def test_ric_breaker_and_clean_persons_agree_with_stdnum() -> None:
    table = pa.Table.from_batches(
        population.generate(6_000, seed=4, rates=RATES, chunk_rows=2_000, as_of=AS_OF)
    )
    clean = arrays.clean_persons(table)
    counts = RATES.counts(6_000)
    assert int(clean.sum()) == 6_000 - population.expected_quarantined(counts)
    ids = table.column("id_number").to_pylist()
    assert all(ric.is_valid(ids[i]) for i in np.flatnonzero(clean))
    broken = arrays.break_ric(
        np.random.default_rng(2), table.column("id_number").take(pa.array(np.flatnonzero(clean)[:500]))
    )
    assert not any(ric.is_valid(x) for x in broken.to_pylist())


def test_the_world_holds_exactly_the_registry_persons() -> None:
    world = w.World(seed=9, persons=3_000, population_rates=RATES, as_of=AS_OF)
    registry = pa.Table.from_batches(population.generate(3_000, seed=9, rates=RATES, as_of=AS_OF))
    assert pa.Table.from_batches(world.population()).equals(registry)
    people = world.people
    pairs = set(
        zip(registry.column("id_number").to_pylist(), registry.column("name").to_pylist(), strict=True)
    )
    assert set(zip(people.ids.to_pylist(), people.names.to_pylist(), strict=True)) <= pairs
    assert set(
        registry.filter(pa.compute.equal(registry.column("registration_status"), "1"))
        .column("id_number")
        .to_pylist()
    ) >= set(people.ids.to_pylist())
    assert people.births[people.adult].max() <= np.datetime64("2006-06-01")


def test_rebatch_keeps_records_and_sizes() -> None:
    batches = [pa.record_batch({"x": list(range(i, i + 7))}) for i in range(0, 70, 7)]
    out = list(arrays.rebatch(iter(batches), 20))
    assert [b.num_rows for b in out] == [20, 20, 20, 10]
    assert pa.Table.from_batches(out).column("x").to_pylist() == list(range(70))


@pytest.mark.parametrize("rates", [dict(bad_check=-0.1), dict(duplicate_id=0.2, malformed_id=0.2)])
def test_impossible_rates_are_refused(rates: dict[str, float]) -> None:
    from connectors.simulator.certificate import DefectRates

    with pytest.raises(ValueError, match="defect rate"):
        DefectRates(**rates)


# --- day 2 of the population registry ---------------------------------------------------------


@pytest.fixture(scope="module")
def day2() -> tuple[pa.Table, population.Changes]:
    existing = pa.Table.from_batches(population.generate(5_000, seed=3, rates=RATES, as_of=AS_OF))
    changes = population.changes(
        5_000, seed=3, new=120, updated=80, deregistered=40, rates=RATES, as_of=AS_OF
    )
    return existing, changes


def test_population_changes_are_exact(day2: tuple[pa.Table, population.Changes]) -> None:
    existing, changes = day2
    assert changes.counts() == {"new": 120, "updated": 80, "status_changed": 40}
    before = {r["id_number"]: r for r in existing.to_pylist()}
    new_ids = changes.new.column("id_number").to_pylist()
    assert len(set(new_ids)) == 120 and not set(new_ids) & set(before)
    assert all(ric.is_valid(x) for x in new_ids)
    assert arrays.clean_persons(changes.new).all()
    for row in changes.updated.to_pylist():
        old = before[row["id_number"]]
        assert old["registration_status"] == "1" and row["name"] == old["name"]
        assert (row["mobile"], row["address"]) != (old["mobile"], old["address"])
        assert row["address"].startswith(old["address"][:2])
    for row in changes.status_changed.to_pylist():
        assert before[row["id_number"]]["registration_status"] == "1"
        assert row["registration_status"] in {"2", "3"}
    assert len(changes.keys()) == changes.rows
    latest = max(existing.column("updated_at").to_pylist())
    stamps = changes.records().column("updated_at").to_pylist()
    assert latest < AS_OF <= min(stamps) and max(stamps) < AS_OF + dt.timedelta(days=1)
    again = population.changes(5_000, seed=3, new=120, updated=80, deregistered=40, rates=RATES, as_of=AS_OF)
    assert again.records().equals(changes.records())


def test_population_changes_apply_to_sqlite(
    tmp_path: Path, day2: tuple[pa.Table, population.Changes]
) -> None:
    _, changes = day2
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    population.fill(url, 5_000, seed=3, rates=RATES)
    # fill() anchors updated_at at today; rewrite day 1 to the fixture's as_of for the window check
    with sqlite3.connect(tmp_path / "registry.db") as db:
        db.execute("UPDATE population_registry SET updated_at = '2025-05-01 00:00:00'")
    report = population.apply_changes(url, "population_registry", changes)
    assert (report.inserted, report.replaced) == (120, 120)
    with sqlite3.connect(tmp_path / "registry.db") as db:
        assert db.execute("SELECT count(*) FROM population_registry").fetchone() == (5_120,)
        since = db.execute(
            "SELECT count(*), count(DISTINCT id_number) FROM population_registry WHERE updated_at >= ?",
            (AS_OF.isoformat(sep=" "),),
        ).fetchone()
        assert since == (changes.rows, changes.rows)
        status = db.execute(
            "SELECT count(*) FROM population_registry WHERE updated_at >= ? AND registration_status IN ('2', '3')",
            (AS_OF.isoformat(sep=" "),),
        ).fetchone()[0]
        assert status >= 40


def test_day_one_is_not_a_change_day() -> None:
    with pytest.raises(ValueError, match="day 2"):
        population.changes(100, day=1, new=1, updated=1, deregistered=1, as_of=AS_OF)


def test_too_many_changes_are_refused() -> None:
    with pytest.raises(ValueError, match="clean active persons"):
        population.changes(50, new=0, updated=40, deregistered=40, as_of=AS_OF)
