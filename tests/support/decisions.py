"""Two stewards deciding the same request at once, from threads or processes."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

import catalog.sharing.requests as sharing
from catalog.metadata import Grant, MetadataStore
from catalog.sharing import SharingError, get_request, submit_request
from tests.support.sharing import NOW, log_entries

Decide = Callable[[MetadataStore, int, str], Any]


def approve(store: MetadataStore, request_id: int, steward: str) -> Any:
    return sharing.approve_request(store, request_id, actor=steward)


def deny(store: MetadataStore, request_id: int, steward: str) -> Any:
    return sharing.deny_request(store, request_id, actor=steward, reason="不符合共享条件")


def pending_request(store: MetadataStore) -> int:
    ref, _ = submit_request(
        store,
        "population",
        system="shebao-core",
        purpose="养老保险待遇资格认证",
        columns=["person_token", "birth_year"],
        actor="zhang.clerk",
        now=NOW,
    )
    return ref.id


def decide_at_once(
    make_store: Callable[[], MetadataStore],
    request_id: int,
    moves: list[tuple[str, Decide]],
    monkeypatch: pytest.MonkeyPatch,
) -> list[Any]:
    """Run each ``(steward, decide)`` in its own thread and store; all read before any writes."""
    barrier = threading.Barrier(len(moves), timeout=20)
    owner_of = sharing._owner

    def read_then_wait(request: sharing.Request) -> str:
        owner = owner_of(request)
        barrier.wait()
        return owner

    monkeypatch.setattr(sharing, "_owner", read_then_wait)
    results: list[Any] = [None] * len(moves)

    def run(index: int, steward: str, decide: Decide) -> None:
        store = make_store()
        try:
            results[index] = decide(store, request_id, steward)
        except Exception as exc:
            results[index] = exc
        finally:
            store.dispose()

    threads = [threading.Thread(target=run, args=(i, *move)) for i, move in enumerate(moves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    monkeypatch.setattr(sharing, "_owner", owner_of)
    return results


def grants_of(store: MetadataStore, request_id: int) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).where(Grant.request_id == request_id)) or 0)


def check_one_winner(store: MetadataStore, request_id: int, results: list[Any], winner_status: str) -> None:
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, SharingError) and f"request {request_id} was already" in str(r) for r in lost), (
        lost
    )
    assert get_request(store, request_id).status.value == winner_status
    assert grants_of(store, request_id) == (1 if winner_status == "approved" else 0)
    mark = re.compile(f'"request":{request_id}[,}}]')
    entries = [e for e in log_entries(store) if mark.search(e["detail"] or "")]
    decisions = [e for e in entries if e["action"] in ("approve", "deny")]
    assert len(decisions) == len(results)
    assert sum(1 for e in decisions if e["reason"] and "was already" in e["reason"]) == len(lost)
