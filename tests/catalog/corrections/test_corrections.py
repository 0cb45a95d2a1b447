"""Correction requests (校核纠错): keys as published tokens, bulk opening, deadlines, the
thread, closing by a corrected record, and the department's CSV export."""

from __future__ import annotations

import csv
import random
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from catalog.corrections import (
    STAGED_SCHEMA,
    Corrections,
    digest,
    due_date,
    key_tokens,
    masked_record,
    published_keys,
    stage_rows,
)
from catalog.corrections.errors import CorrectionNotFoundError, CorrectionStateError
from catalog.metadata import CorrectionOrigin, CorrectionStatus, MetadataStore
from quality.validate import Violation
from schemas.contract import load_contract
from tests.support import samples

POLICE = "11100000000013338W"


@pytest.fixture
def keyring(tmp_path: Path) -> Any:
    from masking.keys import Keyring

    return Keyring.init(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{tmp_path / 'hub.db'}")


def batch(store: MetadataStore, batch_id: str, dataset: str = "population") -> Any:
    store.start_batch(batch_id, dataset=dataset, source=dataset, contract_version="1.0.0")
    return store.update_batch(batch_id, department="公安厅", department_code=POLICE)


def records(n: int, seed: int = 1) -> pa.Table:
    rng = random.Random(seed)
    return samples.to_table(samples.population(), [samples.good_record(rng, row) for row in range(n)])


def staged(n: int, *, keyed: bool = True, start: int = 0) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "row": start + i,
                "key_token": f"k1_token{start + i}" if keyed else None,
                "fields": "name",
                "rules": "required",
                "reason": "必填字段「name」为空 / required field name is missing or empty",
            }
            for i in range(n)
        ],
        schema=STAGED_SCHEMA,
    )


# -- keys -----------------------------------------------------------------------------------


def test_key_tokens_are_the_published_keys_mask_makes(keyring: Any) -> None:
    from masking.apply import mask_table

    contract = samples.population()
    table = records(20)
    tokens = key_tokens(table, contract, keyring)
    masked = mask_table(table, contract, keyring, batch_id="b1")
    assert tokens.to_pylist() == published_keys(masked, contract).to_pylist()
    assert all(t.startswith("k1_") for t in tokens.to_pylist())
    raw = set(table.column("id_number").to_pylist())
    assert not raw & set(tokens.to_pylist())


def test_a_legal_entity_key_is_tokenised_only_where_its_contract_says(keyring: Any) -> None:
    contract = samples.legal_entity()
    rng = random.Random(2)
    rows = [samples.good_legal_entity(rng, i) for i in range(6)]
    rows[0]["uscc"] = "92" + rows[0]["uscc"][2:]
    tokens = key_tokens(samples.to_table(contract, rows), contract, keyring).to_pylist()
    assert tokens[0].startswith("k1_"), "individual businesses (92) are tokenised"
    assert tokens[1:] == [r["uscc"] for r in rows[1:]], "other credit codes are published as they are"


def test_staged_rows_list_every_rule_and_drop_keys_that_are_wrong(keyring: Any) -> None:
    contract = samples.population()
    table = records(4)
    violations = [
        Violation(0, "name", "required", "必填字段「name」为空", "required field name is missing or empty"),
        Violation(0, "mobile", "mobile_cn", "手机号码", "not a mobile"),
        Violation(1, "id_number", "gb11643.check_digit", "校验码错误", "wrong check character"),
        Violation(2, "id_number", "key.duplicate", "重复", "duplicate key"),
        Violation(3, "gender", "id_gender", "性别", "gender"),
    ]
    out = stage_rows(table, violations, contract, keyring).to_pylist()
    assert [r["row"] for r in out] == [0, 1, 2, 3]
    assert out[0]["fields"] == "name,mobile" and out[0]["rules"] == "required,mobile_cn"
    assert "必填字段「name」为空" in out[0]["reason"] and "required field name" in out[0]["reason"]
    assert out[0]["key_token"].startswith("k1_")
    assert out[1]["key_token"] is None, "a wrong identity number is not a key a correction will carry"
    assert out[2]["key_token"] is not None, "a duplicated key is kept: one copy's correction keeps it"


def test_a_missing_key_leaves_the_request_keyed_by_batch_and_row(keyring: Any) -> None:
    contract = samples.population()
    table = records(2).set_column(0, "id_number", pa.array([None, ""], pa.string()))
    violations = [Violation(r, "id_number", "required", "必填", "required") for r in (0, 1)]
    assert [r["key_token"] for r in stage_rows(table, violations, contract, keyring).to_pylist()] == [
        None,
        None,
    ]


# -- deadlines ------------------------------------------------------------------------------


def test_the_deadline_counts_working_days_of_the_calendar() -> None:
    # 2026-09-30 (Wed) + 10 working days skips the National Day week (10-01..10-07).
    due, warning = due_date(date(2026, 9, 30), 10, None)
    assert warning is None
    assert due == date(2026, 10, 20)


@pytest.mark.parametrize("outside", ["weekdays", "error"])
def test_a_year_missing_from_the_calendar_counts_weekdays_and_says_so(tmp_path: Path, outside: str) -> None:
    from catalog.sharing import DEFAULT_CALENDAR

    text = DEFAULT_CALENDAR.read_text(encoding="utf-8")
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text(
        "\n".join(
            f"outside_years: {outside}" if line.startswith("outside_years:") else line
            for line in text.splitlines()
        ),
        encoding="utf-8",
    )
    due, warning = due_date(date(2030, 6, 3), 10, str(calendar))  # a Monday
    assert due == date(2030, 6, 17)
    assert warning is not None and "Monday to Friday in 2030" in warning
    assert due_date(date(2026, 6, 1), 10, str(calendar))[1] is None


# -- opening --------------------------------------------------------------------------------


def test_quarantine_requests_open_in_bulk_and_once_per_batch(store: MetadataStore) -> None:
    corrections = Corrections(store)
    first = batch(store, "b1")
    opened = corrections.open_from_quarantine(
        first, [staged(3), staged(2, keyed=False, start=3)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    assert (opened.opened, opened.already_open) == (5, 0)
    again = corrections.open_from_quarantine(
        first, [staged(5)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    assert again.opened == 5 and len(corrections.find(limit=None)) == 5, "a retried batch replaces its own"
    requests = corrections.find(limit=None)
    assert {r.status for r in requests} == {CorrectionStatus.OPEN}
    assert {r.origin for r in requests} == {CorrectionOrigin.QUARANTINE}
    assert {(r.batch_id, r.department_code, r.filed_by) for r in requests} == {("b1", POLICE, "hub")}


def test_a_record_with_an_open_request_gets_no_second_one(store: MetadataStore) -> None:
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(3)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    later = corrections.open_from_quarantine(
        batch(store, "b2"),
        [staged(4), staged(1, keyed=False, start=9)],
        due_on=date(2026, 12, 5),
        department_code=POLICE,
    )
    assert (later.opened, later.already_open) == (2, 3)
    assert sorted((r.batch_id, r.row) for r in corrections.find(limit=None)) == [
        ("b1", 0),
        ("b1", 1),
        ("b1", 2),
        ("b2", 3),
        ("b2", 9),
    ]


def test_opening_a_hundred_thousand_requests_is_a_bulk_insert(store: MetadataStore) -> None:
    corrections = Corrections(store)
    rows = 100_000
    started = time.perf_counter()
    opened = corrections.open_from_quarantine(
        batch(store, "big"),
        (staged(10_000, start=s) for s in range(0, rows, 10_000)),
        due_on=date(2026, 12, 4),
        department_code=POLICE,
    )
    seconds = time.perf_counter() - started
    assert opened.opened == rows
    assert corrections.counts(today=date(2026, 11, 23))["open"] == rows
    assert seconds < 30, f"opening {rows} requests took {seconds:.1f} s"


# -- the thread and closing -----------------------------------------------------------------


def test_reply_and_resolve_keep_a_thread_and_refuse_a_closed_request(store: MetadataStore) -> None:
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(1)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    (request,) = corrections.find()
    corrections.reply(request.id, author="li.police", message="核查中 / checking with the registry office")
    with pytest.raises(CorrectionStateError, match="empty"):
        corrections.reply(request.id, author="li.police", message="  ")
    with pytest.raises(CorrectionStateError, match="--note"):
        corrections.resolve(request.id, steward="li.police", note="")
    done = corrections.resolve(request.id, steward="li.police", note="fixed at the source on 11-25")
    assert done.status is CorrectionStatus.RESOLVED and done.closed_by == "li.police"
    assert [m.message for m in corrections.thread(request.id)] == [
        "核查中 / checking with the registry office",
        "fixed at the source on 11-25",
    ]
    with pytest.raises(CorrectionStateError, match="already resolved"):
        corrections.resolve(request.id, steward="li.police", note="again")
    with pytest.raises(CorrectionStateError, match="thread is closed"):
        corrections.reply(request.id, author="li.police", message="late")
    with pytest.raises(CorrectionNotFoundError, match="999"):
        corrections.get(999)


def test_a_registered_record_with_the_key_closes_the_quarantine_request(store: MetadataStore) -> None:
    contract = load_contract("population")
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(3)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    registered = pa.table({"person_token": ["k1_token1", "k1_other"], "name": ["张*", "李*"]})
    assert corrections.close_corrected("population", "b2", [registered], contract) == 1
    closed = [r for r in corrections.find(limit=None) if r.status is CorrectionStatus.CORRECTED]
    assert [(r.key_token, r.closed_by) for r in closed] == [("k1_token1", "b2")]
    assert corrections.close_corrected("population", "b1", [registered], contract) == 0, (
        "the batch that quarantined a key does not close its own request"
    )


def test_a_consumer_request_closes_only_when_the_disputed_field_changes(store: MetadataStore) -> None:
    contract = load_contract("population")
    corrections = Corrections(store)
    request = corrections.file(
        dataset="population",
        department_code=POLICE,
        department="公安厅",
        key_token="k1_abc",
        field="address",
        reason="地址已变更 / moved",
        system="shebao-core",
        field_digest=digest("北京市朝阳区"),
        due_on=date(2026, 12, 4),
    )
    assert corrections.columns_to_close("population", contract) == ["person_token", "address"]
    assert corrections.columns_to_close("legal_entity", load_contract("legal_entity")) == []
    same = pa.table({"person_token": ["k1_abc"], "address": ["北京市朝阳区"]})
    assert corrections.close_corrected("population", "b2", [same], contract) == 0
    moved = pa.table({"person_token": ["k1_abc"], "address": ["北京市海淀区"]})
    assert corrections.close_corrected("population", "b3", [moved], contract) == 1
    assert corrections.get(request.id).status is CorrectionStatus.CORRECTED
    assert [m.author for m in corrections.thread(request.id)] == ["shebao-core"]


def test_requests_follow_their_key_through_a_token_rotation(store: MetadataStore) -> None:
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(2)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    pairs = pa.table({"old_token": ["k1_token0", "k1_zzz"], "new_token": ["k2_new0", "k2_zzz"]})
    assert corrections.rekey("population", pairs) == 1
    assert sorted(r.key_token or "" for r in corrections.find()) == ["k1_token1", "k2_new0"]


def test_overdue_lists_open_requests_past_their_deadline(store: MetadataStore) -> None:
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(2)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    corrections.open_from_quarantine(
        batch(store, "b2"), [staged(1, start=5)], due_on=date(2026, 12, 10), department_code=POLICE
    )
    assert len(corrections.find(overdue_on=date(2026, 12, 4))) == 0
    assert len(corrections.find(overdue_on=date(2026, 12, 5))) == 2
    assert corrections.counts(today=date(2026, 12, 11)) == {"open": 3, "overdue": 3}


# -- export and what others see -------------------------------------------------------------


def test_the_export_opens_in_excel_utf8_with_bom_and_chinese_headers(
    store: MetadataStore, tmp_path: Path
) -> None:
    corrections = Corrections(store)
    corrections.open_from_quarantine(
        batch(store, "b1"), [staged(3)], due_on=date(2026, 12, 4), department_code=POLICE
    )
    corrections.open_from_quarantine(
        batch(store, "b2", dataset="legal_entity"),
        [staged(1, start=7)],
        due_on=date(2026, 12, 4),
        department_code="X",
    )
    out = tmp_path / "export" / "公安厅.csv"
    assert corrections.export_csv(out, today=date(2026, 12, 5), department_code=POLICE) == 3
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the byte-order mark to read UTF-8"
    assert b"\r\n" in data
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert rows[0]["数源部门"] == "公安厅" and rows[0]["状态"] == "待处理"
    assert rows[0]["是否逾期"] == "是" and rows[0]["办理期限"] == "2026-12-04"
    assert "必填字段「name」为空" in rows[0]["原因"]
    assert next(iter(rows[0])) == "编号"


def test_a_quarantined_record_is_shown_masked_never_raw(keyring: Any) -> None:
    contract = samples.population()
    record = records(1).to_pylist()[0]
    record["birth_date"] = record["birth_date"].isoformat()
    record["updated_at"] = record["updated_at"].isoformat()
    shown = masked_record(contract, record, keyring)
    text = " ".join(shown.values())
    assert record["id_number"] not in text and record["mobile"] not in text
    assert shown["person_token"].startswith("k1_")
    assert shown["name"] == "张*"
    broken = masked_record(contract, {**record, "birth_date": "not a date"}, keyring)
    assert broken["birth_year"] == "***"
