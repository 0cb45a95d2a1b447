"""Responses of the consumers' HTTP API: problem+json for every refusal, request ids, and JSON
that carries dates and decimals."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    pass


PROBLEM = "application/problem+json"


PROBLEM_TYPE = "urn:gov-data-hub:problem:"
"""Prefix of every problem ``type``; the suffixes are listed in docs/api.md."""


PARQUET = "application/vnd.apache.parquet"


class ApiProblem(Exception):
    """A refusal or failure answered as problem+json (RFC 9457)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        entry: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.entry = entry


def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = uuid.uuid4().hex
    return str(rid)


class RequestIds:
    """Gives every request an id: ``X-Request-Id`` on the response, a problem's ``instance``, and
    ``request`` in the detail of the request's access-log entry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        await self.app(scope, receive, send_with_id)


def problem_response(request: Request, problem: ApiProblem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": f"urn:uuid:{uuid.UUID(request_id(request))}",
    }
    if problem.entry is not None:
        body["access_log_entry"] = problem.entry
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, default=json_default, separators=(",", ":"))
    return Response(text.encode("utf-8"), status_code=status, media_type="application/json", headers=headers)
