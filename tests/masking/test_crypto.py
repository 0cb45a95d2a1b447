from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from masking.crypto import decrypt_array, encrypt_array, key_versions
from masking.errors import CiphertextError, MaskRuleError
from masking.keys import MASTER_KEY_ENV, Keyring
from masking.rules import token
from masking.token_map import MAPPING_SCHEMA, token_mapping

IDS = ["11010519491231002X", "440305199001011234", "11010519491231002X", "", None]


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from hub.settings import get_settings

    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(b"m" * 32).decode())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.init(tmp_path / "keys" / "keyring.json")


def test_round_trip_keeps_nulls_and_turns_empty_into_null(keyring: Keyring) -> None:
    values = pa.array(["张三", "11010519491231002X", "", None, "a" * 1000])
    encrypted = encrypt_array(values, keyring.current_key("encrypt"), aad="population.name")

    assert encrypted.type == pa.string()
    assert encrypted.to_pylist()[2:4] == [None, None]
    assert all(v.startswith("e1:") for v in encrypted.to_pylist() if v is not None)
    for plain in ("张三", "11010519491231002X"):
        assert plain not in "".join(v for v in encrypted.to_pylist() if v)
    decrypted = decrypt_array(encrypted, keyring, aad="population.name")
    assert decrypted.to_pylist() == ["张三", "11010519491231002X", None, None, "a" * 1000]


def test_same_value_encrypts_differently_each_time(keyring: Keyring) -> None:
    values = pa.array(["same"] * 50)
    encrypted = encrypt_array(values, keyring.current_key("encrypt")).to_pylist()
    assert len(set(encrypted)) == 50
    body = base64.urlsafe_b64decode(encrypted[0][3:] + "==")
    assert len(body) == 12 + len("same") + 16  # nonce | ciphertext | tag


def test_chunked_and_large_string_input(keyring: Keyring) -> None:
    chunked = pa.chunked_array([["a", "b"], [], ["c"]], type=pa.large_string())
    encrypted = encrypt_array(chunked, keyring.current_key("encrypt"))
    assert decrypt_array(pa.chunked_array([encrypted]), keyring).to_pylist() == ["a", "b", "c"]


def test_non_string_column_and_token_key_are_refused(keyring: Keyring) -> None:
    with pytest.raises(MaskRuleError, match="string column"):
        encrypt_array(pa.array([1, 2]), keyring.current_key("encrypt"))
    with pytest.raises(MaskRuleError, match="encrypt key"):
        encrypt_array(pa.array(["a"]), keyring.current_key("token"))


def test_decryption_works_across_rotations(keyring: Keyring, tmp_path: Path) -> None:
    old = encrypt_array(pa.array(["before"]), keyring.current_key("encrypt"))
    rotated = keyring.rotate("encrypt")
    new = encrypt_array(pa.array(["after"]), rotated.current_key("encrypt"))

    assert new[0].as_py().startswith("e2:")
    mixed = pa.concat_arrays([old, new])
    reloaded = Keyring.load(tmp_path / "keys" / "keyring.json")
    assert decrypt_array(mixed, reloaded).to_pylist() == ["before", "after"]
    assert key_versions(mixed) == [1, 2]


def _flip(value: str, position: int) -> str:
    prefix, body = value.split(":", 1)
    sealed = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    sealed[position] ^= 1
    return f"{prefix}:" + base64.urlsafe_b64encode(bytes(sealed)).decode().rstrip("=")


@pytest.mark.parametrize("position", [0, 13, -1])  # nonce, ciphertext, tag
def test_tampered_value_names_the_row_never_the_value(keyring: Keyring, position: int) -> None:
    encrypted = encrypt_array(
        pa.array(["SECRET-PLAINTEXT", "ok"]), keyring.current_key("encrypt")
    ).to_pylist()
    tampered = [encrypted[1], _flip(encrypted[0], position)]
    with pytest.raises(CiphertextError) as caught:
        decrypt_array(pa.array(tampered), keyring)
    message = str(caught.value)
    assert message.startswith("row 1:") and "does not authenticate" in message
    assert "SECRET" not in message and tampered[1] not in message


def test_value_moved_to_another_field_does_not_decrypt(keyring: Keyring) -> None:
    encrypted = encrypt_array(pa.array(["x"]), keyring.current_key("encrypt"), aad="population.name")
    with pytest.raises(CiphertextError, match="row 0"):
        decrypt_array(encrypted, keyring, aad="population.address")
    with pytest.raises(CiphertextError, match="row 0"):
        decrypt_array(encrypted, keyring)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("plain text", "prefix"),
        ("k1_abc", "prefix"),
        ("e1:@@@@", "base64"),
        ("e1:AAAA", "truncated"),
        ("e9:" + "A" * 60, "no encrypt key version 9"),
    ],
)
def test_malformed_values_are_named_by_row(keyring: Keyring, value: str, reason: str) -> None:
    with pytest.raises(CiphertextError) as caught:
        decrypt_array(pa.array([None, value]), keyring)
    assert str(caught.value).startswith("row 1:") and reason in str(caught.value)
    assert value not in str(caught.value)


# -- token rotation: mapping period and the migration path ----------------------------------


def test_no_mapping_without_a_previous_version(keyring: Keyring) -> None:
    assert token_mapping(pa.array(IDS), keyring) is None


def test_mapping_after_rotation_maps_each_distinct_value(keyring: Keyring) -> None:
    rotated = keyring.rotate("token")
    mapping = token_mapping(pa.array(IDS), rotated)

    assert mapping is not None and mapping.schema == MAPPING_SCHEMA
    assert mapping.num_rows == 2  # duplicates, "" and null dropped
    raw = pa.array(["11010519491231002X", "440305199001011234"])
    expected = {
        (o, n)
        for o, n in zip(
            token(raw, rotated.token_key(1)).to_pylist(),
            token(raw, rotated.token_key(2)).to_pylist(),
            strict=True,
        )
    }
    assert (
        set(zip(mapping["old_token"].to_pylist(), mapping["new_token"].to_pylist(), strict=True)) == expected
    )
    assert set(mapping["old_version"].to_pylist()) == {1} and set(mapping["new_version"].to_pylist()) == {2}


def test_mapping_period_ends(keyring: Keyring) -> None:
    rotated = keyring.rotate("token")
    rotated_at = rotated.versions("token")[-1].created_at
    values = pa.array(IDS)
    assert token_mapping(values, rotated, mapping_days=30, now=rotated_at + timedelta(days=29)) is not None
    assert token_mapping(values, rotated, mapping_days=30, now=rotated_at + timedelta(days=30)) is None
    assert token_mapping(values, rotated, mapping_days=0) is None


def test_two_rotations_map_every_version_still_in_its_period(keyring: Keyring) -> None:
    rotated = keyring.rotate("token").rotate("token")
    mapping = token_mapping(pa.array(["110105194912310021"]), rotated)
    assert mapping is not None
    assert sorted(mapping["old_version"].to_pylist()) == [1, 2]
    assert set(mapping["new_version"].to_pylist()) == {3}
    assert token_mapping(pa.array([""]), rotated) == MAPPING_SCHEMA.empty_table()


def test_token_rotation_migration_keeps_a_consumers_join(tmp_path: Path) -> None:
    """Consumer holds v1 tokens; after rotation the source is re-tokenised in full and
    ``shared.token_map`` lets the consumer move its own rows to v2 and join again."""
    path = tmp_path / "keys" / "keyring.json"
    raw = pa.array([f"1101051949123100{i:02d}" for i in range(40)])
    keyring = Keyring.init(path)
    consumer = pa.table({"person": token(raw, keyring.token_key()), "benefit": pa.array(range(40))})

    rotated = Keyring.load(path).rotate("token")  # `hub keys rotate --kind token`
    chunks = [raw.slice(0, 25), raw.slice(25)]  # `hub run population --full`, chunk by chunk
    published = pa.concat_arrays([token(chunk, rotated.current_key("token")) for chunk in chunks])
    mappings = [token_mapping(chunk, Keyring.load(path)) for chunk in chunks]
    token_map = pa.concat_tables([m for m in mappings if m is not None])

    assert all(t.startswith("k2_") for t in published.to_pylist())
    assert not set(published.to_pylist()) & set(consumer["person"].to_pylist())  # joins broke ...
    moved = consumer.join(token_map, keys="person", right_keys="old_token", join_type="inner")
    joined = moved.join(pa.table({"new_token": published, "raw": raw}), keys="new_token")
    assert joined.num_rows == 40  # ... and the mapping restores every one of them
    assert pc.all(pc.equal(joined["raw"], pc.take(raw, joined["benefit"]))).as_py()
    # Old tokens stay reproducible with the old version during and after the period.
    assert token(raw, rotated.token_key(1)).equals(consumer["person"].combine_chunks())
    later = datetime.now(UTC) + timedelta(days=31)
    assert token_mapping(raw, rotated, now=later) is None
