"""Two stewards answering one request at once give one decision and at most one grant (SQLite).

Each steward runs in its own thread with its own store (engine, connections). A barrier
holds both after they have read the request as pending and before they write, so both
really attempt the change: the conditional ``UPDATE ... WHERE status = 'pending'`` lets
one through. tests/integration/test_sharing_postgres.py does the same on PostgreSQL, with
threads and with processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import catalog.sharing.requests as sharing
from catalog.metadata import MetadataStore, RequestStatus
from catalog.sharing import get_request
from tests.support.decisions import (
    approve,
    check_one_winner,
    decide_at_once,
    deny,
    pending_request,
)
from tests.support.sharing import build_world, prepare_home


@pytest.fixture
def db(hub_home: Path, tmp_path: Path) -> Iterator[tuple[MetadataStore, Callable[[], MetadataStore]]]:
    prepare_home()
    url = f"sqlite:///{tmp_path / 'race.db'}"
    store = MetadataStore(url)
    build_world(store)
    yield store, lambda: MetadataStore(url)
    store.dispose()


@pytest.mark.parametrize(
    "stewards", [["li.police", "wang.hub"], ["li.police", "wang.hub", "li.police", "wang.hub"]]
)
def test_stewards_approving_at_once_give_one_grant(
    db: tuple[MetadataStore, Callable[[], MetadataStore]],
    monkeypatch: pytest.MonkeyPatch,
    stewards: list[str],
) -> None:
    store, make_store = db
    for _ in range(3):
        request_id = pending_request(store)
        results = decide_at_once(make_store, request_id, [(s, approve) for s in stewards], monkeypatch)
        check_one_winner(store, request_id, results, "approved")


def test_an_approval_and_a_denial_at_once_give_one_decision(
    db: tuple[MetadataStore, Callable[[], MetadataStore]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, make_store = db
    request_id = pending_request(store)
    results = decide_at_once(
        make_store, request_id, [("li.police", approve), ("wang.hub", deny)], monkeypatch
    )
    winner = next(r for r in results if not isinstance(r, BaseException))
    status = "approved" if isinstance(winner, sharing.GrantRef) else "denied"
    check_one_winner(store, request_id, results, status)
    assert get_request(store, request_id).status is RequestStatus(status)
