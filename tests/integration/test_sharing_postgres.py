"""The sharing workflow on PostgreSQL, in a throw-away schema: the whole path once, and two
(or more) stewards answering one request at once from threads and from processes."""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import catalog.sharing as catalog_sharing
import catalog.sharing.requests as sharing
from catalog.metadata import MetadataStore, RequestStatus
from catalog.sharing import SharingError, active_grant, grants_including, require_grant
from tests.support.decisions import (
    approve,
    check_one_winner,
    decide_at_once,
    deny,
    grants_of,
    pending_request,
)
from tests.support.sharing import NOW, build_world, log_entries, prepare_home

pytestmark = pytest.mark.integration


@pytest.fixture
def pg(postgres_url: str, hub_home: Path) -> Iterator[tuple[MetadataStore, Callable[[], MetadataStore], str]]:
    prepare_home()
    schema = f"hub_test_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = MetadataStore(postgres_url, schema=schema)
    try:
        build_world(store)
        yield store, lambda: MetadataStore(postgres_url, schema=schema), schema
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_request_approve_and_revoke_on_postgres(pg: tuple[MetadataStore, Any, str]) -> None:
    store, _, _ = pg
    request_id = pending_request(store)
    grant = sharing.approve_request(store, request_id, actor="li.police", columns=["birth_year"], now=NOW)
    assert grant.columns == ("birth_year",) and grant.expires_at.tzinfo is not None
    assert active_grant(store, "shebao-core", "population", now=NOW) == grant
    assert grants_including(store, "population", ["birth_year"], now=NOW) == [grant]
    catalog_sharing.revoke_grant(store, grant.id, actor="li.police", reason="项目结束", now=NOW)
    with pytest.raises(SharingError, match="项目结束"):
        require_grant(store, "shebao-core", "population", now=NOW)
    refused = sharing.list_requests(store, status=[RequestStatus.APPROVED])
    assert [r.id for r in refused] == [request_id]
    assert [e["action"] for e in log_entries(store)][-3:] == ["approve", "revoke", "query"]


@pytest.mark.parametrize("stewards", [["li.police", "wang.hub"], ["li.police", "wang.hub"] * 3])
def test_threads_approving_at_once_give_one_grant(
    pg: tuple[MetadataStore, Callable[[], MetadataStore], str],
    monkeypatch: pytest.MonkeyPatch,
    stewards: list[str],
) -> None:
    store, make_store, _ = pg
    for _ in range(3):
        request_id = pending_request(store)
        results = decide_at_once(make_store, request_id, [(s, approve) for s in stewards], monkeypatch)
        check_one_winner(store, request_id, results, "approved")


def test_threads_approving_and_denying_at_once_give_one_decision(
    pg: tuple[MetadataStore, Callable[[], MetadataStore], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, make_store, _ = pg
    request_id = pending_request(store)
    results = decide_at_once(
        make_store, request_id, [("li.police", approve), ("wang.hub", deny)], monkeypatch
    )
    status = "approved" if any(isinstance(r, sharing.GrantRef) for r in results) else "denied"
    check_one_winner(store, request_id, results, status)


def _approve_in_process(url: str, schema: str, request_id: int, steward: str, barrier: Any, out: Any) -> None:
    """One steward in its own process: read the request, wait for the others, approve."""
    from hub.settings import get_settings

    get_settings()  # as every hub process does first: hands the catalogue its settings
    owner_of = sharing._owner

    def read_then_wait(request: sharing.Request) -> str:
        owner = owner_of(request)
        barrier.wait(timeout=30)
        return owner

    sharing._owner = read_then_wait  # type: ignore[assignment]
    store = MetadataStore(url, schema=schema)
    try:
        grant = sharing.approve_request(store, request_id, actor=steward)
        out.put(("granted", grant.id))
    except SharingError as exc:
        out.put(("refused", str(exc)))
    finally:
        store.dispose()


def test_processes_approving_at_once_give_one_grant(
    pg: tuple[MetadataStore, Callable[[], MetadataStore], str], postgres_url: str
) -> None:
    store, _, schema = pg
    context = multiprocessing.get_context("spawn")
    stewards = ["li.police", "wang.hub", "li.police", "wang.hub"]
    for _ in range(2):
        request_id = pending_request(store)
        barrier, out = context.Barrier(len(stewards)), context.Queue()
        workers = [
            context.Process(
                target=_approve_in_process, args=(postgres_url, schema, request_id, s, barrier, out)
            )
            for s in stewards
        ]
        for worker in workers:
            worker.start()
        outcomes = [out.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        granted = [o for o in outcomes if o[0] == "granted"]
        refused = [o for o in outcomes if o[0] == "refused"]
        assert len(granted) == 1 and len(refused) == len(stewards) - 1, outcomes
        assert all(f"request {request_id} was already approved" in reason for _, reason in refused)
        assert grants_of(store, request_id) == 1
