"""Appending one entry from anywhere in the hub (:func:`record_access`), and the check that
only auditors read the log (:func:`require_auditor`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from catalog.audit.fields import (
    Outcome,
    entry_fields,
)
from catalog.audit.keys import load_keys
from catalog.audit.log import AccessLog
from catalog.metadata import (
    Person,
    PersonRole,
    Role,
)
from schemas.errors import AccessDeniedError


def record_access(
    store: Any,
    *,
    action: str,
    outcome: Outcome,
    actor: str | None = None,
    system: str | None = None,
    department: str | None = None,
    dataset: str | None = None,
    columns: Sequence[str] = (),
    purpose: str | None = None,
    rows: int | None = None,
    snapshot_id: int | None = None,
    reason: str | None = None,
    client: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry to the access log and return its sequence number.

    ``store`` is a :class:`catalog.metadata.store.MetadataStore` (the entry commits on its own) or an
    open SQLAlchemy ``Session`` on the hub metadata (the entry commits, or rolls back, with
    the caller's transaction, so an action and its record cannot part). The MAC and signing
    keys come from the configured keyring (:func:`load_keys`). Raises ``ValueError`` or
    ``TypeError`` for a malformed entry (bad action or outcome, a detail that is not small
    JSON) before anything is written.
    """
    entry = entry_fields(
        action=action,
        outcome=outcome,
        actor=actor,
        system=system,
        department=department,
        dataset=dataset,
        columns=columns,
        purpose=purpose,
        rows=rows,
        snapshot_id=snapshot_id,
        reason=reason,
        client=client,
        detail=detail,
    )
    if isinstance(store, Session):
        return AccessLog.append_in(store, [entry], load_keys())[0]
    return AccessLog(store).append_fields([entry])[0]


def require_auditor(store: Any, name: str | None, *, action: str, client: str | None = None) -> str:
    """The acting person's name if they are a registered auditor; else the refusal, recorded.

    Reports and exports show who read what, so only people holding the ``auditor`` role
    (``hub people add NAME --role auditor``) may read them. The refusal is appended to the
    log under ``action`` and raised as :class:`AccessDeniedError` (exit code 5).
    """
    acting = (name or "").strip() or None
    reason: str | None = None
    if acting is None:
        reason = "who is acting? pass --as NAME or set HUB_USER"
    else:
        with store.session() as session:
            person = session.get(Person, acting)
            if person is None:
                reason = f"no person {acting!r} is registered (hub people add)"
            elif person.removed_at is not None:
                reason = f"person {acting!r} was removed on {person.removed_at:%Y-%m-%d}"
            else:
                query = select(PersonRole.id).where(
                    PersonRole.person == acting, PersonRole.role == Role.AUDITOR
                )
                if session.execute(query.limit(1)).first() is None:
                    reason = f"{acting} is not an auditor"
    if reason is not None:
        record_access(store, action=action, outcome="denied", actor=acting, client=client, reason=reason)
        raise AccessDeniedError(f"{action} refused: {reason} (this refusal is recorded)")
    assert acting is not None
    return acting
