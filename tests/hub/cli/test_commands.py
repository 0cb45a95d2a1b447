"""The ``hub`` command as a user meets it: one clear line and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import assert_clean_error, hub


def test_run_without_keyring_says_to_run_keys_init(env: dict[str, str]) -> None:
    assert hub("simulate", "population", "--rows", "200", env=env).returncode == 0
    result = hub("run", "population", env=env)
    assert_clean_error(result, 2, "hub keys init", env["HUB_MASKING__KEYRING_PATH"])
    assert len(result.stderr.strip().splitlines()) <= 2  # one message (rich may wrap it once)


def test_keys_init_twice_refuses_to_replace_keys(env: dict[str, str]) -> None:
    first = hub("keys", "init", env=env)
    assert first.returncode == 0, first.stderr
    assert (Path(env["HUB_MASKING__KEYRING_PATH"]).stat().st_mode & 0o777) == 0o600
    assert_clean_error(hub("keys", "init", env=env), 2, env["HUB_MASKING__KEYRING_PATH"])
    listed = hub("keys", "list", env=env)
    assert listed.returncode == 0 and "yes" in listed.stdout


def test_unreachable_source_names_it_without_password(env: dict[str, str]) -> None:
    assert hub("keys", "init", env=env).returncode == 0
    env["HUB_SOURCE_POPULATION_URL"] = "postgresql+psycopg://registry:t0p-secret@127.0.0.1:1/registry"
    result = hub("run", "population", env=env)
    assert_clean_error(result, 6, "127.0.0.1:1/registry")
    assert "t0p-secret" not in result.stderr + result.stdout


def test_unknown_batch_and_unknown_dataset(env: dict[str, str]) -> None:
    assert_clean_error(hub("batches", "show", "population-x", env=env), 7, "population-x")
    result = hub("run", "people", env=env)
    assert_clean_error(result, 2, "no source 'people'", "population")


def test_settings_hide_passwords(env: dict[str, str]) -> None:
    env["HUB_CATALOG__METADATA_URL"] = "postgresql+psycopg://hub:hunter22@127.0.0.1:5432/hub"
    result = hub("settings", env=env)
    assert result.returncode == 0, result.stderr
    assert "hunter22" not in result.stdout and "***" in result.stdout
