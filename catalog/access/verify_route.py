"""``POST /v1/verify`` (核验): match or no match from the verification index, with the granted
fields of the one record when the grant allows, every answer on record."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response

from catalog.access.auth import (
    Caller,
)
from catalog.access.bodies import VerifyBody
from catalog.access.ratelimit import retry_after
from catalog.access.responses import (
    ApiProblem,
    json_response,
)
from catalog.access.service import FieldGrant, Service
from catalog.access.verification import SUBJECTS, Subject, normalise_key, normalise_name, published_key
from catalog.sharing import (
    active_grant,
    china_day,
    list_grants,
)
from catalog.tables import quote_identifier

if TYPE_CHECKING:
    from catalog.sharing import GrantRef


def verify_route(service: Service, who: Caller, body: VerifyBody) -> Response:
    service.limit(who, "verify")
    subject = SUBJECTS[body.kind]
    purpose = body.purpose.strip()
    fields = list(dict.fromkeys(f.strip() for f in body.fields or () if f.strip()))
    base: dict[str, Any] = {
        "action": "verify",
        "dataset": subject.dataset,
        "purpose": purpose or None,
        "columns": fields,
        "detail": {"kind": subject.kind},
    }

    def bad(reason: str) -> ApiProblem:
        return service.refuse(
            who, status=400, slug="invalid-request", title="The request is not valid", reason=reason, **base
        )

    if not purpose:
        raise service.refuse(
            who,
            status=400,
            slug="purpose-required",
            title="A purpose is required",
            reason="state the purpose of this verification: every use of shared data records it",
            **base,
        )
    identifier, name = identity_of(subject, body, bad)
    if name is not None and not normalise_name(name):
        raise bad(f"{subject.kind}: the name is empty")
    suspicion = service.guard.check(who.system.id, identifier if subject.close_prefix else None)
    if suspicion is not None:
        raise service.refuse(
            who,
            status=429,
            slug="enumeration-suspected",
            title="Verification refused for a cool-down",
            reason=suspicion.reason,
            headers={"Retry-After": retry_after(suspicion.retry_after)},
            **base,
        )
    grant = fields_grant(service, who, subject, fields, base) if fields else None
    index = service.indexes.get(subject.dataset)
    if index is None:
        raise service.refuse(
            who,
            status=503,
            slug="unavailable",
            title="No verification index yet",
            reason=f"dataset {subject.dataset} has no verification index yet (no batch registered since "
            "verification was introduced: run its sources with --full)",
            headers={"Retry-After": "60"},
            **base,
        )
    found = index.lookup(identifier, name, service.indexes.keys)
    service.guard.answered(who.system.id, found.matched)
    answer: dict[str, Any] = {"match": found.matched}
    detail = {
        **base["detail"],
        "match": found.matched,
        "subject": found.key_token,
        "index_snapshot": index.snapshot_id,
        "request": who.request_id,
    }
    snapshot = index.snapshot_id
    returned: list[str] = []
    if grant is not None and found.matched and found.version is not None:
        record, snapshot = read_record(service, subject, grant, fields, identifier, found.version)
        answer["fields"] = record
        detail["grant"] = grant.id
        returned = fields if record is not None else []
    number = service.record(
        action="verify",
        outcome="allowed",
        system=who.system.id,
        department=who.system.department,
        client=who.client,
        dataset=subject.dataset,
        columns=returned,
        purpose=purpose,
        rows=1 if returned else 0,
        snapshot_id=snapshot,
        detail=detail,
    )
    return json_response(answer, headers={"X-Hub-Access-Entry": str(number)})


def identity_of(
    subject: Subject, body: VerifyBody, bad: Callable[[str], ApiProblem]
) -> tuple[str, str | None]:
    """The request's normalised identifier and its name (None when not given), or a refusal."""
    given = {
        f: getattr(body, f) for f in ("id_number", "uscc", "certificate_id") if getattr(body, f) is not None
    }
    others = sorted(set(given) - {subject.key_field})
    if others:
        raise bad(f"{subject.kind}: give {subject.key_field} only, not {', '.join(others)}")
    identifier = normalise_key(given.get(subject.key_field) or "")
    if not identifier:
        raise bad(f"{subject.kind}: {subject.key_field} is required")
    if not re.match(subject.pattern, identifier):
        raise bad(f"{subject.kind}: {subject.key_field} is not {subject.shape}")
    name = body.name.strip() if body.name is not None and body.name.strip() else None
    if subject.name_required and name is None:
        raise bad(f"{subject.kind}: name is required with {subject.key_field}")
    return identifier, name


def fields_grant(
    service: Service, who: Caller, subject: Subject, fields: list[str], base: dict[str, Any]
) -> GrantRef:
    """The system's active grant on the subject's dataset including every asked field, or a 403."""
    grant = active_grant(service.store, who.system.id, subject.dataset)
    reason: str | None = None
    if grant is None:
        latest = list_grants(
            service.store, system=who.system.id, dataset=subject.dataset, include_inactive=True
        )
        if not latest:
            reason = f"system {who.system.id} has no grant for dataset {subject.dataset}: fields need one"
        else:
            last = latest[0]
            state = last.state()
            when = last.revoked_at if state == "revoked" else last.expires_at
            reason = f"grant {last.id} of system {who.system.id} for {subject.dataset} was {state} on {china_day(when)}"
    else:
        missing = [f for f in fields if f not in grant.columns]
        if missing:
            reason = (
                f"grant {grant.id} of system {who.system.id} for {subject.dataset} does not include "
                f"{', '.join(missing)} (granted: {', '.join(grant.columns)})"
            )
    if reason is not None:
        raise service.refuse(
            who,
            status=403,
            slug="fields-not-granted",
            title="Fields outside the grant",
            reason=reason,
            **base,
        )
    assert grant is not None
    return grant


def read_record(
    service: Service, subject: Subject, grant: GrantRef, fields: list[str], identifier: str, version: int
) -> tuple[dict[str, Any] | None, int | None]:
    """The asked fields of the one record with this identifier, as the grant's view shows it."""
    key_column, key_value = published_key(subject, identifier, service.indexes.keys[version])
    narrowed = FieldGrant(
        grant.id, grant.system, grant.dataset, grant.level, tuple(dict.fromkeys([*fields, key_column]))
    )
    connection, views = service.gateway._connect([narrowed])
    try:
        columns = ", ".join(quote_identifier(f) for f in fields)
        sql = f"SELECT {columns} FROM {quote_identifier(grant.dataset)} WHERE {quote_identifier(key_column)} = $1 LIMIT 2"
        rows = connection.execute(sql, [key_value]).to_arrow_table().to_pylist()
    finally:
        connection.close()
    snapshot = views[grant.dataset].snapshot_id
    if len(rows) != 1:
        return None, snapshot
    return rows[0], snapshot
