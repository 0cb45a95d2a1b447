"""``hub keys ...`` and ``hub decrypt`` through ``hub.cli.main``: exit codes, messages, records."""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.metadata import MetadataStore
from hub.cli import main
from hub.context import HubContext
from masking.crypto import encrypt_array
from masking.keys import MASTER_KEY_ENV, Keyring


@dataclass
class Result:
    code: int
    out: str
    err: str


Hub = Callable[..., Result]


@pytest.fixture
def hub(
    hub_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv("HUB_MASKING__MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("HUB_USER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, stdin: str | None = None) -> Result:
        monkeypatch.setattr(sys, "argv", ["hub", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _keyring_path() -> Path:
    from hub.settings import get_settings

    return get_settings().masking.keyring_path


def _store() -> MetadataStore:
    from hub.settings import get_settings

    store: MetadataStore = HubContext(get_settings()).store
    return store


def assert_clean_error(result: Result, code: int, *needles: str) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.err
    assert result.err.lstrip().startswith("error: ")
    for needle in needles:
        assert needle in result.err.replace("\n", "")


def _material_forms(keyring: Keyring) -> list[str]:
    materials = [keyring.key(i.kind, i.version).secret.reveal() for i in keyring.versions()]
    materials.append(keyring.master.secret.reveal())
    return [form for m in materials for form in (base64.b64encode(m).decode(), m.hex())]


def test_init_creates_keyring_and_master_key_and_says_where(hub: Hub) -> None:
    result = hub("keys", "init")
    path = _keyring_path()
    assert result.code == 0, result
    assert str(path) in result.out.replace("\n", "")
    assert str(path.parent / "master.key") in result.out.replace("\n", "")
    assert (path.parent / "master.key").stat().st_mode & 0o777 == 0o600
    assert_clean_error(hub("keys", "init"), 2, "--force")


def test_list_rotate_verify(hub: Hub) -> None:
    assert hub("keys", "init").code == 0
    rotated = hub("keys", "rotate", "--kind", "encrypt")
    assert rotated.code == 0 and "encrypt key version 2 is now current" in rotated.out
    token = hub("keys", "rotate")
    assert token.code == 0 and "hub run SOURCE --full" in token.out and "30 days" in token.out

    listed = hub("keys", "list")
    assert listed.code == 0
    rows = [
        line.split() for line in listed.out.splitlines() if line.split()[:1] and line.split()[0] in {"│", "┃"}
    ]
    cells = [[c for c in row if c not in {"│", "┃"}] for row in rows]
    assert [(c[0], c[1], c[-1] == "yes") for c in cells[1:]] == [
        ("token", "1", False),
        ("token", "2", True),
        ("encrypt", "1", False),
        ("encrypt", "2", True),
        ("audit", "1", True),
        ("audit-sign", "1", True),
    ]
    verified = hub("keys", "verify")
    assert verified.code == 0 and "6 keys" in verified.out

    keyring = Keyring.load(_keyring_path())
    for output in (rotated, token, listed, verified):
        for form in _material_forms(keyring):
            assert form not in output.out + output.err


def test_verify_names_the_first_bad_key(hub: Hub) -> None:
    assert hub("keys", "init").code == 0
    path = _keyring_path()
    document = json.loads(path.read_text())
    document["keys"][1]["kcv"] = "ff" * 8
    path.write_text(json.dumps(document))
    assert_clean_error(hub("keys", "verify"), 2, "encrypt key version 1", "check value")


def test_rotate_with_unknown_kind_is_a_usage_error(hub: Hub) -> None:
    assert hub("keys", "init").code == 0
    assert hub("keys", "rotate", "--kind", "hash").code == 2


def test_upgrade_from_format_1(hub: Hub) -> None:
    path = _keyring_path()
    path.parent.mkdir(parents=True)
    material = bytes(range(32))
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "wrapping": "none",
                "current": 1,
                "keys": [
                    {
                        "version": 1,
                        "purpose": "token-hmac-sha256",
                        "created_at": "2025-08-01T08:00:00+00:00",
                        "material": base64.b64encode(material).decode(),
                    }
                ],
            }
        )
    )
    path.chmod(0o600)
    assert_clean_error(hub("keys", "list"), 2, "hub keys upgrade", str(path))

    upgraded = hub("keys", "upgrade")
    assert upgraded.code == 0 and "token versions 1 kept" in upgraded.out
    assert Keyring.load(path).token_key(1).secret.reveal() == material
    assert base64.b64encode(material).decode() not in path.read_text()
    again = hub("keys", "upgrade")
    assert again.code == 0 and "already format 2" in again.out


def _stewards(*names: str) -> None:
    """Register hub-wide stewards (the first one sets the hub up, so it needs no --as)."""
    from catalog.sharing import add_person
    from hub.settings import get_settings

    get_settings().ensure_home()
    store = _store()
    for name in names:
        add_person(store, name, roles=["steward"], hub_wide=True, actor=names[0])


def _encrypted(*values: str) -> list[str]:
    keyring = Keyring.load(_keyring_path())
    return encrypt_array(pa.array(list(values)), keyring.current_key("encrypt")).to_pylist()


def test_decrypt_prints_plaintexts_and_records_the_use(hub: Hub, tmp_path: Path) -> None:
    assert hub("keys", "init").code == 0
    _stewards("li.steward")
    old = _encrypted("11010519491231002X")
    assert hub("keys", "rotate", "--kind", "encrypt").code == 0
    new = _encrypted("张三")

    result = hub("decrypt", *old, *new, "--steward", "li.steward", "--reason", "correction request 42")
    assert result.code == 0, result
    assert result.out.splitlines() == ["11010519491231002X", "张三"]

    listing = tmp_path / "values.txt"
    listing.write_text(f"{new[0]}\n\n{old[0]}\n")
    from_file = hub("decrypt", "--file", str(listing), "--steward", "li.steward", "--reason", "r")
    assert from_file.out.splitlines() == ["张三", "11010519491231002X"]
    from_stdin = hub(
        "decrypt", "--file", "-", "--steward", "li.steward", "--reason", "r", stdin=new[0] + "\n"
    )
    assert from_stdin.out.splitlines() == ["张三"]

    records = _store().list_decryptions()
    assert [r.values for r in records] == [1, 2, 2]
    first = records[-1]
    assert (first.steward, first.reason, first.key_versions, first.outcome) == (
        "li.steward",
        "correction request 42",
        "1,2",
        "decrypted",
    )
    assert first.os_user and first.host and first.at is not None
    listed = hub("keys", "decryptions")
    assert listed.code == 0 and "li.steward" in listed.out
    assert "张三" not in listed.out and "1101051949" not in listed.out


@pytest.mark.parametrize(
    ("options", "missing"),
    [
        (["--steward", "li.steward"], "--reason"),
        (["--reason", "why"], "--steward"),
        (["--steward", " ", "--reason", ""], "--steward and --reason"),
    ],
)
def test_decrypt_without_steward_or_reason_is_refused_and_recorded(
    hub: Hub, options: list[str], missing: str
) -> None:
    assert hub("keys", "init").code == 0
    values = _encrypted("SECRET-NAME")
    result = hub("decrypt", *values, *options)
    assert_clean_error(result, 5, missing, "refused")
    assert "SECRET-NAME" not in result.out + result.err
    (record,) = _store().list_decryptions()
    assert record.outcome == "refused" and record.values == 1 and missing in (record.detail or "")


def test_tampered_value_fails_names_the_row_and_is_recorded(hub: Hub) -> None:
    assert hub("keys", "init").code == 0
    _stewards("s")
    good, other = _encrypted("SECRET-A", "SECRET-B")
    tampered = other[:-2] + ("A" if other[-2] != "A" else "B") + other[-1]
    result = hub("decrypt", good, tampered, "--steward", "s", "--reason", "r")
    assert_clean_error(result, 3, "row 1")
    assert "SECRET" not in result.out + result.err and tampered not in result.err
    (record,) = _store().list_decryptions()
    assert record.outcome == "failed" and "row 1" in (record.detail or "")


def test_decrypt_without_values_is_a_usage_error(hub: Hub) -> None:
    assert hub("keys", "init").code == 0
    assert hub("decrypt", "--steward", "s", "--reason", "r").code == 2


def test_decrypt_only_for_a_registered_steward_of_the_dataset_owner(hub: Hub) -> None:
    from catalog.sharing import add_department, add_person

    assert hub("keys", "init").code == 0
    _stewards("wang.hub")
    store = _store()
    police, social = "11100000000013338W", "111000000000130127"
    add_department(store, police, "公安厅", actor="wang.hub")
    add_department(store, social, "人力资源和社会保障厅", actor="wang.hub")
    add_person(store, "li.police", department=police, roles=["steward"], actor="wang.hub")
    add_person(store, "zhao.social", department=social, roles=["steward"], actor="wang.hub")
    add_person(store, "qian.clerk", department=police, actor="wang.hub")
    keyring = Keyring.load(_keyring_path())
    values = encrypt_array(pa.array(["SECRET-NAME"]), keyring.current_key("encrypt"), aad="population.name")
    value = values.to_pylist()[0]

    refusals = {
        "nobody.known": "no person 'nobody.known' is registered",
        "qian.clerk": "qian.clerk is not a data steward",
        "zhao.social": "not of 公安厅 (11100000000013338W)",
    }
    for name, why in refusals.items():
        result = hub("decrypt", value, "--aad", "population.name", "--steward", name, "--reason", "case 7")
        assert_clean_error(result, 5, "decryption refused", why)
        assert "SECRET-NAME" not in result.out + result.err
    for name in ("li.police", "wang.hub"):
        result = hub("decrypt", value, "--aad", "population.name", "--as", name, "--reason", "case 7")
        assert result.code == 0 and result.out.splitlines() == ["SECRET-NAME"], result

    records = list(reversed(_store().list_decryptions()))
    assert [(r.steward, r.outcome) for r in records] == [
        ("nobody.known", "refused"),
        ("qian.clerk", "refused"),
        ("zhao.social", "refused"),
        ("li.police", "decrypted"),
        ("wang.hub", "decrypted"),
    ]
    assert [why in (r.detail or "") for r, why in zip(records, refusals.values(), strict=False)] == [True] * 3


def test_decrypt_takes_the_steward_from_hub_user(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub("keys", "init").code == 0
    _stewards("li.steward")
    value = _encrypted("SECRET")[0]
    monkeypatch.setenv("HUB_USER", "li.steward")
    result = hub("decrypt", value, "--reason", "r")
    assert result.code == 0 and result.out.splitlines() == ["SECRET"], result
    assert _store().list_decryptions()[0].steward == "li.steward"
