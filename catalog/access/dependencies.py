"""FastAPI dependencies of the ``/v1`` routes: the client's address, the bearer credential and
the authenticated caller, every refusal on record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from catalog.access.auth import AuthError, Caller
from catalog.access.responses import (
    request_id,
)
from catalog.access.service import Service

if TYPE_CHECKING:
    pass


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


bearer = HTTPBearer(auto_error=False, description="A system credential (hub_sys_...) issued by a steward.")


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """The authenticated system, or a recorded 401."""
    service = service_of(request)
    client = client_address(request)
    request.state.client = client
    try:
        system = service.auth.authenticate(credentials.credentials if credentials else None)
    except AuthError as exc:
        raise service.refuse(
            None,
            action="system.authenticate",
            status=401,
            slug="unauthenticated",
            title="Authentication failed",
            reason=str(exc),
            client=client,
            system=exc.system,
            department=exc.department,
            headers={"WWW-Authenticate": 'Bearer realm="gov-data-hub"'},
            detail={"path": request.url.path, "request": request_id(request)},
        ) from None
    found = Caller(system, client, request_id(request))
    request.state.caller = found
    return found


Authenticated = Annotated[Caller, Depends(authenticated)]
"""A handler parameter: the calling system, authenticated (or the request is refused with 401)."""
