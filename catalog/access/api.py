"""The consumers' HTTP API (``hub serve``): queries, verification (核验) and catalogue reads.

Every ``/v1`` call carries ``Authorization: Bearer <system credential>``; the credential is
checked as :func:`catalog.sharing.identities.authenticate_system` checks it (constant-time hash
comparison, revoked systems refused) and a success is reused for ``api.auth_cache_seconds``
(5 s), so a revoked system or a rotated credential is refused at most that long after the
change. Every call, allowed or refused (unauthenticated, rate-limited, invalid, outside the
grant), appends one access-log entry with the client address before it is answered; the
server's threads share one :class:`~catalog.audit.GroupAppender` (group commit), and the credential is
never logged. Errors are ``application/problem+json`` (RFC 9457) with ``type``, ``title``,
``status``, ``detail``, ``instance`` and, when the refusal is on record, ``access_log_entry``.

``POST /v1/query`` runs one SELECT through the gateway (:mod:`catalog.access.consumer`), over the
system's active grants only. ``POST /v1/verify`` answers match or no match for one identity
number and name, credit code and name, or certificate identifier, from the in-memory
verification indexes (:mod:`catalog.access.verification`), and the granted fields of that one record when
asked and granted. Both are limited per system by token buckets and verification by the
enumeration guard (:mod:`catalog.access.ratelimit`). Docs: docs/api.md.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.access.auth import Authenticator, Caller
from catalog.access.bodies import QueryBody, VerifyAnswer, VerifyBody
from catalog.access.consumer import PurposeRequiredError, QueryRequest, run_query
from catalog.access.dependencies import Authenticated
from catalog.access.gateway import Limits
from catalog.access.responses import (
    PARQUET,
    PROBLEM,
    ApiProblem,
    RequestIds,
    json_response,
    problem_response,
)
from catalog.access.service import Indexes, Service, ServiceSettings
from catalog.access.verify_route import verify_route
from catalog.errors import (
    DatasetNotFoundError,
    QueryDeniedError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
)
from schemas.errors import AccessDeniedError, HubError, TransientError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# -- problems ----------------------------------------------------------------------------------


# -- request bodies ----------------------------------------------------------------------------


# -- authentication ----------------------------------------------------------------------------


# -- verification indexes ------------------------------------------------------------------------


# -- the service ---------------------------------------------------------------------------------


# -- results -------------------------------------------------------------------------------------


def _entry_of(exc: BaseException) -> int | None:
    for note in getattr(exc, "__notes__", ()):
        found = re.search(r"access-log entry (\d+)", note)
        if found:
            return int(found.group(1))
    return None


def _query_problem(exc: HubError) -> ApiProblem:
    entry = _entry_of(exc)
    status, slug, title = 500, "internal", "The query failed in the hub"
    if isinstance(exc, QueryTimeoutError):
        status, slug, title = 422, "query-time-limit", "The query ran past its time limit"
    elif isinstance(exc, QuerySyntaxError):
        status, slug, title = 400, "invalid-sql", "The SQL does not parse"
    elif isinstance(exc, PurposeRequiredError):
        status, slug, title = 400, "purpose-required", "A purpose is required"
    elif isinstance(exc, QueryDeniedError | AccessDeniedError):
        status, slug, title = 403, "query-refused", "The query reaches outside the grants"
    elif isinstance(exc, QueryError):
        status, slug, title = 400, "query-failed", "The query failed"
    elif isinstance(exc, DatasetNotFoundError):
        status, slug, title = 404, "dataset-not-available", "A granted dataset has no shared table yet"
    elif isinstance(exc, TransientError):
        status, slug, title = 503, "unavailable", "A hub component is unavailable; retry later"
    headers = {"Retry-After": "30"} if status == 503 else None
    return ApiProblem(status, slug, title, str(exc), headers=headers, entry=entry)


def _rows_out(result: Any, fmt: str, entry: int) -> Response:
    table: pa.Table = result.table
    headers = {
        "X-Hub-Access-Entry": str(entry),
        "X-Hub-Row-Count": str(table.num_rows),
        "X-Hub-Truncated": "true" if result.truncated else "false",
        "X-Hub-Snapshots": json.dumps(result.snapshots, separators=(",", ":")),
    }
    if fmt == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        return Response(sink.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return Response(sink.getvalue(), media_type=PARQUET, headers=headers)
    body = {
        "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "rows": table.to_pylist(),
        "row_count": table.num_rows,
        "truncated": result.truncated,
        "snapshots": result.snapshots,
        "access_log_entry": entry,
    }
    return json_response(body, headers=headers)


# -- the app -------------------------------------------------------------------------------------


def create_app(settings: ServiceSettings) -> FastAPI:
    """The API over the hub ``settings`` describe (``hub serve`` passes the hub's settings).

    Opens the metadata store and loads the verification indexes before returning, so a
    missing keyring or unreachable database fails here, not at the first request.
    """
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What start-up made lives as long as the server: keep it out of the collector's
        # full passes, which otherwise stall every request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        service.indexes.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="gov-data-hub consumer API",
        summary="Query shared datasets, verify identities (核验) and read the catalogue, within your grants.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(RequestIds)
    _handlers(app, service)
    _routes(app, service)
    return app


def _handlers(app: FastAPI, service: Service) -> None:
    @app.exception_handler(ApiProblem)
    async def on_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo input values: they may be identity numbers or names.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:10]
        )
        found: Caller | None = getattr(request.state, "caller", None)
        action = _action_of(request.url.path)
        if found is None:  # the credential was never checked (should not happen: auth runs first)
            return problem_response(
                request, ApiProblem(400, "invalid-request", "The request is not valid", problems)
            )
        problem = service.refuse(
            found,
            action=action,
            status=400,
            slug="invalid-request",
            title="The request is not valid",
            reason=f"invalid request: {problems}",
        )
        return problem_response(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            request,
            ApiProblem(
                exc.status_code, slug, str(exc.detail), f"{request.method} {request.url.path}: {exc.detail}"
            ),
        )

    @app.exception_handler(HubError)
    def on_hub_error(request: Request, exc: HubError) -> JSONResponse:
        transient = isinstance(exc, TransientError)
        return problem_response(
            request,
            ApiProblem(
                503 if transient else 500,
                "unavailable" if transient else "internal",
                "A hub component is unavailable; retry later" if transient else "The hub failed",
                str(exc),
                headers={"Retry-After": "30"} if transient else None,
                entry=_entry_of(exc),
            ),
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem_response(
            request,
            ApiProblem(500, "internal", "The hub failed", "an unexpected error; the operator's log has it"),
        )


def _action_of(path: str) -> str:
    if path.startswith("/v1/query"):
        return "query"
    if path.startswith("/v1/verify"):
        return "verify"
    return "catalog.read"


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {PROBLEM: {}}}
    for status, description in (
        (400, "Invalid request or SQL (problem+json)"),
        (401, "No, wrong, rotated or revoked credential (problem+json)"),
        (403, "Outside the system's grants (problem+json)"),
        (404, "Unknown or unpublished (problem+json)"),
        (422, "The query ran past its time limit (problem+json)"),
        (429, "Rate limit or enumeration cool-down; see Retry-After (problem+json)"),
        (503, "A hub component is unavailable; see Retry-After (problem+json)"),
    )
}


def _routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", tags=["service"], summary="Liveness and the verification indexes' state")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "verification_indexes": service.indexes.status()}

    @app.get("/v1/catalog", tags=["catalogue"], summary="Published catalogue entries", responses=_PROBLEMS)
    def catalogue(who: Authenticated) -> Response:
        service.limit(who, "catalog")
        entries = [view.to_json() for view in service.catalogue.published()]
        number = service.record(
            action="catalog.read",
            outcome="allowed",
            system=who.system.id,
            department=who.system.department,
            client=who.client,
            rows=len(entries),
            detail={"request": who.request_id, "datasets": [e["dataset"] for e in entries]},
        )
        return json_response(
            {"entries": entries, "access_log_entry": number}, headers={"X-Hub-Access-Entry": str(number)}
        )

    @app.get(
        "/v1/catalog/{dataset}",
        tags=["catalogue"],
        summary="One published catalogue entry",
        responses=_PROBLEMS,
    )
    def catalogue_entry(dataset: str, who: Authenticated) -> Response:
        service.limit(who, "catalog")
        found = next((v for v in service.catalogue.published() if v.dataset == dataset), None)
        if found is None:
            raise service.refuse(
                who,
                action="catalog.read",
                status=404,
                slug="not-found",
                title="No such published dataset",
                reason=f"no published catalogue entry {dataset[:64]!r}",
                dataset=dataset[:64],
            )
        number = service.record(
            action="catalog.read",
            outcome="allowed",
            system=who.system.id,
            department=who.system.department,
            client=who.client,
            dataset=dataset,
            rows=1,
            detail={"request": who.request_id, "version": found.version},
        )
        return json_response(
            {**found.to_json(), "access_log_entry": number}, headers={"X-Hub-Access-Entry": str(number)}
        )

    @app.post(
        "/v1/query",
        tags=["query"],
        summary="One SELECT over the views of your active grants",
        responses={
            **_PROBLEMS,
            200: {
                "description": "The rows as JSON (default), CSV or Parquet; X-Hub-Access-Entry names the log entry",
                "content": {"application/json": {}, "text/csv": {}, PARQUET: {}},
            },
        },
    )
    def query(body: QueryBody, who: Authenticated) -> Response:
        service.limit(who, "query")
        api = service.settings.api
        rows = min(body.max_rows or api.query_max_rows, api.query_max_rows)
        request = QueryRequest(
            system=who.system,
            sql=body.sql,
            purpose=body.purpose,
            client=who.client,
            limits=Limits(seconds=api.query_seconds, rows=rows),
        )
        try:
            result, entry = run_query(service.store, service.gateway, request, append=service.record)
        except HubError as exc:
            raise _query_problem(exc) from None
        return _rows_out(result, body.format, entry)

    @app.post(
        "/v1/verify",
        tags=["verify"],
        summary="Verify one person, legal entity or certificate (核验): match or no match",
        response_model=VerifyAnswer,
        response_model_exclude_none=True,
        responses=_PROBLEMS,
    )
    def verify(body: VerifyBody, who: Authenticated) -> Response:
        return verify_route(service, who, body)


__all__ = ["ApiProblem", "Authenticator", "Caller", "Indexes", "Service", "create_app"]
