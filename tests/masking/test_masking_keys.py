from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from hub.errors import ConfigurationError
from masking.errors import (
    KeyringExistsError,
    KeyringFormatError,
    KeyringMissingError,
    KeyringPermissionError,
    UnknownKeyVersionError,
)
from masking.keys import KEY_BYTES, Keyring, Secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _material_forms(material: bytes) -> list[str]:
    return [base64.b64encode(material).decode(), material.hex(), repr(material)]


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "private" / "nested" / "keyring.json"


def test_init_writes_private_file_in_private_folder(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path)

    assert _mode(keyring_path) == 0o600
    assert _mode(keyring_path.parent) == 0o700
    assert [p.name for p in keyring_path.parent.iterdir()] == ["keyring.json"]  # no temp file
    document = json.loads(keyring_path.read_text())
    assert document["format"] == 1
    assert document["wrapping"] == "none"
    assert document["current"] == 1
    (entry,) = document["keys"]
    material = base64.b64decode(entry["material"], validate=True)
    assert len(material) == KEY_BYTES
    assert material == keyring.token_key().secret.reveal()


def test_init_makes_a_different_key_each_time(tmp_path: Path) -> None:
    first = Keyring.init(tmp_path / "a.json").token_key().secret.reveal()
    second = Keyring.init(tmp_path / "b.json").token_key().secret.reveal()
    assert first != second


def test_init_refuses_to_overwrite_without_force(keyring_path: Path) -> None:
    original = Keyring.init(keyring_path).token_key().secret.reveal()

    with pytest.raises(KeyringExistsError) as caught:
        Keyring.init(keyring_path)

    assert isinstance(caught.value, ConfigurationError)
    assert str(keyring_path) in str(caught.value)
    assert "--force" in str(caught.value)
    assert Keyring.load(keyring_path).token_key().secret.reveal() == original


def test_init_with_force_replaces_the_key(keyring_path: Path) -> None:
    original = Keyring.init(keyring_path).token_key().secret.reveal()
    replaced = Keyring.init(keyring_path, force=True).token_key().secret.reveal()
    assert replaced != original
    assert Keyring.load(keyring_path).token_key().secret.reveal() == replaced
    assert _mode(keyring_path) == 0o600


def test_load_round_trips(keyring_path: Path) -> None:
    made = Keyring.init(keyring_path)
    loaded = Keyring.load(keyring_path)
    assert loaded.token_key().secret.reveal() == made.token_key().secret.reveal()
    assert loaded.versions() == made.versions()


def test_load_missing_file_tells_to_run_init(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "keyring.json"
    with pytest.raises(KeyringMissingError) as caught:
        Keyring.load(path)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigurationError)
    assert "\n" not in message
    assert "hub keys init" in message
    assert str(path) in message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_load_refuses_file_open_to_group_or_others(keyring_path: Path, mode: int) -> None:
    Keyring.init(keyring_path)
    keyring_path.chmod(mode)
    with pytest.raises(KeyringPermissionError) as caught:
        Keyring.load(keyring_path)
    assert f"chmod 600 {keyring_path}" in str(caught.value)


def test_load_accepts_owner_only_modes(keyring_path: Path) -> None:
    Keyring.init(keyring_path)
    keyring_path.chmod(0o400)
    assert Keyring.load(keyring_path).current_version == 1


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _valid_document(material: bytes = b"\x01" * KEY_BYTES) -> dict[str, object]:
    return {
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


def test_load_valid_hand_written_document(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.json", json.dumps(_valid_document()))
    assert Keyring.load(path).token_key().secret.reveal() == b"\x01" * KEY_BYTES


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(format=2), "format 2"),
        (lambda d: d.pop("format"), "format missing"),
        (lambda d: d.update(wrapping="aes-256-gcm"), "master key"),
        (lambda d: d.update(current=3), "'current'"),
        (lambda d: d.update(keys=[]), "non-empty"),
        (lambda d: d["keys"][0].update(version="1"), "version"),
        (lambda d: d["keys"][0].update(purpose="other"), "purpose"),
        (lambda d: d["keys"][0].update(created_at="yesterday"), "created_at"),
        (lambda d: d["keys"][0].update(created_at="2025-08-01T08:00:00"), "time zone"),
        (lambda d: d["keys"][0].update(material="not base64 SECRET!"), "base64"),
        (lambda d: d["keys"][0].update(material=base64.b64encode(b"SECRET16BYTES!!!").decode()), "32"),
        (lambda d: d["keys"].append(dict(d["keys"][0])), "twice"),
    ],
)
def test_load_malformed_names_path_and_reason_never_content(
    tmp_path: Path, change: object, reason: str
) -> None:
    document = _valid_document()
    change(document)  # type: ignore[operator]
    text = json.dumps(document)
    path = _write(tmp_path / "k.json", text)

    with pytest.raises(KeyringFormatError) as caught:
        Keyring.load(path)

    message = str(caught.value)
    assert str(path) in message
    assert reason in message
    assert "SECRET" not in message
    assert base64.b64encode(b"SECRET16BYTES!!!").decode() not in message
    for form in _material_forms(b"\x01" * KEY_BYTES):
        assert form not in message


@pytest.mark.parametrize("content", ["{not json SECRETVALUE", "[1, 2]", "", "\xff"])
def test_load_garbage_names_path_not_content(tmp_path: Path, content: str) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content.encode("latin-1"))
    path.chmod(0o600)
    with pytest.raises(KeyringFormatError) as caught:
        Keyring.load(path)
    assert str(path) in str(caught.value)
    assert "SECRETVALUE" not in str(caught.value)


def test_token_key_versions_and_rotation(keyring_path: Path) -> None:
    first = Keyring.init(keyring_path)
    rotated = first.rotate()

    assert rotated.current_version == 2
    assert rotated.token_key().version == 2
    assert rotated.token_key(1).secret.reveal() == first.token_key().secret.reveal()
    assert rotated.token_key(2).secret.reveal() != first.token_key().secret.reveal()
    infos = Keyring.load(keyring_path).versions()
    assert [(i.version, i.current) for i in infos] == [(1, False), (2, True)]
    assert all(i.created_at.tzinfo is not None for i in infos)
    assert _mode(keyring_path) == 0o600


def test_unknown_version_is_a_configuration_error(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path)
    with pytest.raises(UnknownKeyVersionError) as caught:
        keyring.token_key(7)
    assert isinstance(caught.value, ConfigurationError)
    assert "7" in str(caught.value)
    for form in _material_forms(keyring.token_key().secret.reveal()):
        assert form not in str(caught.value)


def test_key_material_never_prints(keyring_path: Path) -> None:
    keyring = Keyring.init(keyring_path).rotate()
    key = keyring.token_key()
    shown = " ".join(
        [
            repr(keyring),
            str(keyring),
            repr(key),
            str(key),
            f"{key.secret}",
            repr(keyring.versions()),
            repr(keyring.token_key(1)),
        ]
    )
    assert repr(key.secret) == "Secret('**********')"
    assert str(key.secret) == "Secret('**********')"
    for version in (1, 2):
        for form in _material_forms(keyring.token_key(version).secret.reveal()):
            assert form not in shown


def test_secret_wraps_bytes() -> None:
    secret = Secret(bytearray(b"abc"))
    assert secret.reveal() == b"abc"
    assert "abc" not in repr(secret)
