from __future__ import annotations

import base64
import json
import logging
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from masking.errors import (
    KeyringExistsError,
    KeyringFormatError,
    KeyringMissingError,
    KeyringPermissionError,
    KeyringUpgradeNeededError,
    KeyVerificationError,
    MasterKeyError,
    UnknownKeyVersionError,
)
from masking.keys import KEY_BYTES, MASTER_KEY_ENV, DataKey, Keyring, MasterKey, Secret, TokenKey
from masking.rules import token
from schemas.errors import ConfigurationError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _material_forms(material: bytes) -> list[str]:
    return [
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode().rstrip("="),
        material.hex(),
        repr(material),
    ]


@pytest.fixture(autouse=True)
def _no_outside_master_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from hub.settings import get_settings

    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv("HUB_MASKING__MASTER_KEY_FILE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "private" / "nested" / "keyring.json"


def _master_file(keyring_path: Path) -> Path:
    return keyring_path.parent / "master.key"


def _all_material(keyring: Keyring) -> list[bytes]:
    materials = [keyring.key(i.kind, i.version).secret.reveal() for i in keyring.versions()]
    return [*materials, keyring.master.secret.reveal()]


# -- init, master key, wrapping -------------------------------------------------------------


def test_init_writes_wrapped_keys_and_creates_the_master_key(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path)

    master = _master_file(keyring_path)
    assert keyring.master.created and str(master) in keyring.master.origin
    assert _mode(keyring_path) == _mode(master) == 0o600
    assert _mode(keyring_path.parent) == 0o700
    assert sorted(p.name for p in keyring_path.parent.iterdir()) == ["keyring.json", "master.key"]
    document = json.loads(keyring_path.read_text())
    assert document["format"] == 2
    assert document["current"] == {"token": 1, "encrypt": 1, "audit": 1, "audit-sign": 1}
    assert [(k["kind"], k["version"]) for k in document["keys"]] == [
        ("token", 1),
        ("encrypt", 1),
        ("audit", 1),
        ("audit-sign", 1),
    ]
    text = keyring_path.read_text()
    for material in _all_material(keyring):
        for form in _material_forms(material):
            assert form not in text
    assert len(base64.b64decode(master.read_text().strip())) == KEY_BYTES


def test_load_unwraps_the_same_keys(keyring_path: Path) -> None:
    made = Keyring.init(keyring_path)
    loaded = Keyring.load(keyring_path)
    assert not loaded.master.created
    for kind in ("token", "encrypt"):
        assert loaded.current_key(kind).secret.reveal() == made.current_key(kind).secret.reveal()
    assert loaded.versions() == made.versions()
    assert made.token_key().secret.reveal() != made.current_key("encrypt").secret.reveal()


def test_data_keys_have_kind_version_and_prefix(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path).rotate("encrypt")
    assert keyring.current_key("token").prefix == "k1_"
    assert keyring.current_key("encrypt").prefix == "e2:"
    assert keyring.key("encrypt", 1).kind == "encrypt"
    assert keyring.token_key() == keyring.current_key("token")
    assert TokenKey(version=3, secret=Secret(b"x" * 32)).prefix == "k3_"


def test_master_key_from_environment_wraps_and_unwraps(
    keyring_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    material = bytes(range(32))
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(material).decode())
    made = Keyring.init(keyring_path)

    assert not _master_file(keyring_path).exists()
    assert MASTER_KEY_ENV in made.master.origin and not made.master.created
    assert made.master.secret.reveal() == material
    assert Keyring.load(keyring_path).token_key().secret.reveal() == made.token_key().secret.reveal()

    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(bytes(32)).decode())
    with pytest.raises(MasterKeyError) as caught:
        Keyring.load(keyring_path)
    assert MASTER_KEY_ENV in str(caught.value) and str(keyring_path) in str(caught.value)


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_master_key_in_environment(
    keyring_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(MasterKeyError) as caught:
        Keyring.init(keyring_path)
    assert MASTER_KEY_ENV in str(caught.value)
    assert value not in str(caught.value)
    assert not keyring_path.exists()


def test_wrong_master_key_file_is_named(keyring_path: Path) -> None:
    Keyring.init(keyring_path)
    master = _master_file(keyring_path)
    master.write_text(base64.b64encode(bytes(32)).decode() + "\n")
    with pytest.raises(MasterKeyError) as caught:
        Keyring.load(keyring_path)
    assert str(master) in str(caught.value) and "not the one" in str(caught.value)


def test_missing_master_key_says_how_to_provide_it(keyring_path: Path) -> None:
    Keyring.init(keyring_path)
    _master_file(keyring_path).unlink()
    with pytest.raises(MasterKeyError) as caught:
        Keyring.load(keyring_path)
    assert MASTER_KEY_ENV in str(caught.value) and str(_master_file(keyring_path)) in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_master_key_file_readable_by_others_is_refused(keyring_path: Path, mode: int) -> None:
    Keyring.init(keyring_path)
    _master_file(keyring_path).chmod(mode)
    with pytest.raises(KeyringPermissionError) as caught:
        Keyring.load(keyring_path)
    assert f"chmod 600 {_master_file(keyring_path)}" in str(caught.value)


def test_master_key_file_inside_a_git_work_tree_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with pytest.raises(MasterKeyError) as caught:
        MasterKey.from_file(repo / "secrets" / "master.key", create=True)
    assert str(repo) in str(caught.value)
    assert not (repo / "secrets").exists()


def test_configured_master_key_file_is_used(
    keyring_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.settings import get_settings

    elsewhere = tmp_path / "vault" / "hub-master.key"
    monkeypatch.setenv("HUB_MASKING__MASTER_KEY_FILE", str(elsewhere))
    get_settings.cache_clear()
    configured = get_settings().masking.master_key_file
    Keyring.init(keyring_path, master_key_file=configured)
    assert elsewhere.exists() and _mode(elsewhere) == 0o600
    assert not _master_file(keyring_path).exists()
    Keyring.load(keyring_path, master_key_file=configured)


def test_init_refuses_to_overwrite_without_force(keyring_path: Path) -> None:
    original = Keyring.init(keyring_path).token_key().secret.reveal()
    with pytest.raises(KeyringExistsError) as caught:
        Keyring.init(keyring_path)
    assert isinstance(caught.value, ConfigurationError)
    assert str(keyring_path) in str(caught.value) and "--force" in str(caught.value)
    assert Keyring.load(keyring_path).token_key().secret.reveal() == original
    replaced = Keyring.init(keyring_path, force=True)
    assert replaced.token_key().secret.reveal() != original
    assert not replaced.master.created  # the existing master key is reused


def test_load_missing_file_tells_to_run_init(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "keyring.json"
    with pytest.raises(KeyringMissingError) as caught:
        Keyring.load(path)
    assert "hub keys init" in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_keyring_open_to_group_or_others_is_refused(keyring_path: Path, mode: int) -> None:
    Keyring.init(keyring_path)
    keyring_path.chmod(mode)
    with pytest.raises(KeyringPermissionError) as caught:
        Keyring.load(keyring_path)
    assert f"chmod 600 {keyring_path}" in str(caught.value)


# -- verification ---------------------------------------------------------------------------


def _edit(path: Path, change: object) -> None:
    document = json.loads(path.read_text())
    change(document)  # type: ignore[operator]
    path.write_text(json.dumps(document))


def test_corrupted_wrapped_key_is_named(keyring_path: Path) -> None:
    Keyring.init(keyring_path).rotate("token")

    def corrupt(document: dict) -> None:
        entry = next(k for k in document["keys"] if (k["kind"], k["version"]) == ("token", 2))
        sealed = bytearray(base64.b64decode(entry["wrapped"]))
        sealed[20] ^= 1
        entry["wrapped"] = base64.b64encode(bytes(sealed)).decode()

    _edit(keyring_path, corrupt)
    with pytest.raises(KeyVerificationError) as caught:
        Keyring.load(keyring_path)
    assert "token key version 2" in str(caught.value) and "unwrap" in str(caught.value)


def test_altered_key_check_value_is_named(keyring_path: Path) -> None:
    Keyring.init(keyring_path)
    _edit(keyring_path, lambda d: d["keys"][1].update(kcv="00" * 8))
    with pytest.raises(KeyVerificationError) as caught:
        Keyring.load(keyring_path)
    assert "encrypt key version 1" in str(caught.value) and "check value" in str(caught.value)


def test_entry_moved_to_another_version_does_not_unwrap(keyring_path: Path) -> None:
    Keyring.init(keyring_path).rotate("token")

    def swap(document: dict) -> None:
        first, second = document["keys"][0], document["keys"][1]
        first["wrapped"], second["wrapped"] = second["wrapped"], first["wrapped"]
        first["kcv"], second["kcv"] = second["kcv"], first["kcv"]

    _edit(keyring_path, swap)
    with pytest.raises(KeyVerificationError, match="token key version 1"):
        Keyring.load(keyring_path)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(format=3), "format 3"),
        (lambda d: d.update(wrapping="none"), "wrapping"),
        (lambda d: d.update(current={"token": 9, "encrypt": 1}), "'current'"),
        (lambda d: d.update(keys=[]), "non-empty"),
        (lambda d: d["keys"][0].update(kind="other"), "kind"),
        (lambda d: d["keys"][0].update(algorithm="md5"), "algorithm"),
        (lambda d: d["keys"][0].update(created_at="2025-08-01T08:00:00"), "time zone"),
        (lambda d: d["keys"][0].update(wrapped="not base64 SECRET!"), "base64"),
    ],
)
def test_malformed_keyring_names_path_and_reason(keyring_path: Path, change: object, reason: str) -> None:
    Keyring.init(keyring_path)
    _edit(keyring_path, change)
    with pytest.raises(KeyringFormatError) as caught:
        Keyring.load(keyring_path)
    assert str(keyring_path) in str(caught.value) and reason in str(caught.value)
    assert "SECRET" not in str(caught.value)


# -- format 1 and its upgrade ---------------------------------------------------------------


def _format_1(path: Path, materials: dict[int, bytes], current: int) -> Path:
    document = {
        "format": 1,
        "wrapping": "none",
        "current": current,
        "keys": [
            {
                "version": v,
                "purpose": "token-hmac-sha256",
                "created_at": f"2025-0{v}-01T08:00:00+00:00",
                "material": base64.b64encode(m).decode(),
            }
            for v, m in materials.items()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


def test_loading_format_1_names_the_upgrade_command(keyring_path: Path) -> None:
    _format_1(keyring_path, {1: b"\x01" * 32}, 1)
    with pytest.raises(KeyringUpgradeNeededError) as caught:
        Keyring.load(keyring_path)
    message = str(caught.value)
    assert "hub keys upgrade" in message and str(keyring_path) in message and "\n" not in message


def test_upgrade_keeps_token_keys_versions_and_tokens(keyring_path: Path) -> None:
    materials = {1: b"\x01" * 32, 2: b"\x02" * 32}
    _format_1(keyring_path, materials, current=2)
    ids = pa.array(["11010519491231002X", "", None, "440305199001011234"])
    before = {v: token(ids, TokenKey(version=v, secret=Secret(m))) for v, m in materials.items()}

    upgraded = Keyring.upgrade(keyring_path)
    loaded = Keyring.load(keyring_path)

    assert upgraded.master.created
    assert loaded.current_key("token").version == 2
    assert [(i.kind, i.version) for i in loaded.versions()] == [
        ("token", 1),
        ("token", 2),
        ("encrypt", 1),
        ("audit", 1),
        ("audit-sign", 1),
    ]
    for version in materials:
        assert token(ids, loaded.token_key(version)).equals(before[version])
    assert str(loaded.versions()[0].created_at.date()) == "2025-01-01"
    text = keyring_path.read_text()
    for material in materials.values():
        for form in _material_forms(material):
            assert form not in text
    with pytest.raises(KeyringFormatError, match="only format 1"):
        Keyring.upgrade(keyring_path)


# -- rotation -------------------------------------------------------------------------------


def test_rotation_of_each_kind_keeps_the_other_and_the_old_versions(keyring_path: Path) -> None:
    first = Keyring.init(keyring_path)
    rotated = first.rotate("token").rotate("encrypt").rotate("encrypt")
    loaded = Keyring.load(keyring_path)

    assert loaded.current_key("token").version == 2 and loaded.current_key("encrypt").version == 3
    assert loaded.token_key(1).secret.reveal() == first.token_key().secret.reveal()
    assert loaded.key("encrypt", 1).secret.reveal() == first.current_key("encrypt").secret.reveal()
    assert loaded.key("encrypt", 3).secret.reveal() == rotated.current_key("encrypt").secret.reveal()
    assert [(i.kind, i.version, i.current) for i in loaded.versions("encrypt")] == [
        ("encrypt", 1, False),
        ("encrypt", 2, False),
        ("encrypt", 3, True),
    ]
    assert _mode(keyring_path) == 0o600


def test_unknown_version_and_kind_are_configuration_errors(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path)
    with pytest.raises(UnknownKeyVersionError) as caught:
        keyring.key("encrypt", 7)
    assert isinstance(caught.value, ConfigurationError) and "encrypt key version 7" in str(caught.value)
    with pytest.raises(UnknownKeyVersionError, match="unknown key kind"):
        keyring.current_key("hash")  # type: ignore[arg-type]


# -- nothing prints ------------------------------------------------------------------------


def test_key_material_never_prints_or_logs(
    keyring_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    keyring = Keyring.init(keyring_path).rotate("token").rotate("encrypt")
    key = keyring.current_key("encrypt")
    errors: list[str] = []
    for attempt in (lambda: keyring.key("token", 9), lambda: Keyring.init(keyring_path)):
        try:
            attempt()
        except ConfigurationError as exc:
            errors.append(str(exc))
    _master_file(keyring_path).write_text(base64.b64encode(bytes(32)).decode())
    try:
        Keyring.load(keyring_path)
    except ConfigurationError as exc:
        errors.append(str(exc))
    shown = " ".join(
        [
            repr(keyring),
            str(keyring),
            repr(key),
            str(key),
            f"{key.secret}",
            repr(keyring.master),
            repr(keyring.versions()),
            repr(DataKey(kind="encrypt", version=1, secret=key.secret)),
            *errors,
            caplog.text,
        ]
    )
    assert len(errors) == 3
    assert repr(key.secret) == "Secret('**********')"
    for material in _all_material(keyring):
        for form in _material_forms(material):
            assert form not in shown
