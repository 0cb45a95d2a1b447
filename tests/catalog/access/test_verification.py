"""The verification index and the rate and pattern limits, without the HTTP layer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.access import (
    INDEX_NAMESPACE,
    VERIFY_CONTEXT,
    EnumerationGuard,
    IndexStager,
    TokenBuckets,
    VerificationIndex,
    index_name,
    index_rows,
    load_index,
    name_digest,
    normalise_key,
    normalise_name,
    register_staged,
    retry_after,
    verify_key,
)
from catalog.tables import SharedTables
from masking.keys import Keyring
from masking.rules import token


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.init(tmp_path / "keys" / "keyring.json")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- normalisation and digests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("张三丰", "张三丰"),
        (" 张 三\u3000丰\t", "张三丰"),  # spaces of every width
        ("阿卜杜·热合曼", "阿卜杜·热合曼"),
        ("阿卜杜.热合曼", "阿卜杜·热合曼"),  # separator dots written one way
        ("阿卜杜•热合曼", "阿卜杜·热合曼"),
        ("阿卜杜・热合曼", "阿卜杜·热合曼"),
        ("ＪＯＨＮ　ＳＭＩＴＨ", "johnsmith"),  # full width -> half width, case-folded
        ("John Smith", "johnsmith"),
    ],
)
def test_names_are_normalised_as_documented(given: str, expected: str) -> None:
    assert normalise_name(given) == expected


def test_keys_are_normalised_as_documented() -> None:
    assert normalise_key(" 11010519491231002x ") == "11010519491231002X"
    assert normalise_key("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"
    assert normalise_key("9111 0000 6000 3734 1l") == "91110000600037341L"


def test_digests_are_keyed_domain_separated_and_per_dataset(keyring: Keyring) -> None:
    key = keyring.current_key("token")
    secret = verify_key(key)
    assert secret == hmac.new(key.secret.reveal(), VERIFY_CONTEXT, hashlib.sha256).digest()
    assert secret != key.secret.reveal()
    person = name_digest(secret, "population", "11010519491231002X", "张三丰")
    assert len(person) == 16
    assert person == name_digest(secret, "population", "11010519491231002x", " 张 三丰")
    assert person != name_digest(secret, "certificate", "11010519491231002X", "张三丰")
    assert person != name_digest(secret, "population", "11010519491231002X", "张三")
    other = Keyring.init(keyring.path.parent / "other.json").current_key("token")
    assert person != name_digest(verify_key(other), "population", "11010519491231002X", "张三丰")


def test_index_rows_hold_the_shared_token_and_no_raw_value(keyring: Keyring) -> None:
    key = keyring.current_key("token")
    ids = pa.array(["11010519491231002X", None, "", "440524188001010014"])
    names = pa.array(["张三丰", "无号码", "空号码", None])
    rows = index_rows(ids, names, key, "population")
    assert rows.num_rows == 2  # no identifier, no row
    shared = token(pa.array(["11010519491231002X", "440524188001010014"]), key).to_pylist()
    assert rows.column("key_token").to_pylist() == shared
    assert rows.column("key_version").to_pylist() == [1, 1]
    digests = rows.column("name_digest").to_pylist()
    assert digests[0] == name_digest(verify_key(key), "population", "11010519491231002X", "张三丰")
    assert digests[1] is None  # no name registered: never matches a name
    dumped = str(rows.to_pylist())
    assert "11010519491231002X" not in dumped and "张三丰" not in dumped


# -- the in-memory index --------------------------------------------------------------------------


def test_lookup_matches_and_refuses_exactly(keyring: Keyring) -> None:
    key = keyring.current_key("token")
    n = 5_000
    ids = [f"{110105194912310000 + i}" for i in range(n)]
    rows = index_rows(pa.array(ids), pa.array([f"姓名{i}" for i in range(n)]), key, "population")
    index = VerificationIndex.from_batches("population", 7, rows.to_batches(max_chunksize=777))
    keys = {key.version: key}
    assert index.rows == n and index.nbytes == 32 * n and index.versions == (1,)
    for i in (0, 1, 2_500, n - 1):
        found = index.lookup(ids[i], f"姓名{i}", keys)
        assert found.found and found.matched and found.version == 1
        assert found.key_token == token(pa.array([ids[i]]), key)[0].as_py()
        assert not index.lookup(ids[i], f"姓名{i + 1}", keys).matched
        assert index.lookup(ids[i], None, keys).matched  # existence only (certificates)
    missing = index.lookup("110105194912319999", "姓名0", keys)
    assert not missing.found and not missing.matched and missing.key_token is not None
    empty = VerificationIndex.from_batches("population", None, [])
    assert not empty.lookup(ids[0], "姓名0", keys).found


def test_token_words_decode_every_row_like_base64(keyring: Keyring) -> None:
    from catalog.access.verification import _token_words

    key = keyring.current_key("token")
    tokens = token(pa.array([f"id-{i}" for i in range(300)]), key)
    hi, lo = _token_words(tokens.slice(5, 200))
    for position, text in enumerate(tokens.slice(5, 200).to_pylist()):
        raw = base64.urlsafe_b64decode(text[3:] + "=")
        assert int(hi[position]) == int.from_bytes(raw[:8], "big")
        assert int(lo[position]) == int.from_bytes(raw[8:16], "big")


def test_after_a_rotation_both_versions_are_looked_up_newest_first(keyring: Keyring) -> None:
    old = keyring.current_key("token")
    rotated = keyring.rotate("token")
    new = rotated.current_key("token")
    before = index_rows(
        pa.array(["11010519491231002X", "440524188001010014"]),
        pa.array(["张三丰", "欧阳娜娜"]),
        old,
        "population",
    )
    after = index_rows(pa.array(["11010519491231002X"]), pa.array(["张三丰（更名）"]), new, "population")
    index = VerificationIndex.from_batches("population", 2, [pa.concat_tables([before, after])])
    keys = {old.version: old, new.version: new}
    assert index.versions == (2, 1)
    renamed = index.lookup("11010519491231002X", "张三丰（更名）", keys)
    assert renamed.matched and renamed.version == 2 and (renamed.key_token or "").startswith("k2_")
    unchanged = index.lookup("440524188001010014", "欧阳娜娜", keys)
    assert unchanged.matched and unchanged.version == 1
    # without the new key (a keyring not re-read yet) the old version's row still answers
    assert index.lookup("11010519491231002X", "张三丰", {old.version: old}).matched


# -- staging and registering ---------------------------------------------------------------------


def _batch(ids: list[str], names: list[str]) -> pa.Table:
    return pa.table({"id_number": ids, "name": names, "gender": ["1"] * len(ids)})


def test_register_upserts_by_token_and_retires_old_tokens_after_a_rotation(
    keyring: Keyring, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    internal = SharedTables(
        f"sqlite:///{tmp_path / 'iceberg.db'}", warehouse.as_uri(), namespace=INDEX_NAMESPACE
    )

    def run(batch_id: str, table: pa.Table, ring: Keyring) -> int | None:
        folder = tmp_path / batch_id
        folder.mkdir()
        stager = IndexStager(folder, "population", ring, mapping_days=30)
        for chunk in table.to_batches(max_chunksize=2):
            stager.add(chunk)
        stager.close()
        return register_staged(folder, "population", internal, batch_id=batch_id)

    first = run(
        "b1",
        _batch(
            ["11010519491231002X", "440524188001010014", "110105194912310029"], ["张三丰", "欧阳娜娜", "李四"]
        ),
        keyring,
    )
    assert first is not None
    assert internal.load(index_name("population")).current_snapshot().snapshot_id == first  # type: ignore[union-attr]
    # an update: same key, new name; re-running a batch changes nothing
    run("b2", _batch(["110105194912310029"], ["李思"]), keyring)
    index = load_index(internal, "population")
    keys = {1: keyring.current_key("token")}
    assert index is not None and index.rows == 3
    assert index.lookup("110105194912310029", "李思", keys).matched
    assert not index.lookup("110105194912310029", "李四", keys).matched
    # after a rotation, a full run moves every row to the new version (old tokens retired)
    rotated = keyring.rotate("token")
    run(
        "b3",
        _batch(
            ["11010519491231002X", "440524188001010014", "110105194912310029"], ["张三丰", "欧阳娜娜", "李思"]
        ),
        rotated,
    )
    index = load_index(internal, "population")
    assert index is not None and index.rows == 3 and index.versions == (2,)
    keys = {1: keyring.current_key("token"), 2: rotated.current_key("token")}
    assert index.lookup("11010519491231002X", "张三丰", keys).version == 2
    # a dataset without a verification kind stages nothing
    folder = tmp_path / "other"
    folder.mkdir()
    stager = IndexStager(folder, "not_verified", keyring, mapping_days=30)
    stager.add(_batch(["x"], ["y"]))
    stager.close()
    assert (
        list(folder.iterdir()) == []
        and register_staged(folder, "not_verified", internal, batch_id="b") is None
    )


def test_a_retried_mask_step_starts_its_staged_index_afresh(keyring: Keyring, tmp_path: Path) -> None:
    for _ in range(2):
        stager = IndexStager(tmp_path, "population", keyring, mapping_days=30)
        stager.add(_batch(["11010519491231002X"], ["张三丰"]))
        stager.close()
    assert pq.read_table(tmp_path / "verify.parquet").num_rows == 1


# -- limits ---------------------------------------------------------------------------------------


def test_token_buckets_allow_the_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets({"verify": (2.0, 3), "query": (1.0, 1)}, clock=clock)
    assert [buckets.take("a", "verify") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", "verify") == pytest.approx(0.5)
    assert buckets.take("b", "verify") == 0.0  # per system
    assert buckets.take("a", "query") == 0.0  # per endpoint
    clock.now += 0.5
    assert buckets.take("a", "verify") == 0.0
    assert buckets.take("a", "verify") > 0
    clock.now += 10
    assert [buckets.take("a", "verify") for _ in range(4)][-1] > 0  # never more than the burst
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


def guard(clock: Clock, **overrides: float) -> EnumerationGuard:
    options: dict[str, float] = {
        "window": 60.0,
        "no_match_limit": 3,
        "prefix_length": 14,
        "close_limit": 2,
        "cooldown": 300.0,
    }
    options.update(overrides)
    return EnumerationGuard(
        window=options["window"],
        no_match_limit=int(options["no_match_limit"]),
        prefix_length=int(options["prefix_length"]),
        close_limit=int(options["close_limit"]),
        cooldown=options["cooldown"],
        clock=clock,
    )


def test_no_match_answers_in_the_window_trip_the_guard() -> None:
    clock = Clock()
    watch = guard(clock)
    for _ in range(3):
        assert watch.check("a", None) is None
        watch.answered("a", matched=False)
    refused = watch.check("a", None)
    assert refused is not None and refused.reason.startswith("enumeration suspected: 3 no-match answers")
    assert refused.retry_after == 300
    clock.now += 100
    again = watch.check("a", None)
    assert again is not None and again.retry_after == pytest.approx(200)
    assert watch.check("b", None) is None  # per system
    clock.now += 201
    assert watch.check("a", None) is None  # the cool-down is over and the count starts afresh


def test_no_match_answers_outside_the_window_are_forgotten() -> None:
    clock = Clock()
    watch = guard(clock)
    for _ in range(3):
        watch.answered("a", matched=False)
        clock.now += 30
    assert watch.check("a", None) is None  # the first one is past the 60 s window
    watch.answered("a", matched=True)
    assert watch.check("a", None) is None


def test_close_identifiers_trip_the_guard_but_repeats_do_not() -> None:
    clock = Clock()
    watch = guard(clock)
    assert watch.check("a", "110105194912310029") is None
    assert watch.check("a", "11010519491231002X") is None
    assert watch.check("a", "11010519491231002X") is None  # the same one again
    assert watch.check("a", "440524188001010014") is None  # far away
    refused = watch.check("a", "110105194912310037")
    assert refused is not None and "sharing their first 14 characters" in refused.reason
    clock.now += 301
    assert watch.check("a", "110105194912310045") is None
    clock.now += 61  # the window forgets older close numbers
    assert watch.check("a", "110105194912310053") is None
    assert watch.check("a", "110105194912310061") is None
