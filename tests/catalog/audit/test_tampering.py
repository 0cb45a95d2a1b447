"""Tampering with the access log by raw SQL, each kind detected and the first bad entry named.

The scenarios are in tests/support/tampering.py, shared with the PostgreSQL run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.audit import load_keys, public_key_pem, read_public_keys
from catalog.metadata import MetadataStore
from masking.keys import Keyring
from tests.support.tampering import SCENARIOS, Logged, check, delete_middle, edit_and_rehash, fill


@pytest.fixture
def logged(hub_home: Path) -> Iterator[Logged]:
    from hub.settings import get_settings

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    assert settings.catalog.metadata_url is not None
    store = MetadataStore(settings.catalog.metadata_url)
    yield fill(store)
    store.dispose()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_tampering_is_detected_and_the_first_bad_entry_named(logged: Logged, name: str) -> None:
    check(logged, name)


def test_with_the_public_key_only_a_rehashed_entry_is_caught_by_its_checkpoint(logged: Logged) -> None:
    public = read_public_keys(public_key_pem(load_keys().public_keys()[1]))
    assert logged.log.verify(public_keys=public).ok
    edit_and_rehash(logged)
    problem = logged.log.verify(public_keys=public).first_problem
    assert problem is not None and problem.seq == 10, problem
    assert "entry 10 is not the entry signed checkpoint 2 names" in str(problem)


def test_verification_continues_to_work_after_more_appends_on_a_tampered_log(logged: Logged) -> None:
    delete_middle(logged)
    logged.log.append(action="query", outcome="allowed")
    problem = logged.log.verify().first_problem
    assert problem is not None and problem.seq == 7
