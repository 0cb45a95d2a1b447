"""The consumers' HTTP API (``hub serve``): queries, verification (核验) and catalogue reads.

Every ``/v1`` call carries ``Authorization: Bearer <system credential>``; the credential is
checked as :func:`catalog.sharing.identities.authenticate_system` checks it (constant-time hash
comparison, revoked systems refused) and a success is reused for ``api.auth_cache_seconds``
(5 s), so a revoked system or a rotated credential is refused at most that long after the
change. Every call, allowed or refused (unauthenticated, rate-limited, invalid, outside the
grant), appends one access-log entry with the client address before it is answered; the
server's threads share one :class:`~catalog.audit.log.GroupAppender` (group commit), and the credential is
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
import hmac
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.access.ratelimit import EnumerationGuard, TokenBuckets, retry_after
from catalog.access.verification import BY_DATASET, INDEX_NAMESPACE, SUBJECTS, Subject, VerificationIndex
from catalog.audit import AccessLog, GroupAppender, load_keys
from catalog.errors import (
    DatasetNotFoundError,
    QueryDeniedError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
)
from catalog.metadata import System
from catalog.settings import ApiSettings, AuditSettings, CatalogSettings
from catalog.sharing import (
    CREDENTIAL_PATTERN,
    CREDENTIAL_PREFIX,
    DUMMY_HASH,
    SystemRef,
    china_day,
    hash_credential,
)
from masking.settings import MaskingSettings
from schemas.errors import AccessDeniedError, HubError, TransientError

if TYPE_CHECKING:
    from catalog.access.gateway import Gateway
    from catalog.audit import AuditKeys
    from catalog.sharing import GrantRef
    from catalog.tables import SharedTables
    from masking.keys import DataKey

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_TYPE = "urn:gov-data-hub:problem:"
"""Prefix of every problem ``type``; the suffixes are listed in docs/api.md."""
PARQUET = "application/vnd.apache.parquet"
MAX_FIELDS = 64


# -- problems ----------------------------------------------------------------------------------


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


def _request_id(request: Request) -> str:
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
        "instance": f"urn:uuid:{uuid.UUID(_request_id(request))}",
    }
    if problem.entry is not None:
        body["access_log_entry"] = problem.entry
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers)


# -- request bodies ----------------------------------------------------------------------------


class QueryBody(BaseModel):
    """One SELECT over the views of the system's active grants."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=100_000, description="One SELECT over the granted datasets' views.")
    purpose: str = Field(max_length=4_000, description="What the result is used for (required, recorded).")
    format: Literal["json", "csv", "parquet"] = Field(default="json", description="Result format.")
    max_rows: int | None = Field(default=None, ge=1, description="Return at most this many rows.")


class VerifyBody(BaseModel):
    """One identity to verify; exactly the identifier field of its kind."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["person", "legal_entity", "certificate"] = Field(
        description="person: id_number + name; legal_entity: uscc + name; certificate: certificate_id "
        "(+ holder name, optional)."
    )
    id_number: str | None = Field(default=None, max_length=64, description="Resident identity number.")
    uscc: str | None = Field(default=None, max_length=64, description="Unified social credit code.")
    certificate_id: str | None = Field(
        default=None, max_length=256, description="Electronic certificate identifier (GB/T 36904)."
    )
    name: str | None = Field(
        default=None, max_length=256, description="Name (holder name for a certificate)."
    )
    purpose: str = Field(max_length=4_000, description="What the verification is for (required, recorded).")
    fields: list[str] | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="Granted columns of the matching record to return (needs an active grant including them).",
    )


class VerifyAnswer(BaseModel):
    match: bool
    fields: dict[str, Any] | None = Field(
        default=None,
        description="The asked fields of the matching record, masked as the shared table holds them.",
    )


# -- authentication ----------------------------------------------------------------------------


class AuthError(AccessDeniedError):
    """A credential was missing or refused; ``system`` is known when the credential was valid."""

    def __init__(self, message: str, *, system: str | None = None, department: str | None = None) -> None:
        super().__init__(message)
        self.system, self.department = system, department


class Authenticator:
    """Checks system credentials, reusing a success for ``ttl`` seconds."""

    def __init__(self, store: Any, *, ttl: float, clock: Any = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[SystemRef, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, credential: str | None) -> SystemRef:
        if not credential:
            raise AuthError("no credential: send Authorization: Bearer <system credential>")
        match = CREDENTIAL_PATTERN.match(credential)
        if match is None:
            raise AuthError(f"not a hub system credential (expected {CREDENTIAL_PREFIX}<id>_<secret>)")
        digest = hash_credential(credential)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.store.session() as session:
            system = session.scalars(select(System).where(System.credential_id == match.group(1))).first()
            stored = system.credential_hash if system is not None else DUMMY_HASH
            valid = hmac.compare_digest(stored, digest)
            if system is None or not valid:
                raise AuthError(
                    f"system credential {match.group(1)} is not valid (unknown, rotated or mistyped)"
                )
            if system.revoked_at is not None:
                raise AuthError(
                    f"system {system.id} was revoked on {china_day(system.revoked_at)}: {system.revoke_reason}",
                    system=system.id,
                    department=system.department,
                )
            ref = SystemRef(system.id, system.name, system.department)
        if self.ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                self._cache[digest] = (ref, now + self.ttl)
        return ref


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the system, its client address and request id."""

    system: SystemRef
    client: str | None
    request_id: str


# -- verification indexes ------------------------------------------------------------------------


class Indexes:
    """The verification indexes in memory, reloaded when their tables' snapshots change.

    The keyring is re-read when its file changes, so tokens of a new token-key version can be
    looked up as soon as the index holds them.
    """

    def __init__(
        self, internal: SharedTables, keyring_path: Path, *, every: float, master_key_file: Path | None = None
    ) -> None:
        self.internal = internal
        self.keyring_path = Path(keyring_path)
        self.master_key_file = master_key_file
        self.every = every
        self._indexes: dict[str, VerificationIndex | None] = {}
        self._keys: dict[int, DataKey] = {}
        self._keyring_signature: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    def get(self, dataset: str) -> VerificationIndex | None:
        return self._indexes.get(dataset)

    @property
    def keys(self) -> dict[int, DataKey]:
        return self._keys

    def refresh(self) -> None:
        """Reload the keyring if it changed and every index whose snapshot changed."""
        from catalog.access.verification import current_snapshot, load_index
        from masking.keys import Keyring

        with self._refresh_lock:
            info = self.keyring_path.stat()
            signature = (info.st_ino, info.st_mtime_ns, info.st_size)
            if signature != self._keyring_signature:
                keyring = Keyring.load(self.keyring_path, master_key_file=self.master_key_file)
                self._keys = {i.version: keyring.token_key(i.version) for i in keyring.versions("token")}
                self._keyring_signature = signature
            for dataset in BY_DATASET:
                loaded = self._indexes.get(dataset)
                snapshot = current_snapshot(self.internal, dataset)
                if loaded is not None and loaded.snapshot_id == snapshot:
                    continue
                if loaded is None and snapshot is None and dataset in self._indexes:
                    continue
                started = time.perf_counter()
                index = load_index(self.internal, dataset)
                self._indexes[dataset] = index
                pa.default_memory_pool().release_unused()  # the scan's buffers, no longer needed
                if index is not None:
                    log.info(
                        "verification index %s: snapshot %s, %d rows, %.0f MB, loaded in %.1f s",
                        dataset,
                        index.snapshot_id,
                        index.rows,
                        index.nbytes / 1e6,
                        time.perf_counter() - started,
                    )

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-verify-indexes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception:  # keep serving the indexes already loaded
                log.exception("reloading the verification indexes failed; the loaded ones stay in use")

    def status(self) -> dict[str, str]:
        return {d: ("loaded" if self._indexes.get(d) is not None else "missing") for d in BY_DATASET}


@dataclass(frozen=True)
class _FieldGrant:
    """A grant narrowed to the asked fields plus the key column, to read one record through the gateway."""

    id: int
    system: str
    dataset: str
    level: str
    columns: tuple[str, ...]


# -- the service ---------------------------------------------------------------------------------


class _ServerLog(AccessLog):
    """The access log with the keys of the server's keyring (re-read when the file changes)."""

    def __init__(self, store: Any, keyring_path: Path, *, checkpoint_every: int, retention_days: int) -> None:
        super().__init__(store, checkpoint_every=checkpoint_every, retention_days=retention_days)
        self._keyring_path = keyring_path

    @property
    def keys(self) -> AuditKeys:
        return load_keys(self._keyring_path)


ENDPOINTS = {"query": "query", "verify": "verify", "catalog": "catalog.read"}
"""Rate-limit bucket -> access-log action."""


class ServiceSettings(Protocol):
    """What the API reads of the hub's settings; ``hub.settings.HubSettings`` has it.

    A structural type, so that the API (a lower layer) never imports the hub's settings:
    the command that serves it hands them in.
    """

    @property
    def catalog(self) -> CatalogSettings: ...
    @property
    def masking(self) -> MaskingSettings: ...
    @property
    def audit(self) -> AuditSettings: ...
    @property
    def api(self) -> ApiSettings: ...


class Service:
    """What the API's handlers share: store, gateway, access log, limits and indexes."""

    def __init__(self, settings: ServiceSettings) -> None:
        from catalog.access.gateway import Gateway, Limits
        from catalog.entries import Catalogue
        from catalog.metadata import MetadataStore
        from catalog.tables import QueryEngine, SharedTables

        assert settings.catalog.metadata_url is not None and settings.catalog.iceberg_url is not None
        assert settings.catalog.warehouse is not None
        self.settings = settings
        api = settings.api
        keyring_path = settings.masking.keyring_path
        load_keys(keyring_path)  # fail at start-up when the keyring or master key is missing
        self.store = MetadataStore(settings.catalog.metadata_url)
        self.log = GroupAppender(
            _ServerLog(
                self.store,
                keyring_path,
                checkpoint_every=settings.audit.checkpoint_every,
                retention_days=settings.audit.retention_days,
            )
        )
        self.tables = SharedTables.from_settings(settings.catalog)
        self.gateway: Gateway = Gateway(
            QueryEngine(self.tables), limits=Limits(api.query_seconds, api.query_max_rows)
        )
        self.catalogue = Catalogue(self.store, tables=self.tables)
        self.auth = Authenticator(self.store, ttl=api.auth_cache_seconds)
        self.buckets = TokenBuckets(
            {
                "query": (api.query_rate, api.query_burst),
                "verify": (api.verify_rate, api.verify_burst),
                "catalog": (api.catalog_rate, api.catalog_burst),
            }
        )
        self.guard = EnumerationGuard(
            window=api.enumeration_window_seconds,
            no_match_limit=api.enumeration_no_match,
            prefix_length=api.enumeration_prefix_length,
            close_limit=api.enumeration_close,
            cooldown=api.enumeration_cooldown_seconds,
        )
        internal = SharedTables(
            settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=INDEX_NAMESPACE
        )
        self.indexes = Indexes(
            internal,
            keyring_path,
            every=api.index_reload_seconds,
            master_key_file=settings.masking.master_key_file,
        )
        self.indexes.refresh()

    def close(self) -> None:
        self.indexes.stop()
        self.log.close()
        self.store.dispose()

    # -- access log --------------------------------------------------------------------------

    def record(self, **entry: Any) -> int:
        return self.log.append(**entry)

    def refuse(
        self,
        caller: Caller | None,
        *,
        action: str,
        status: int,
        slug: str,
        title: str,
        reason: str,
        client: str | None = None,
        headers: dict[str, str] | None = None,
        **entry: Any,
    ) -> ApiProblem:
        """Record a refusal and build its problem (the caller raises it)."""
        detail = dict(entry.pop("detail", None) or {})
        if caller is not None:
            detail.setdefault("request", caller.request_id)
        number = self.record(
            action=action,
            outcome="denied",
            system=caller.system.id if caller else entry.pop("system", None),
            department=caller.system.department if caller else entry.pop("department", None),
            client=caller.client if caller else client,
            reason=reason,
            detail=detail or None,
            **entry,
        )
        return ApiProblem(status, slug, title, reason, headers=headers, entry=number)

    def limit(self, caller: Caller, bucket: str) -> None:
        wait = self.buckets.take(caller.system.id, bucket)
        if wait > 0:
            rate, burst = self.buckets.limits[bucket]
            raise self.refuse(
                caller,
                action=ENDPOINTS[bucket],
                status=429,
                slug="rate-limited",
                title="Too many requests",
                reason=f"rate limit of system {caller.system.id} on {bucket}: {rate:g} requests/s, "
                f"burst {burst}; retry in {wait:.1f} s",
                headers={"Retry-After": retry_after(wait)},
            )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


_bearer = HTTPBearer(auto_error=False, description="A system credential (hub_sys_...) issued by a steward.")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The authenticated system, or a recorded 401."""
    service = _service(request)
    client = _client(request)
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
            detail={"path": request.url.path, "request": _request_id(request)},
        ) from None
    found = Caller(system, client, _request_id(request))
    request.state.caller = found
    return found


Authenticated = Annotated[Caller, Depends(authenticated)]
"""A handler parameter: the calling system, authenticated (or the request is refused with 401)."""


# -- results -------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, default=_json_default, separators=(",", ":"))
    return Response(text.encode("utf-8"), status_code=status, media_type="application/json", headers=headers)


def _entry_of(exc: BaseException) -> int | None:
    for note in getattr(exc, "__notes__", ()):
        found = re.search(r"access-log entry (\d+)", note)
        if found:
            return int(found.group(1))
    return None


def _query_problem(exc: HubError) -> ApiProblem:
    from catalog.access.consumer import PurposeRequiredError

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
    return _json(body, headers=headers)


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
        return _json(
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
        return _json(
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
        from catalog.access.consumer import QueryRequest, run_query
        from catalog.access.gateway import Limits

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
        return _verify(service, who, body)


def _verify(service: Service, who: Caller, body: VerifyBody) -> Response:
    from catalog.access.verification import normalise_name

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
    identifier, name = _identity(subject, body, bad)
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
    grant = _fields_grant(service, who, subject, fields, base) if fields else None
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
        record, snapshot = _read_record(service, subject, grant, fields, identifier, found.version)
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
    return _json(answer, headers={"X-Hub-Access-Entry": str(number)})


def _identity(subject: Subject, body: VerifyBody, bad: Callable[[str], ApiProblem]) -> tuple[str, str | None]:
    """The request's normalised identifier and its name (None when not given), or a refusal."""
    from catalog.access.verification import normalise_key

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


def _fields_grant(
    service: Service, who: Caller, subject: Subject, fields: list[str], base: dict[str, Any]
) -> GrantRef:
    """The system's active grant on the subject's dataset including every asked field, or a 403."""
    from catalog.sharing import active_grant, list_grants

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


def _read_record(
    service: Service, subject: Subject, grant: GrantRef, fields: list[str], identifier: str, version: int
) -> tuple[dict[str, Any] | None, int | None]:
    """The asked fields of the one record with this identifier, as the grant's view shows it."""
    from catalog.access.verification import published_key
    from catalog.tables import quote_identifier

    key_column, key_value = published_key(subject, identifier, service.indexes.keys[version])
    narrowed = _FieldGrant(
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


__all__ = ["ApiProblem", "Authenticator", "Caller", "Indexes", "Service", "create_app"]
