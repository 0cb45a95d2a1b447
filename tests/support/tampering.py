"""Tampering with the access log by raw SQL: a filled log and every kind of attack on it,
each with the entry verification must name. Run on SQLite by tests/catalog/audit/test_tampering.py
and on PostgreSQL by tests/integration/test_audit_postgres.py: an attacker there has the same
SQL and no audit keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

import catalog.audit as audit
from catalog.audit import AccessLog
from catalog.metadata import MetadataStore

ENTRIES = 12
EVERY = 5
"""Twelve entries, a checkpoint every five: checkpoints at entries 5 and 10, two entries after."""


@dataclass
class Logged:
    store: MetadataStore
    log: AccessLog
    schema: str | None = None

    @contextmanager
    def sql(self) -> Iterator[Connection]:
        """A raw connection on the log's tables, as an attacker with database access has."""
        with self.store.engine.begin() as connection:
            if self.schema:
                connection.execute(text(f'SET LOCAL search_path TO "{self.schema}"'))
            yield connection

    def rows(self) -> list[dict[str, Any]]:
        with self.sql() as connection:
            return [
                dict(r._mapping)
                for r in connection.execute(text("SELECT * FROM hub_access_log ORDER BY seq"))
            ]

    def head(self) -> dict[str, Any]:
        with self.sql() as connection:
            return dict(connection.execute(text("SELECT * FROM hub_access_head")).one()._mapping)


def fill(store: MetadataStore, schema: str | None = None) -> Logged:
    log = AccessLog(store, checkpoint_every=EVERY)
    for i in range(1, ENTRIES + 1):
        log.append(
            action="query" if i % 4 else "refusal",
            outcome="allowed" if i % 4 else "denied",
            system=f"system-{i % 3}",
            dataset="population",
            columns=["person_token", "birth_year"],
            purpose="社保待遇资格认证",
            rows=i * 10 if i % 4 else 0,
            reason=None if i % 4 else "column id_number is outside the grant",
            client="198.51.100.4",
        )
    return Logged(store, log, schema)


# -- the attacks -------------------------------------------------------------------------------


def _rechain(logged: Logged, connection: Connection, start: int, change: dict[str, Any]) -> None:
    """Change entry ``start`` and recompute the public hash chain from there on (no MAC key)."""
    rows = logged.rows()
    previous = next((r["entry_hash"] for r in rows if r["seq"] == start - 1), audit.GENESIS)
    for row in rows:
        if row["seq"] < start:
            continue
        if row["seq"] == start:
            row.update(change)
        row["prev_hash"] = previous
        if isinstance(row["at"], str):  # SQLite returns text on raw reads
            from datetime import UTC, datetime

            row["at"] = datetime.fromisoformat(row["at"]).replace(tzinfo=UTC)
        row["entry_hash"] = audit.entry_hash(row)
        previous = row["entry_hash"]
        connection.execute(
            text(
                "UPDATE hub_access_log SET outcome = :outcome, rows = :rows, prev_hash = :prev_hash, "
                "entry_hash = :entry_hash WHERE seq = :seq"
            ),
            row,
        )


def edit_outcome(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_log SET outcome = 'allowed', reason = NULL WHERE seq = 8"))


def edit_rows(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_log SET rows = 5 WHERE seq = 7"))


def edit_time(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(
            text("UPDATE hub_access_log SET at = (SELECT at FROM hub_access_log WHERE seq = 1) WHERE seq = 7")
        )


def edit_and_rehash(logged: Logged) -> None:
    with logged.sql() as c:
        _rechain(logged, c, 7, {"rows": 5})


def edit_and_rehash_after_last_checkpoint(logged: Logged) -> None:
    with logged.sql() as c:
        _rechain(logged, c, 12, {"outcome": "allowed"})


def delete_middle(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log WHERE seq = 7"))


def delete_and_renumber(logged: Logged) -> None:
    """Remove entry 7 and close the gap by renumbering the later ones."""
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log WHERE seq = 7"))
        c.execute(text("UPDATE hub_access_log SET seq = seq + 1000 WHERE seq > 7"))
        c.execute(text("UPDATE hub_access_log SET seq = seq - 1001 WHERE seq > 1000"))


def delete_first(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log WHERE seq <= 2"))


def reorder(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_log SET seq = -1 WHERE seq = 7"))
        c.execute(text("UPDATE hub_access_log SET seq = 7 WHERE seq = 8"))
        c.execute(text("UPDATE hub_access_log SET seq = 8 WHERE seq = -1"))


def reorder_times_too(logged: Logged) -> None:
    """Swap two entries' contents (not their numbers): what a reordering by time looks like."""
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_log SET seq = -1 WHERE seq = 3"))
        c.execute(text("UPDATE hub_access_log SET seq = 3 WHERE seq = 4"))
        c.execute(text("UPDATE hub_access_log SET seq = 4 WHERE seq = -1"))
        c.execute(
            text("UPDATE hub_access_log SET at = (SELECT at FROM hub_access_log WHERE seq = 2) WHERE seq = 3")
        )


def _forged(logged: Logged, seq: int, after: int) -> dict[str, Any]:
    base = next(r for r in logged.rows() if r["seq"] == after)
    forged = {**base, "seq": seq, "system": "intruder", "rows": 1_000_000, "prev_hash": base["entry_hash"]}
    if isinstance(forged["at"], str):
        from datetime import UTC, datetime

        forged["at"] = datetime.fromisoformat(forged["at"]).replace(tzinfo=UTC)
    forged["entry_hash"] = audit.entry_hash(forged)
    forged["entry_mac"] = secrets.token_hex(32)
    return forged


def _insert(connection: Connection, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    connection.execute(
        text(f"INSERT INTO hub_access_log ({names}) VALUES ({', '.join(':' + n for n in row)})"), row
    )


def insert_middle(logged: Logged) -> None:
    forged = _forged(logged, 8, after=7)
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_log SET seq = seq + 1000 WHERE seq >= 8"))
        c.execute(text("UPDATE hub_access_log SET seq = seq - 999 WHERE seq >= 1008"))
        _insert(c, forged)


def insert_beyond_head(logged: Logged) -> None:
    forged = _forged(logged, ENTRIES + 1, after=ENTRIES)
    with logged.sql() as c:
        _insert(c, forged)


def truncate_tail(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log WHERE seq > 10"))


def truncate_tail_past_a_checkpoint_and_the_head(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log WHERE seq >= 8"))
        c.execute(text("DELETE FROM hub_access_head"))


def truncate_everything_but_the_head(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_log"))


def delete_a_checkpoint(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_checkpoints WHERE number = 1"))


def delete_the_newest_checkpoint(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("DELETE FROM hub_access_checkpoints WHERE number = 2"))


def edit_a_checkpoint(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(text("UPDATE hub_access_checkpoints SET entries = 4 WHERE number = 1"))


def edit_the_head(logged: Logged) -> None:
    with logged.sql() as c:
        c.execute(
            text(
                "UPDATE hub_access_head SET seq = 11, entry_hash = (SELECT entry_hash FROM hub_access_log "
                "WHERE seq = 11), entry_mac = (SELECT entry_mac FROM hub_access_log WHERE seq = 11)"
            )
        )
        c.execute(text("DELETE FROM hub_access_log WHERE seq = 12"))


Attack = Callable[[Logged], None]

SCENARIOS: dict[str, tuple[Attack, int | None, str]] = {
    # name: (attack, first bad entry named, words of the message)
    "edit a denied outcome": (edit_outcome, 8, "entry 8 was altered"),
    "edit a row count": (edit_rows, 7, "entry 7 was altered"),
    "edit a time": (edit_time, 7, "entry 7 was altered"),
    "edit and recompute the hash chain": (edit_and_rehash, 7, "entry 7 was altered or forged: its MAC"),
    "edit and rehash after the last checkpoint": (
        edit_and_rehash_after_last_checkpoint,
        12,
        "entry 12 was altered or forged",
    ),
    "delete an entry": (delete_middle, 7, "entry 7 missing after entry 6"),
    "delete and renumber": (delete_and_renumber, 7, "entry 7 does not follow entry 6"),
    "delete the first entries": (delete_first, 1, "entries 1-2 missing at the start"),
    "reorder two entries": (reorder, 7, "entry 7 does not follow entry 6"),
    "reorder with times": (reorder_times_too, 3, "entry 3 does not follow entry 2"),
    "insert in the middle": (insert_middle, 8, "entry 8 was altered or forged"),
    "insert after the head": (insert_beyond_head, 13, "entry 13 lies beyond the chain head"),
    "truncate the tail": (truncate_tail, 11, "entries 11-12 missing at the end"),
    "truncate past a checkpoint and drop the head": (
        truncate_tail_past_a_checkpoint_and_the_head,
        8,
        "entries 8-10 missing at the end of the log (truncated; signed checkpoint 2 names entry 10)",
    ),
    "delete every entry": (truncate_everything_but_the_head, 1, "entries 1-12 missing at the end"),
    "delete a checkpoint": (delete_a_checkpoint, None, "checkpoint 1 is missing"),
    "delete the newest checkpoint": (delete_the_newest_checkpoint, None, "checkpoint 2 is missing"),
    "edit a checkpoint": (edit_a_checkpoint, 5, "checkpoint 1 (entry 5) has no valid signature"),
    "truncate and move the head back": (edit_the_head, None, "chain-head row was altered"),
}


def check(logged: Logged, name: str) -> None:
    """Verify before and after the attack; the first problem names the expected entry."""
    attack, seq, needle = SCENARIOS[name]
    assert logged.log.verify().ok
    attack(logged)
    result = logged.log.verify()
    assert not result.ok, name
    messages = [str(p) for p in result.problems]
    assert any(needle in m for m in messages), messages
    first = result.first_problem
    assert first is not None
    if seq is not None:
        assert first.seq == seq and f"{seq}" in str(first), messages


# -- SQLite ------------------------------------------------------------------------------------
