"""The certificate issuing system simulator, checked against python-stdnum and the world."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pyarrow as pa
import pytest
from stdnum.cn import ric, uscc
from stdnum.iso7064 import mod_37_36

from connectors.simulator import certificate as cert
from connectors.simulator import legal_entity as le
from connectors.simulator import population
from connectors.simulator.world import World
from schemas.contract import load_contract

AS_OF = dt.datetime(2025, 6, 1)
TODAY = AS_OF.date()
RATES = cert.DefectRates(
    bad_check=0.01, malformed_id=0.012, invalid_holder_code=0.015, reversed_window=0.008, expired_but_valid=0.02,
    duplicate_id=0.01,
)  # fmt: skip
N = 12_345
WORLD = World(
    seed=11,
    persons=6_000,
    entities=2_500,
    population_rates=population.DefectRates.uniform(0.01),
    entity_rates=le.DefectRates.uniform(0.01),
    as_of=AS_OF,
)
ID = re.compile(r"^1\.2\.156\.3005\.2\.([0-9A-Z]{21})\.([0-9A-Z]{18})\.([0-9A-Z]+)\.(\d{3})\.([0-9A-Z])$")


def identifier_ok(value: str) -> bool | None:
    """True: valid; False: well formed with a wrong check; None: malformed."""
    match = ID.match(value)
    if match is None:
        return None
    return mod_37_36.is_valid("".join(match.groups()))


def holder_ok(code: str, kind: str) -> bool:
    return ric.is_valid(code) if kind == cert.PERSON else uscc.is_valid(code)


def kind_of(r: dict[str, object], by_id: Counter[str]) -> str:
    """A row's defect kind, found from the data alone ("clean" when it has none)."""
    code, until, since = str(r["certificate_id"]), r["valid_until"], r["valid_from"]
    ok = identifier_ok(code)
    if ok is None:
        return "malformed_id"
    if not ok:
        return "bad_check"
    if by_id[code] > 1:
        return "shared_id"
    if not holder_ok(str(r["holder_code"]), str(r["holder_code_type"])):
        return "invalid_holder_code"
    if isinstance(until, dt.date) and isinstance(since, dt.date) and until < since:
        return "reversed_window"
    if r["status"] == "有效" and isinstance(until, dt.date) and until < TODAY:
        return "expired_but_valid"
    return "clean"


def classify(table: pa.Table) -> tuple[Counter[str], int]:
    rows = table.to_pylist()
    by_id = Counter(r["certificate_id"] for r in rows)
    kinds = Counter(kind_of(r, by_id) for r in rows)
    return kinds, len(rows) - kinds["clean"]


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return pa.Table.from_batches(cert.generate(N, rates=RATES, chunk_rows=4_000, world=WORLD))


def test_the_published_example_checks() -> None:
    assert identifier_ok("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F")
    assert all(uscc.is_valid(code) for code in cert.AUTHORITIES.values())


def test_batches_have_the_contract_schema_and_chunk_size() -> None:
    batches = list(cert.generate(2_500, chunk_rows=1_000, world=WORLD))
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    assert all(b.schema.equals(load_contract("certificate").arrow_schema()) for b in batches)


def test_defects_are_exact_disjoint_and_fail_as_they_should(sample: pa.Table) -> None:
    expected = RATES.counts(N)
    kinds, quarantined = classify(sample)
    for kind in ("malformed_id", "bad_check", "invalid_holder_code", "reversed_window", "expired_but_valid"):
        assert kinds[kind] == expected[kind], kind
    assert kinds["shared_id"] == 2 * expected["duplicate_id"]
    assert quarantined == RATES.expected_quarantined(N)


def test_clean_certificates_are_consistent_and_held_by_the_world(sample: pa.Table) -> None:
    people = WORLD.people
    persons = dict(zip(people.ids.to_pylist(), people.names.to_pylist(), strict=True))
    register = pa.Table.from_batches(
        le.generate(WORLD.entities, rates=le.DefectRates.uniform(0.01), world=WORLD)
    )
    codes = Counter(register.column("uscc").to_pylist())
    entities = {r["uscc"]: r for r in register.to_pylist() if codes[r["uscc"]] == 1}
    by_id = Counter(sample.column("certificate_id").to_pylist())
    rows = [r for r in sample.to_pylist() if kind_of(r, by_id) == "clean"]
    types = {t.name: t for t in cert.TYPES}
    holder_kinds: Counter[str] = Counter()
    for r in rows:
        parts = r["certificate_id"].split(".")
        kind = types[r["type_name"]]
        assert parts[5] == r["type_code"] == kind.code and parts[6] == r["issuer_code"]
        assert uscc.is_valid(r["issuer_code"]) and r["issuer_code"][2:8] == r["division_code"]
        assert r["holder_code_type"] == kind.holder and r["issuer_name"].endswith(kind.issuer)
        holder_kinds[r["holder_code_type"]] += 1
        if r["holder_code_type"] == cert.PERSON:
            assert persons[r["holder_code"]] == r["holder_name"]
        else:
            entity = entities[r["holder_code"]]
            assert entity["name"] == r["holder_name"] and entity["status"] in le.ACTIVE
            assert r["valid_from"] >= entity["establishment_date"]
        assert r["issue_date"] == r["valid_from"] < TODAY
        if kind.years is None:
            assert r["valid_until"] is None
        if r["valid_until"] is not None:
            assert (r["status"] == "过期") == (r["valid_until"] < TODAY)
        assert r["number"] == r["holder_code"] or kind.name not in ("营业执照", "机动车驾驶证")
    assert holder_kinds[cert.PERSON] > 0.4 * len(rows) and holder_kinds[cert.ENTITY] > 0.2 * len(rows)


def test_identifiers_are_unique_without_planted_duplicates() -> None:
    table = pa.Table.from_batches(cert.generate(10_000, rates=cert.DefectRates.uniform(0), world=WORLD))
    assert table.column("certificate_id").unique().to_pylist().__len__() == 10_000
    assert classify(table)[1] == 0


def test_same_seed_same_records_other_seed_other_records() -> None:
    first = pa.Table.from_batches(cert.generate(2_000, rates=RATES, world=WORLD, chunk_rows=500))
    again = pa.Table.from_batches(cert.generate(2_000, rates=RATES, world=WORLD, chunk_rows=1_999))
    other = pa.Table.from_batches(cert.generate(2_000, seed=12, rates=RATES, as_of=AS_OF))
    assert first.equals(again)
    assert not first.column("certificate_id").equals(other.column("certificate_id"))


def test_system_and_csv_names() -> None:
    batch = next(cert.generate(3, world=WORLD))
    system = cert.to_system_columns(batch)
    assert system.column_names == [
        "certificateId", "typeName", "typeCode", "number", "holderName", "holderCode", "holderCodeType",
        "issuerName", "issuerCode", "issueDate", "validFrom", "validUntil", "divisionCode", "status", "updatedAt",
    ]  # fmt: skip
    csv = cert.to_csv_columns(pa.Table.from_batches([batch]))
    assert ",".join(csv.column_names) == (
        "证照标识,证照类型名称,证照类型代码,证照编号,持证主体,持证主体代码,持证主体代码类型,发证机关,发证机关代码,"
        "发证日期,有效期起始,有效期截止,管辖区划代码,证照状态,更新时间"
    )
    assert system.column("certificateId").equals(csv.column("证照标识"))


def test_changes_are_exact() -> None:
    existing = pa.Table.from_batches(cert.generate(4_000, rates=RATES, world=WORLD))
    changes = cert.changes(4_000, new=70, updated=50, deregistered=40, rates=RATES, world=WORLD)
    assert changes.counts() == {"new": 70, "updated": 50, "status_changed": 40}
    before = {r["certificate_id"]: r for r in existing.to_pylist()}
    assert not {r["certificate_id"] for r in changes.new.to_pylist()} & set(before)
    assert classify(changes.new)[1] == 0
    for r in changes.updated.to_pylist():
        old = before[r["certificate_id"]]
        assert old["status"] == "有效" and r["valid_until"] > old["valid_until"]
    for r in changes.status_changed.to_pylist():
        assert before[r["certificate_id"]]["status"] == "有效" and r["status"] in {"注销", "吊销"}
    assert len(changes.keys()) == changes.rows
    assert classify(changes.records())[1] == 0
    stamps = changes.records().column("updated_at").to_pylist()
    assert min(stamps) >= AS_OF and max(stamps) < AS_OF + dt.timedelta(days=1)
